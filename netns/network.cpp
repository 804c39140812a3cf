#include "netns/network.hpp"

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "runtime/core/sys.hpp"

namespace brig::netns {

Network default_network() {
  Network n;
  n.name = kDefaultNetwork;
  n.bridge = "brig0";
  n.subnet = *Cidr::parse("10.87.0.0/16");
  n.gateway = *Ip::parse("10.87.0.1");
  return n;
}

bool valid_network_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

namespace {

Result<Cidr> subnet_field(const std::string& where, const nlohmann::json& v, int family) {
  if (!v.is_string()) return fail_msg("{}: must be a string like \"10.1.0.0/24\"", where);
  auto c = Cidr::parse(v.get<std::string>(), true);
  if (!c || c->ip.family != family)
    return fail_msg("{}: \"{}\" is not an {} network address with prefix", where, v.get<std::string>(),
                    family == AF_INET ? "IPv4" : "IPv6");
  int bits = static_cast<int>(c->ip.size() * 8);
  if (c->prefix > bits - 2) return fail_msg("{}: /{} leaves no room for containers", where, c->prefix);
  if (family == AF_INET && c->prefix < 8) return fail_msg("{}: /{} is too large", where, c->prefix);
  return *c;
}

Result<Ip> gateway_field(const std::string& where, const nlohmann::json& j, const char* key, const Cidr& net) {
  if (!j.contains(key)) return net.host(1);
  const auto& v = j.at(key);
  auto ip = v.is_string() ? Ip::parse(v.get<std::string>()) : std::nullopt;
  if (!ip || !net.contains(*ip)) return fail_msg("{}.{}: must be an address inside {}", where, key, net.str());
  uint64_t off = net.offset_of(*ip);
  if (off == 0 || (ip->v4() && off + 1 == net.host_count()))
    return fail_msg("{}.{}: {} is not a host address of {}", where, key, ip->str(), net.str());
  return *ip;
}

}  // namespace

Result<Network> parse_network(const std::string& name, const nlohmann::json& j) {
  std::string w = "network " + name;
  if (!valid_network_name(name)) return fail_msg("{}: invalid network name", w);
  if (!j.is_object()) return fail_msg("{}: definition must be a JSON object", w);
  static const char* known[] = {"bridge", "subnet", "gateway", "subnet6", "gateway6", "mtu", "masquerade"};
  for (auto& [k, v] : j.items())
    if (std::find_if(std::begin(known), std::end(known), [&](const char* x) { return k == x; }) == std::end(known))
      return fail_msg("{}: unknown key \"{}\"", w, k);
  Network n;
  n.name = name;
  if (!j.contains("bridge") || !j["bridge"].is_string()) return fail_msg("{}.bridge: must be a string", w);
  n.bridge = j["bridge"].get<std::string>();
  if (!spec::valid_ifname(n.bridge))
    return fail_msg("{}.bridge: \"{}\" is not a valid interface name", w, n.bridge);
  if (!j.contains("subnet")) return fail_msg("{}.subnet: must be set", w);
  TRY(n.subnet, subnet_field(w + ".subnet", j["subnet"], AF_INET));
  TRY(n.gateway, gateway_field(w, j, "gateway", n.subnet));
  if (j.contains("subnet6")) {
    TRY(Cidr s6, subnet_field(w + ".subnet6", j["subnet6"], AF_INET6));
    if (s6.prefix < 64) return fail_msg("{}.subnet6: use a /64 or smaller", w);
    n.subnet6 = s6;
    TRY(Ip g6, gateway_field(w, j, "gateway6", s6));
    n.gateway6 = g6;
  } else if (j.contains("gateway6")) {
    return fail_msg("{}.gateway6: needs subnet6", w);
  }
  if (j.contains("mtu")) {
    if (!j["mtu"].is_number_unsigned() || j["mtu"].get<uint64_t>() < 576 || j["mtu"].get<uint64_t>() > 65535)
      return fail_msg("{}.mtu: must be a number between 576 and 65535", w);
    n.mtu = j["mtu"].get<uint32_t>();
  }
  if (j.contains("masquerade")) {
    if (!j["masquerade"].is_boolean()) return fail_msg("{}.masquerade: must be true or false", w);
    n.masquerade = j["masquerade"].get<bool>();
  }
  return n;
}

nlohmann::json to_json(const Network& n) {
  nlohmann::json j = {{"name", n.name},       {"bridge", n.bridge}, {"subnet", n.subnet.str()},
                      {"gateway", n.gateway.str()}, {"mtu", n.mtu}, {"masquerade", n.masquerade}};
  if (n.subnet6) j["subnet6"] = n.subnet6->str();
  if (n.gateway6) j["gateway6"] = n.gateway6->str();
  return j;
}

std::string config_dir() {
  const char* e = ::getenv("BRIG_CONFIG_DIR");
  return e && *e ? e : "/etc/brig";
}

std::string state_dir() {
  const char* e = ::getenv("BRIG_NETWORK_STATE_DIR");
  return e && *e ? e : "/run/brig-network";
}

Result<Network> load_network(const std::string& name) {
  if (!valid_network_name(name)) return fail_msg("network \"{}\": invalid network name", name);
  std::string path = config_dir() + "/networks/" + name + ".json";
  auto text = sys::read_file(path);
  if (!text) {
    if (text.error().err == ENOENT) {
      if (name == kDefaultNetwork) return default_network();
      return fail_msg("network \"{}\" not found: no {}", name, path);
    }
    return fail(std::move(text.error()));
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return fail_msg("{}: invalid JSON", path);
  auto n = parse_network(name, j);
  if (!n) return fail(std::move(n.error()).context(path));
  return n;
}

Result<std::vector<Network>> list_networks() {
  std::vector<Network> out;
  std::string dir = config_dir() + "/networks";
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
      std::string f = e->d_name;
      if (f.size() > 5 && f.ends_with(".json") && valid_network_name(f.substr(0, f.size() - 5)))
        names.push_back(f.substr(0, f.size() - 5));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (auto& n : names) {
      TRY(Network net, load_network(n));
      out.push_back(std::move(net));
    }
  }
  if (std::none_of(out.begin(), out.end(), [](const Network& n) { return n.name == kDefaultNetwork; }))
    out.insert(out.begin(), default_network());
  return out;
}

Result<std::vector<PortMap>> parse_ports(const std::string& s) {
  std::vector<PortMap> out;
  auto bad = [&](const std::string& item, const char* why) {
    return fail_msg("annotation {}: \"{}\": {} (want hostPort:containerPort[/tcp|/udp])", kPortsAnnotation, item,
                    why);
  };
  auto num = [](std::string_view v, uint16_t& out) {
    unsigned x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size() || x == 0 || x > 65535) return false;
    out = static_cast<uint16_t>(x);
    return true;
  };
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? s.size() + 1 : comma + 1;
    if (item.empty()) {
      if (s.empty()) break;
      return bad(item, "empty entry");
    }
    PortMap m;
    m.proto = "tcp";
    std::string ports = item;
    if (auto sl = item.find('/'); sl != std::string::npos) {
      m.proto = item.substr(sl + 1);
      ports = item.substr(0, sl);
      if (m.proto != "tcp" && m.proto != "udp") return bad(item, "protocol must be tcp or udp");
    }
    auto colon = ports.find(':');
    if (colon == std::string::npos) return bad(item, "missing ':'");
    if (!num(std::string_view(ports).substr(0, colon), m.host) ||
        !num(std::string_view(ports).substr(colon + 1), m.container))
      return bad(item, "ports must be numbers from 1 to 65535");
    for (auto& o : out)
      if (o.host == m.host && o.proto == m.proto) return bad(item, "host port published twice");
    out.push_back(m);
  }
  return out;
}

std::string format_ports(const std::vector<PortMap>& p) {
  std::string s;
  for (auto& m : p) s += fmt::format("{}{}:{}/{}", s.empty() ? "" : ",", m.host, m.container, m.proto);
  return s;
}

Result<Request> request_for(const spec::Config& cfg) {
  Request r;
  const spec::Namespace* net = nullptr;
  if (cfg.linux)
    for (auto& n : cfg.linux->namespaces)
      if (n.type == "network") net = &n;
  bool new_netns = net && (!net->path || net->path->empty());
  auto it = cfg.annotations.find(kNetworkAnnotation);
  auto pit = cfg.annotations.find(kPortsAnnotation);
  if (cfg.linux && !cfg.linux->netDevices.empty()) {
    if (!net) return fail_msg("linux.netDevices: needs a network namespace (linux.namespaces)");
    r.net_devices = cfg.linux->netDevices;
  }
  // Given a netns by path (podman, CRI), the caller does the networking.
  if (!new_netns || it == cfg.annotations.end()) return r;
  if (!valid_network_name(it->second))
    return fail_msg("annotation {}: \"{}\" is not a valid network name", kNetworkAnnotation, it->second);
  r.network = it->second;
  if (pit != cfg.annotations.end()) {
    TRY(r.ports, parse_ports(pit->second));
  }
  return r;
}

}  // namespace brig::netns
