// Address leases of one network, on disk: STATE/NAME/leases.json, changed
// only under the network lock (flock on STATE/lock). A lease names its owner
// (the container's state dir) and init's pid + start time; a lease whose
// owner dir is gone or whose process is dead is reclaimed by the next
// allocation, so a brig killed with -9 leaks nothing for long.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "netns/addr.hpp"
#include "netns/network.hpp"
#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

namespace brig::netns {

struct Lease {
  uint64_t offset = 0;   // host offset in the subnet(s): same for IPv4 and IPv6
  std::string owner;     // container state dir (absolute)
  pid_t pid = 0;
  uint64_t pid_start = 0;
  bool operator==(const Lease&) const = default;
};

// Pure: the lowest free host offset of `net`, skipping the network address,
// the gateway and (IPv4) broadcast; nullopt when the subnet is full.
std::optional<uint64_t> pick_offset(const Network& net, const std::set<uint64_t>& used);

std::string leases_to_json(const std::vector<Lease>& l);
Result<std::vector<Lease>> leases_from_json(const std::string& text);

// Is the lease's owner still there? (state dir present, process alive)
bool lease_alive(const Lease& l);

// The exclusive lock on brig's network state (all networks, nft table).
struct NetLock {
  Fd fd;
};
Result<NetLock> lock_networks();

class LeaseStore {
 public:
  explicit LeaseStore(const Network& net);  // STATE/NAME
  const std::string& dir() const { return dir_; }
  // All under a held NetLock:
  Result<std::vector<Lease>> load() const;
  Result<void> save(const std::vector<Lease>& l) const;
  // Drops dead leases (into *reclaimed, when given: their owners' other
  // state, like nft elements, is the caller's to clean), then takes the
  // lowest free offset for `owner`.
  Result<Lease> allocate(const std::string& owner, pid_t pid, uint64_t pid_start,
                         std::vector<Lease>* reclaimed = nullptr) const;
  // Does `owner` still hold its lease (not reclaimed)?
  Result<bool> holds(const std::string& owner) const;
  // Removes the lease of `owner` (if any).
  Result<void> release(const std::string& owner) const;
  // Drops dead leases; returns them.
  Result<std::vector<Lease>> reclaim() const;

 private:
  const Network& net_;
  std::string dir_;
};

}  // namespace brig::netns
