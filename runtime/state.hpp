// The state store: ROOT/ID/ holds brig's record of one container
// (state.json, written atomically) and its exec fifo. The directory itself is
// the lock: commands on one ID serialize on flock(ROOT/ID), different IDs run
// in parallel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgroup/manager.hpp"

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/state.hpp"

namespace brig::cgroup {
class Manager;
}

namespace brig::runtime {

// What brig remembers about a container (a superset of the OCI state).
struct Record {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start = 0;   // /proc/PID/stat start time, against pid reuse
  uint64_t pid_ino = 0;     // its pidfd's pidfs inode (sys::pidfs_ino), 0 without pidfs
  std::string phase;        // "creating" while create runs, then "created"
  std::string bundle, rootfs, created;
  std::map<std::string, std::string> annotations;
  std::string cgroup_path;  // relative cgroup path in every hierarchy
  // The hierarchies create found in mountinfo (as runc keeps its cgroup
  // paths): later commands use them instead of reading mountinfo again.
  // Empty in a record of an older brig: then mountinfo is read.
  std::vector<cgroup::Hierarchy> cgroup_hierarchies;
  bool own_pidns = false;   // killing init kills the whole container
  // Rootless and not allowed to make its cgroup (as runc's rootless mode):
  // the container has none, and commands act without one.
  bool no_cgroup = false;
  pid_t creator = 0;        // the brig that creates it, while phase is "creating"
  uint64_t creator_start = 0;
  std::string rdt_tasks;    // resctrl tasks file processes go to (linux.intelRdt)
  std::vector<std::string> rdt_remove;  // resctrl groups delete removes
  // config.json as it was at create time: its JSON text, whitespace taken
  // out (a command that needs it parses it; most need only the fields above).
  std::string config;
};

nlohmann::json to_json(const Record& r);
// The text of state.json: to_json(r).dump() in meaning, and byte for byte
// but that the config comes last (as r.config has it); written directly,
// without a document.
std::string state_text(const Record& r);
// The container's cgroup: in the hierarchies create kept (or found again),
// or none for a rootless container that has no cgroup.
Result<std::unique_ptr<cgroup::Manager>> cgroup_of(const Record& r);
// state.json's text -> a Record, or "corrupt state: ...".
Result<Record> record_from_text(std::string_view text);
// The same for a document (to_json's, say).
Result<Record> record_from_json(const nlohmann::json& j);

// Validates a container ID as runc does (^[\w+-\.]+$, not "." or "..").
Result<void> validate_id(const std::string& id);

class Store {
 public:
  explicit Store(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  std::string fifo(const std::string& id) const { return dir(id) + "/exec.fifo"; }

  // A held lock on one container's directory.
  struct Lock {
    Fd dirfd;
  };
  // Makes ROOT/ID (refusing an existing one) and locks it.
  Result<Lock> create(const std::string& id) const;
  // Locks an existing ROOT/ID; "container does not exist" otherwise.
  Result<Lock> open(const std::string& id) const;
  Result<Record> load(const Lock& l, const std::string& id) const;
  Result<Record> load_unlocked(const std::string& id) const;
  // Writes r as state.json (atomically).
  Result<void> save(const Record& r) const;
  // Removes ROOT/ID and everything in it.
  Result<void> remove(const std::string& id) const;
  // IDs of every container (directories with a state.json).
  std::vector<std::string> ids() const;

 private:
  std::string root_;
};

// Status as runc reports it: creating, created, running, paused, stopped.
// `cg`: the container's cgroups, when the caller has them open already (the
// freezer is read through them instead of finding the hierarchies again).
std::string status_of(const Store& store, const Record& r, const cgroup::Manager* cg = nullptr);
bool process_alive(const Record& r);

}  // namespace brig::runtime
