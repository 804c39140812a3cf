// Published ports and masquerade through nftables, in brig's own table
// `ip brig`: a map (proto . hostPort -> containerIP . containerPort) that
// the DNAT rules of prerouting and output look up, a set of container
// addresses to masquerade and a set of brig bridges traffic to which is left
// alone. And anti-spoofing in `bridge brig`: a frame that enters a bridge
// from a container's port (its veth's host end, a VM's tap) is dropped
// unless its source MAC, and the sender addresses of its ARP, IPv4, IPv6 and
// neighbour advertisements, are the container's own (link-local and the
// unspecified address allowed for IPv6's own machinery). A container adds and
// removes elements only; rules are written once, when a table is made.
// Driven through the `nft` binary (Debian's nftables), argv only, the script
// on stdin: one transaction per call.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

#include "netns/addr.hpp"
#include "netns/network.hpp"
#include "runtime/core/error.hpp"

namespace brig::netns::nft {

inline constexpr const char* kTable = "brig";

// ---- scripts (pure) --------------------------------------------------------
// `family`: AF_INET (table ip brig) or AF_INET6 (table ip6 brig); an
// address picks its table by its own family.
std::string table_script(int family = AF_INET);
std::string add_script(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge,
                       bool again = false);
// From `nft -j list map ip brig ports` / `... set ip brig masq` output, the
// script deleting what maps to `ip` ("" when nothing does).
std::string delete_script(const Ip& ip, const std::string& ports_json, const std::string& masq_json);
// How many elements the map and set hold (from the same JSON).
size_t element_count(const std::string& json);

// ---- applying (under the network lock) -------------------------------------
// $BRIG_NFT or "nft" (found on PATH, /usr/sbin included).
std::string binary();
// Runs nft with `args`, `input` on stdin; stdout on success, an error naming
// `what` with nft's own message otherwise.
Result<std::string> run(const std::vector<std::string>& args, const std::string& input, const std::string& what);
// False also when there is no nft to run at all: then it never made one.
Result<bool> table_exists(int family = AF_INET);
Result<void> ensure_table(int family = AF_INET);
Result<void> add(const Ip& ip, const std::vector<PortMap>& ports, bool masquerade, const std::string& bridge);
Result<void> remove(const Ip& ip);
// `network reload`: the table of `family` made (or its rules rewritten) and
// every element of `nat` of that family put back, in one transaction.
struct Nat {
  Ip ip;
  std::vector<PortMap> ports;
  bool masquerade = false;
  std::string bridge;
};
Result<void> restore(int family, const std::vector<Nat>& nat);
// prune: drops the tables no container uses; true if one was removed.
Result<bool> drop_table_if_unused();

// ---- anti-spoofing (table bridge brig) ------------------------------------
// What may leave the bridge port `dev`: frames from `mac`, carrying `v4` and
// `v6` (when set) as their sender addresses.
struct Guard {
  std::string dev, mac;
  std::optional<Ip> v4, v6;
};
std::string guard_table_script();
std::string guard_add_script(const Guard& g);
// Adds then deletes each element in one transaction: no error for an element
// that is not there (a create that died before adding it).
std::string guard_remove_script(const Guard& g);
// Both under the network lock. guard makes the table when it is missing.
Result<void> guard(const Guard& g);
Result<void> unguard(const Guard& g);

}  // namespace brig::netns::nft
