// brig networks: what a container asks for (annotations), what a network is
// (definition files under brig's config dir, or the built-in default), and
// where brig keeps its network state. Pure code but for the file reads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "netns/addr.hpp"
#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::netns {

// Annotation keys (documented in README and brig(8)).
inline constexpr const char* kNetworkAnnotation = "io.brig.network";
inline constexpr const char* kPortsAnnotation = "io.brig.network.ports";

inline constexpr const char* kDefaultNetwork = "brig";

struct Network {
  std::string name;
  std::string bridge;
  Cidr subnet;                  // IPv4
  Ip gateway;                   // on the bridge; the containers' default route
  std::optional<Cidr> subnet6;  // IPv6, optional
  std::optional<Ip> gateway6;
  uint32_t mtu = 1500;
  bool masquerade = false;      // outbound NAT (nftables) for the containers
};

// The built-in network "brig": bridge brig0, 10.87.0.0/16, no masquerade.
Network default_network();
// A definition file's JSON (keys: bridge, subnet, gateway, subnet6, gateway6,
// mtu, masquerade); gateways default to the first host of their subnet.
Result<Network> parse_network(const std::string& name, const nlohmann::json& j);
nlohmann::json to_json(const Network& n);
// Valid network names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.
bool valid_network_name(const std::string& name);

// $BRIG_CONFIG_DIR or /etc/brig; definitions live in <it>/networks/NAME.json.
std::string config_dir();
// $BRIG_NETWORK_STATE_DIR or /run/brig-network: leases, locks, what brig made.
std::string state_dir();
// Loads NAME (the file if there is one; "brig" falls back to the default).
Result<Network> load_network(const std::string& name);
// Every network: the defined ones and the default.
Result<std::vector<Network>> list_networks();

struct PortMap {
  uint16_t host = 0, container = 0;
  std::string proto;  // "tcp" or "udp"
  bool operator==(const PortMap&) const = default;
};
// "8080:80/tcp,5353:53/udp" (the protocol defaults to tcp).
Result<std::vector<PortMap>> parse_ports(const std::string& s);
std::string format_ports(const std::vector<PortMap>& p);

// What a container asks of brig's networking.
struct Request {
  std::string network;
  std::vector<PortMap> ports;
  std::map<std::string, spec::NetDevice> net_devices;  // linux.netDevices
  bool attach() const { return !network.empty(); }
  bool empty() const { return network.empty() && net_devices.empty(); }
};
// Pure: brig networking only for a NEW network namespace whose config names a
// network in the annotation; a netns given by path is never touched.
Result<Request> request_for(const spec::Config& cfg);

}  // namespace brig::netns
