#include "netns/nft.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "runtime/core/sys.hpp"

namespace brig::netns::nft {

std::string table_script() {
  const std::string t = fmt::format("ip {}", kTable);
  std::string s;
  s += fmt::format("add table {}\n", t);
  s += fmt::format("add map {} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}\n", t);
  s += fmt::format("add set {} masq {{ type ipv4_addr ; }}\n", t);
  s += fmt::format("add set {} bridges {{ type ifname ; }}\n", t);
  s += fmt::format("add chain {} prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}\n", t);
  s += fmt::format("add chain {} output {{ type nat hook output priority -100 ; policy accept ; }}\n", t);
  s += fmt::format("add chain {} postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}\n", t);
  for (const char* c : {"prerouting", "output"})
    s += fmt::format("add rule {} {} fib daddr type local dnat ip to meta l4proto . th dport map @ports\n", t, c);
  s += fmt::format("add rule {} postrouting oifname @bridges return\n", t);
  s += fmt::format("add rule {} postrouting ip saddr @masq masquerade\n", t);
  return s;
}

std::string add_script(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge) {
  std::string s;
  // `create` fails when the host port is already published: never steal it.
  for (auto& p : ports)
    s += fmt::format("create element ip {} ports {{ {} . {} : {} . {} }}\n", kTable, p.proto, p.host, ip.str(),
                     p.container);
  if (masquerade) {
    s += fmt::format("add element ip {} masq {{ {} }}\n", kTable, ip.str());
    s += fmt::format("add element ip {} bridges {{ \"{}\" }}\n", kTable, bridge);
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
  for (auto& e : elements(ports_json)) {
    // [ {"concat": ["tcp", 8080]}, {"concat": ["10.87.0.2", 80]} ]
    if (!e.is_array() || e.size() != 2) continue;
    const auto& key = e[0]["concat"];
    const auto& val = e[1]["concat"];
    if (!key.is_array() || !val.is_array() || key.size() != 2 || val.size() != 2) continue;
    if (!val[0].is_string() || val[0].get<std::string>() != a) continue;
    s += fmt::format("delete element ip {} ports {{ {} . {} }}\n", kTable, key[0].get<std::string>(),
                     key[1].dump());
  }
  for (auto& e : elements(masq_json))
    if (e.is_string() && e.get<std::string>() == a) s += fmt::format("delete element ip {} masq {{ {} }}\n", kTable, a);
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
  // memfds for stdin/stdout/stderr: nothing to poll, nothing to deadlock on.
  Fd in(::memfd_create("nft-in", MFD_CLOEXEC)), out(::memfd_create("nft-out", MFD_CLOEXEC)),
      err(::memfd_create("nft-err", MFD_CLOEXEC));
  if (!in || !out || !err) return fail_errno("nftables: {}: memfd_create", what);
  TRY_VOID(sys::write_all(in, input));
  ::lseek(in.get(), 0, SEEK_SET);
  std::string bin = binary();
  std::vector<std::string> full{bin};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("nftables: {}: fork", what);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(err.get(), 2);
    sys::close_fds_except(3, {});
    if (bin.find('/') != std::string::npos)
      ::execv(bin.c_str(), argv.data());
    else
      ::execvp(bin.c_str(), argv.data());
    fmt::print(stderr, "exec {}: {}", bin, Error::errno_text(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::lseek(out.get(), 0, SEEK_SET);
  ::lseek(err.get(), 0, SEEK_SET);
  auto o = sys::read_all(out);
  auto e = sys::read_all(err);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return o ? *o : std::string();
  std::string text = e ? *e : "";
  // nft's first line is the useful one ("Error: Could not process rule: File exists").
  std::string first;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (auto p = line.find("Error: "); p != std::string::npos) {
      first = line.substr(p + 7);
      break;
    }
    if (first.empty()) first = line;
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  if (first.empty()) first = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status)) : "killed";
  return fail_msg("nftables: {}: {}", what, first);
}

Result<bool> table_exists() {
  auto r = run({"list", "table", "ip", kTable}, "", "list table");
  if (r) return true;
  if (r.error().msg.find("No such file") != std::string::npos) return false;
  return fail(std::move(r.error()));
}

Result<void> ensure_table() {
  TRY(bool have, table_exists());
  if (have) return {};
  TRY(auto o, run({"-f", "-"}, table_script(), fmt::format("create table ip {}", kTable)));
  return {};
}

Result<void> add(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge) {
  std::string s = add_script(ip, ports, masquerade, bridge);
  if (s.empty()) return {};
  TRY_VOID(ensure_table());
  std::string what = ports.empty() ? fmt::format("masquerade {}", ip.str())
                                   : fmt::format("publish {} on {}", format_ports(ports), ip.str());
  TRY(auto o, run({"-f", "-"}, s, what));
  return {};
}

Result<void> remove(const Ip& ip) {
  TRY(bool have, table_exists());
  if (!have) return {};
  TRY(std::string pj, run({"-j", "list", "map", "ip", kTable, "ports"}, "", "list published ports"));
  TRY(std::string mj, run({"-j", "list", "set", "ip", kTable, "masq"}, "", "list masqueraded addresses"));
  std::string s = delete_script(ip, pj, mj);
  if (s.empty()) return {};
  TRY(auto o, run({"-f", "-"}, s, fmt::format("remove rules of {}", ip.str())));
  return {};
}

Result<bool> drop_table_if_unused() {
  TRY(bool have, table_exists());
  if (!have) return false;
  TRY(std::string pj, run({"-j", "list", "map", "ip", kTable, "ports"}, "", "list published ports"));
  TRY(std::string mj, run({"-j", "list", "set", "ip", kTable, "masq"}, "", "list masqueraded addresses"));
  if (element_count(pj) || element_count(mj)) return false;
  TRY(auto o, run({"delete", "table", "ip", kTable}, "", fmt::format("delete table ip {}", kTable)));
  return true;
}

}  // namespace brig::netns::nft
