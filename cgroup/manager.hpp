// cgroups: one manager interface over the host's hierarchies.
//
// The host is v1 (every controller its own hierarchy), hybrid (v1 controllers
// plus cgroup2 at /sys/fs/cgroup/unified, as on these machines) or pure v2.
// A container's cgroup is one relative path (e.g. /brig/ID) made in every
// hierarchy brig uses. Resource limits come with their own plan (see the
// cgroups issue); this layer creates, joins, lists, signals and removes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"

namespace brig::cgroup {

struct Hierarchy {
  std::string mountpoint;                // /sys/fs/cgroup/memory
  std::string root;                      // mountinfo root field ("/" on the host)
  std::vector<std::string> controllers;  // {"memory"}, {"name=systemd"}, {} for v2
  bool v2 = false;
};

enum class Layout { v1, hybrid, v2 };

// One /proc/self/mountinfo line split at its spaces:
//   id parent major:minor root mountpoint options [optional...] - fstype source superopts
// `fstype` is the index of the fstype field; false for a malformed line.
bool split_mountinfo_line(std::string_view line, std::vector<std::string_view>& fields, size_t& fstype);

// Parses /proc/self/mountinfo text into cgroup hierarchies (pure).
std::vector<Hierarchy> parse_mountinfo(const std::string& mountinfo);
Layout layout_of(const std::vector<Hierarchy>& hs);

enum class Freezer { thawed, freezing, frozen };

// A new process joining the container's cgroup by itself, before it does
// anything else. Moving another process (a pid written to cgroup.procs)
// takes the kernel's global cgroup_threadgroup_rwsem for writing, an RCU
// grace period per v1 hierarchy (11 on these hosts) during which every fork
// on the machine waits; a single thread moving itself ("0" written to a v1
// `tasks` file) takes no global lock. The files are opened by the runtime,
// before the clone: the kernel checks the opener's credentials, so this
// works from a new user namespace too. The v2 directory is joined at birth
// with clone3(CLONE_INTO_CGROUP) (a thread cannot move alone there).
struct SelfJoin {
  std::vector<Fd> tasks;           // <dir>/tasks of each v1 hierarchy, write-only
  std::vector<std::string> dirs;   // the same directories, for error messages
  Fd v2_dir;                       // the cgroup2 directory, for CLONE_INTO_CGROUP
  bool active() const { return !tasks.empty() || v2_dir.valid(); }
};
// Run in the new process: writes "0" to every tasks file.
Result<void> join_self(const SelfJoin& j);

// Where the container's cgroup goes: cgroupsPath absolute → as is; relative →
// under /brig; absent → /brig/<id>. Never under the caller's own cgroup.
std::string resolve_path(const std::optional<std::string>& cgroups_path, const std::string& id);

class Manager {
 public:
  virtual ~Manager() = default;
  // Makes the directories (each made one is remembered for destroy).
  virtual Result<void> create() = 0;
  // Moves pid into the cgroup in every hierarchy.
  virtual Result<void> add(pid_t pid) = 0;
  // Opens what a new process needs to join the cgroup itself (SelfJoin).
  virtual Result<SelfJoin> prepare_self_join() const = 0;
  // Pids in the container's cgroup.
  virtual std::vector<pid_t> pids() const = 0;
  // Signals every process of the cgroup.
  virtual Result<void> signal_all(int sig) const = 0;
  // Removes the directories (retrying EBUSY while processes die).
  virtual Result<void> destroy() = 0;
  // Removes the container's own directories if they hold no process; false
  // (some may be gone already) when one is busy or cannot be removed.
  virtual bool remove_if_empty() = 0;
  // One directory per hierarchy, absolute ("/sys/fs/cgroup/memory/brig/x").
  virtual std::vector<std::string> dirs() const = 0;
  virtual const std::vector<Hierarchy>& hierarchies() const = 0;
  virtual const std::string& path() const = 0;  // the relative cgroup path

  // The directory holding `controller`'s files (v1: its hierarchy; v2: the
  // one directory when the controller is enabled there); "" = the unified dir.
  virtual std::optional<std::string> dir_of(std::string_view controller) const = 0;
  virtual bool unified() const = 0;  // pure v2: every controller in one tree

  // Writes linux.resources (devices included: v1 lists, v2 an eBPF program).
  virtual Result<void> apply(const spec::Resources& r) = 0;
  // Freezes or thaws every process, waiting until the state settles.
  virtual Result<void> freeze(bool frozen) = 0;
  virtual Freezer freezer_state() const = 0;
  // Before processes go in: thaws the container's own frozen cgroup, and
  // fails (instead of hanging) when a parent cgroup keeps it frozen.
  virtual Result<void> ensure_thawed() = 0;
};

// exec --cgroup "[controller:]sub": moves pid into an existing sub-cgroup of
// the container's cgroup (in the controller's hierarchy, or in all of them).
Result<void> add_to_sub(const Manager& m, pid_t pid, const std::string& arg);

// The cgroupfs backend for v1, hybrid and v2 hosts.
// `known`: the hierarchies a record kept (Record::cgroup_hierarchies), used
// while each is still a cgroup filesystem of its kind (statfs); when one is
// not, or when empty, /proc/self/mountinfo is read for them.
Result<std::unique_ptr<Manager>> open_fs(const std::string& path, const std::vector<Hierarchy>& known = {});
// The directory of this process's own cgroup in each of hs (from
// /proc/self/cgroup; the hierarchy's root where it is not listed).
std::vector<std::string> own_dirs(const std::vector<Hierarchy>& hs);
// No cgroup at all (a rootless container whose cgroup could not be made):
// no hierarchies, so processes are not moved, nothing is made or removed,
// and pause and resource writes fail. Its processes are those in init's pid
// namespace when that is the container's own (own_pidns), else init alone;
// none while init (init > 0, with its start time and pidfs inode) is not the container's.
std::unique_ptr<Manager> none(const std::string& path, pid_t init = 0, uint64_t init_start = 0, uint64_t init_ino = 0,
                              bool own_pidns = false);
// The same cgroup in the same hierarchies as `m`, without reading mountinfo
// again, and without m's record of what its create() made (so destroy()
// removes only the container's own directories).
std::unique_ptr<Manager> same_cgroup(const Manager& m);

// runc's `events --stats` data object ({"cpu":..,"memory":..,"pids":..,...}).
nlohmann::ordered_json stats(const Manager& m, pid_t init_pid);

// Notices OOM kills inside the cgroup (v1 memory.oom_control eventfd, v2
// memory.events oom_kill through inotify). fd() becomes readable on news;
// check() then says how many new OOM kills there were (consuming the news).
class OomWatch {
 public:
  static Result<OomWatch> open(const Manager& m);
  int fd() const { return fd_.get(); }
  int check();
 private:
  Fd fd_, target_;
  bool v2_ = false;
  std::string events_;
  uint64_t seen_ = 0;
};

// v2 devices: a BPF_PROG_TYPE_CGROUP_DEVICE program for `rules`, attached to
// dir (replacing brig's earlier one).
Result<void> attach_device_program(const std::string& dir, const std::vector<spec::DeviceCgroup>& rules);

}  // namespace brig::cgroup
