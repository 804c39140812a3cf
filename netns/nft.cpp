#include "netns/nft.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"

namespace brig::netns::nft {

namespace {

// The table's family and the words that go with it.
struct Fam {
  const char* table;  // "ip" / "ip6"
  const char* addr;   // set/map address type
};
Fam fam(int family) { return family == AF_INET6 ? Fam{"ip6", "ipv6_addr"} : Fam{"ip", "ipv4_addr"}; }

}  // namespace

std::string table_script(int family) {
  Fam f = fam(family);
  const std::string t = fmt::format("{} {}", f.table, kTable);
  std::string s;
  s += fmt::format("add table {}\n", t);
  s += fmt::format("add map {} ports {{ type inet_proto . inet_service : {} . inet_service ; }}\n", t, f.addr);
  s += fmt::format("add set {} masq {{ type {} ; }}\n", t, f.addr);
  s += fmt::format("add set {} bridges {{ type ifname ; }}\n", t);
  s += fmt::format("add chain {} prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}\n", t);
  s += fmt::format("add chain {} output {{ type nat hook output priority -100 ; policy accept ; }}\n", t);
  s += fmt::format("add chain {} postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}\n", t);
  // Runs again as it is (`network reload`): the rules are rewritten in the
  // same transaction, never twice.
  for (const char* c : {"prerouting", "output", "postrouting"}) s += fmt::format("flush chain {} {}\n", t, c);
  for (const char* c : {"prerouting", "output"})
    s += fmt::format("add rule {} {} fib daddr type local dnat {} to meta l4proto . th dport map @ports\n", t, c,
                     f.table);
  s += fmt::format("add rule {} postrouting oifname @bridges return\n", t);
  s += fmt::format("add rule {} postrouting {} saddr @masq masquerade\n", t, f.table);
  return s;
}

std::string add_script(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge,
                       bool again) {
  const char* t = fam(ip.family).table;
  std::string s;
  // `create` fails when the host port is already published: never steal it
  // (`again`: the same element put back, which `add` leaves as it is).
  for (auto& p : ports)
    s += fmt::format("{} element {} {} ports {{ {} . {} : {} . {} }}\n", again ? "add" : "create", t, kTable, p.proto,
                     p.host, ip.str(), p.container);
  if (masquerade) {
    s += fmt::format("add element {} {} masq {{ {} }}\n", t, kTable, ip.str());
    s += fmt::format("add element {} {} bridges {{ \"{}\" }}\n", t, kTable, bridge);
  }
  return s;
}

namespace {

// The "elem" array of the first set/map object in nft's JSON output.
nlohmann::json elements(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.contains("nftables")) return nlohmann::json::array();
  for (auto& o : j["nftables"]) {
    for (const char* k : {"map", "set"})
      if (o.contains(k) && o[k].contains("elem")) return o[k]["elem"];
  }
  return nlohmann::json::array();
}

}  // namespace

std::string delete_script(const Ip& ip, const std::string& ports_json, const std::string& masq_json) {
  std::string s;
  std::string a = ip.str();
  const char* t = fam(ip.family).table;
  for (auto& e : elements(ports_json)) {
    // [ {"concat": ["tcp", 8080]}, {"concat": ["10.87.0.2", 80]} ]
    if (!e.is_array() || e.size() != 2) continue;
    const auto& key = e[0]["concat"];
    const auto& val = e[1]["concat"];
    if (!key.is_array() || !val.is_array() || key.size() != 2 || val.size() != 2) continue;
    if (!val[0].is_string() || val[0].get<std::string>() != a) continue;
    s += fmt::format("delete element {} {} ports {{ {} . {} }}\n", t, kTable, key[0].get<std::string>(),
                     key[1].dump());
  }
  for (auto& e : elements(masq_json))
    if (e.is_string() && e.get<std::string>() == a) s += fmt::format("delete element {} {} masq {{ {} }}\n", t, kTable, a);
  return s;
}

size_t element_count(const std::string& json) { return elements(json).size(); }

std::string binary() {
  const char* e = ::getenv("BRIG_NFT");
  if (e && *e) return e;
  for (const char* p : {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft"})
    if (::access(p, X_OK) == 0) return p;
  return "nft";
}

Result<std::string> run(const std::vector<std::string>& args, const std::string& input, const std::string& what) {
  std::vector<std::string> full{binary()};
  full.insert(full.end(), args.begin(), args.end());
  auto ran = sys::run_program(full, input);
  // Plain (no errno): a missing nft is not init's /proc going away.
  if (!ran) return fail(Error::plain(fmt::format("nftables: {}: {}", what, ran.error().msg)));
  if (ran->ok()) return std::move(ran->out);
  // nft's first line is the useful one ("Error: Could not process rule: File exists").
  std::string first;
  for (auto line : text::lines(ran->err)) {
    if (auto p = line.find("Error: "); p != std::string_view::npos) {
      first = std::string(line.substr(p + 7));
      break;
    }
    if (first.empty()) first = std::string(line);
  }
  if (first.empty()) first = ran->exit_text();
  return fail_msg("nftables: {}: {}", what, first);
}

namespace {
// nft's "No such file or directory" (no such table or set), or no nft to run
// at all (then it never made one).
bool missing_table(const Error& e) {
  return e.msg.find("No such file or directory") != std::string::npos ||
         e.msg.find(fmt::format("exec {}: no such file or directory", binary())) != std::string::npos;
}
}  // namespace

Result<bool> table_exists(int family) {
  auto r = run({"list", "table", fam(family).table, kTable}, "", "list table");
  if (r) return true;
  if (missing_table(r.error())) return false;
  return fail(std::move(r.error()));
}

Result<void> ensure_table(int family) {
  TRY(bool have, table_exists(family));
  if (have) return {};
  TRY(auto o, run({"-f", "-"}, table_script(family), fmt::format("create table {} {}", fam(family).table, kTable)));
  return {};
}

Result<void> restore(int family, const std::vector<Nat>& nat) {
  std::string s = table_script(family);
  for (const auto& n : nat)
    if (n.ip.family == family) s += add_script(n.ip, n.ports, n.masquerade, n.bridge, true);
  TRY(auto o, run({"-f", "-"}, s, fmt::format("restore table {} {}", fam(family).table, kTable)));
  return {};
}

Result<void> add(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge) {
  std::string s = add_script(ip, ports, masquerade, bridge);
  if (s.empty()) return {};
  TRY_VOID(ensure_table(ip.family));
  std::string what = ports.empty() ? fmt::format("masquerade {}", ip.str())
                                   : fmt::format("publish {} on {}", format_ports(ports), ip.str());
  TRY(auto o, run({"-f", "-"}, s, what));
  return {};
}

namespace {
struct Listing {
  std::string ports, masq;
};
Result<Listing> list_elements(int family) {
  const char* t = fam(family).table;
  Listing l;
  TRY(l.ports, run({"-j", "list", "map", t, kTable, "ports"}, "", "list published ports"));
  TRY(l.masq, run({"-j", "list", "set", t, kTable, "masq"}, "", "list masqueraded addresses"));
  return l;
}
}  // namespace

Result<void> remove(const Ip& ip) {
  TRY(bool have, table_exists(ip.family));
  if (!have) return {};
  TRY(Listing l, list_elements(ip.family));
  std::string s = delete_script(ip, l.ports, l.masq);
  if (s.empty()) return {};
  TRY(auto o, run({"-f", "-"}, s, fmt::format("remove rules of {}", ip.str())));
  return {};
}

namespace {

// An IPv6 address as the 128-bit integer a raw payload match compares.
std::string raw128(const Ip& ip) {
  std::string s = "0x";
  for (size_t i = 0; i < 16; i++) s += fmt::format("{:02x}", ip.b[i]);
  return s;
}

// The IPv6 link-local address the kernel gives an interface with `mac`
// (EUI-64, its default addr_gen_mode): fe80:: + the MAC with ff:fe in the
// middle and the universal/local bit flipped.
std::optional<Ip> link_local(const std::string& mac) {
  unsigned m[6];
  if (std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
    return std::nullopt;
  Ip ip;
  ip.family = AF_INET6;
  ip.b[0] = 0xfe;
  ip.b[1] = 0x80;
  const unsigned id[8] = {m[0] ^ 0x02u, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]};
  for (size_t i = 0; i < 8; i++) ip.b[8 + i] = static_cast<uint8_t>(id[i]);
  return ip;
}

// The elements of a guard, one `VERB element ...` line each.
std::string guard_elements(const Guard& g, const char* verb) {
  const std::string t = fmt::format("element bridge {}", kTable);
  std::string s;
  s += fmt::format("{} {} ports {{ \"{}\" }}\n", verb, t, g.dev);
  s += fmt::format("{} {} macs {{ \"{}\" . {} }}\n", verb, t, g.dev, g.mac);
  if (g.v4) s += fmt::format("{} {} v4 {{ \"{}\" . {} }}\n", verb, t, g.dev, g.v4->str());
  // Its own IPv6 addresses: the lease's and its link-local one.
  std::vector<Ip> v6;
  if (auto ll = link_local(g.mac)) v6.push_back(*ll);
  if (g.v6) v6.push_back(*g.v6);
  for (const Ip& a : v6) {
    s += fmt::format("{} {} v6 {{ \"{}\" . {} }}\n", verb, t, g.dev, a.str());
    s += fmt::format("{} {} na6 {{ \"{}\" . {} }}\n", verb, t, g.dev, raw128(a));
  }
  return s;
}

}  // namespace

std::string guard_table_script() {
  const std::string t = fmt::format("bridge {}", kTable);
  std::string s;
  // Every line may run again: `add` of what exists is a no-op, and the chain
  // is flushed and refilled in the same transaction (never a moment without
  // its rules, never a rule twice).
  s += fmt::format("add table {}\n", t);
  s += fmt::format("add set {} ports {{ type ifname ; }}\n", t);
  s += fmt::format("add set {} macs {{ type ifname . ether_addr ; }}\n", t);
  s += fmt::format("add set {} v4 {{ type ifname . ipv4_addr ; }}\n", t);
  s += fmt::format("add set {} v6 {{ type ifname . ipv6_addr ; }}\n", t);
  // nft 1.0.6 has no expression for the target of a neighbour
  // advertisement: it is the 128 bits after the ICMPv6 header's first 8 bytes.
  s += fmt::format("add set {} na6 {{ typeof iifname . @th,64,128 ; }}\n", t);
  s += fmt::format("add chain {} guard {{ type filter hook prerouting priority -200 ; policy accept ; }}\n", t);
  s += fmt::format("flush chain {} guard\n", t);
  const std::string r = fmt::format("add rule {} guard ", t);
  s += r + "iifname != @ports accept\n";
  s += r + "iifname . ether saddr != @macs drop\n";
  // Only ARP, IPv4 and IPv6, untagged (a VLAN tag would hide the rest).
  s += r + "ether type != { arp, ip, ip6 } drop\n";
  s += r + "ether type arp iifname . arp saddr ether != @macs drop\n";
  s += r + "ether type arp iifname . arp saddr ip != @v4 drop\n";
  s += r + "ether type ip iifname . ip saddr != @v4 drop\n";
  // :: is what duplicate address detection sends from.
  s += r + "ether type ip6 ip6 saddr != :: iifname . ip6 saddr != @v6 drop\n";
  // A container is no router: no router advertisements, redirects or renumbering.
  s += r + "icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } drop\n";
  s += r + "icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @na6 drop\n";
  return s;
}

std::string guard_add_script(const Guard& g) { return guard_elements(g, "add"); }

std::string guard_remove_script(const Guard& g) { return guard_elements(g, "add") + guard_elements(g, "delete"); }

Result<void> guard(const Guard& g) {
  // The table and its rules go with every guard, in the same transaction:
  // a chain or set someone removed comes back, at the cost of no extra call.
  TRY(auto o, run({"-f", "-"}, guard_table_script() + guard_add_script(g),
                  fmt::format("guard {} against spoofing", g.dev)));
  return {};
}

Result<void> unguard(const Guard& g) {
  auto r = run({"-f", "-"}, guard_remove_script(g), fmt::format("remove the spoofing guard of {}", g.dev));
  // No table (never made, or removed with everything in it), or no nft at
  // all (then no guard was ever made): nothing to remove.
  if (!r && !missing_table(r.error())) return fail(std::move(r.error()));
  return {};
}

Result<bool> drop_table_if_unused() {
  bool dropped = false;
  // The guard table: when no port is guarded any more.
  auto ports = run({"-j", "list", "set", "bridge", kTable, "ports"}, "", "list guarded ports");
  if (!ports && !missing_table(ports.error())) return fail(std::move(ports.error()));
  if (ports && element_count(*ports) == 0) {
    TRY(auto o, run({"delete", "table", "bridge", kTable}, "", fmt::format("delete table bridge {}", kTable)));
    dropped = true;
  }
  for (int family : {AF_INET, AF_INET6}) {
    TRY(bool have, table_exists(family));
    if (!have) continue;
    TRY(Listing l, list_elements(family));
    if (element_count(l.ports) || element_count(l.masq)) continue;
    const char* t = fam(family).table;
    TRY(auto o, run({"delete", "table", t, kTable}, "", fmt::format("delete table {} {}", t, kTable)));
    dropped = true;
  }
  return dropped;
}

}  // namespace brig::netns::nft
