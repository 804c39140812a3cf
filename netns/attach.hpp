// Wiring a container into a brig network, and taking it out again.
//
// setup() runs in the parent after clone, while init waits: it makes the
// bridge if missing (with its gateway addresses), takes a lease, creates a
// veth pair whose peer is born in the container's netns as eth0, puts the
// host end on the bridge, configures lo/eth0/addresses/default routes inside,
// adds published ports and masquerade to nftables, and moves
// linux.netDevices in. What it allocates is written to <state dir>/network.json
// before it is made, so teardown() (delete, a failed create, `delete --force`
// after a brig killed half-way) can always undo it. Before the host end
// joins the bridge, nftables' `bridge brig` table is told what that port may
// send (mac_for(owner) and the leased addresses: see nft.hpp).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "netns/addr.hpp"
#include "netns/lease.hpp"
#include "netns/network.hpp"
#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "runtime/core/rollback.hpp"

namespace brig::netns {

// What one container (or VM) holds of a network.
struct Attachment {
  std::string network, bridge;
  std::string host_dev;            // host end of the veth, or the tap
  bool host_dev_made = false;      // brig made it (only then does teardown delete it)
  std::string owner;               // the container's state dir
  std::optional<Cidr> ip, ip6;     // with the subnet's prefix
  std::optional<Ip> gateway, gateway6;
  uint32_t mtu = 0;
  std::vector<PortMap> ports;
  bool masquerade = false;
};
nlohmann::json to_json(const Attachment& a);
Result<Attachment> attachment_from_json(const nlohmann::json& j);
// The record's path in a container's state dir.
std::string record_path(const std::string& owner);
// Pure: "vb" + 8 hex digits of a hash of the owner (fits IFNAMSIZ).
std::string host_dev_name(const std::string& owner, const char* prefix = "vb");
// Pure: the container's (or VM's) MAC on the bridge, locally administered,
// from the same hash: "52:54:" + its 8 hex digits.
std::string mac_for(const std::string& owner);

// Brings up `lo` of a network namespace (an fd of it), as runc does in every
// network namespace it creates: a new one starts with its loopback down, and
// 127.0.0.1 unreachable.
Result<void> loopback_up(BorrowedFd netns);

// The same for a runtime that shares its memory with init
// (InitContext::shared_memory), done while init sets up: prepared before
// the clone (the request, an fd of our own namespace), run right after it
// in raw syscalls only (runtime/core/raw.hpp: no libc, nothing outside this
// object and the stack), its outcome read once init has handed the turn
// back. Joins init's namespace through its pidfd for the socket (Linux 5.8;
// /proc/PID/ns/net before), then ours again.
class RawLoopbackUp {
 public:
  Result<void> prepare();
  void run(int pidfd, pid_t pid) noexcept;
  // "network namespace of init PID: netlink: set up lo: ..." as loopback_up
  // words it. A failure to return to our own namespace is one too.
  Result<void> outcome(pid_t pid) const;

 private:
  Fd own_;
  alignas(8) unsigned char msg_[64] = {};
  unsigned len_ = 0;
  int err_ = 0;
  const char* step_ = nullptr;
};

// The container side of a setup: init's pid (for its netns and the lease).
Result<void> setup(const Request& rq, const std::string& owner, pid_t pid, Rollback& rb);
// Undoes what <owner>/network.json records; a missing record is fine.
Result<void> teardown(const std::string& owner);
// Reads the record (nullopt when the container has no brig network).
Result<std::optional<Attachment>> load_attachment(const std::string& owner);

// For the microVM backend: a persistent tap device `tap` on the network's
// bridge, up, with a lease for `owner` (pid: the VMM). The guest configures
// the returned address itself; `ports` are published to it as for a veth.
// teardown(owner) removes all of it.
Result<Attachment> attach_tap(const std::string& network, const std::string& tap, const std::string& owner,
                              pid_t pid, const std::vector<PortMap>& ports = {});

// Inside a microVM guest: lo up, and on `dev` the attachment's addresses and
// default routes, in this process's network namespace.
Result<void> configure_here(const Attachment& a, const std::string& dev);

// `brig network inspect`: a network, its leases and its bridge as seen in
// this network namespace.
struct NetworkStatus {
  Network net;
  struct Held {
    Lease lease;
    Cidr ip;
    std::optional<Cidr> ip6;
    bool alive = false;
  };
  std::vector<Held> leases;
  bool bridge_exists = false, bridge_up = false, bridge_made_by_brig = false;
};
Result<NetworkStatus> status(const Network& net);
nlohmann::json to_json(const NetworkStatus& s);

// prune: reclaims dead leases of every network, deletes bridges brig made
// that nothing uses any more, and the nft table when empty. Lines describing
// what went go to `removed`.
Result<void> prune(std::vector<std::string>& removed);

// reload: puts brig's nftables state back for every live lease after
// someone removed it (`nft flush ruleset`, a firewall service's reload):
// each port's anti-spoofing guard, and the published ports and masquerade
// (each table made again or its rules rewritten, every element put back).
// Dead leases are reclaimed first. Lines saying what was done go to `done`.
Result<void> reload(std::vector<std::string>& done);

}  // namespace brig::netns
