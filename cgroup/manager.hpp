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
#include <vector>

#include "runtime/core/error.hpp"

namespace brig::cgroup {

struct Hierarchy {
  std::string mountpoint;                // /sys/fs/cgroup/memory
  std::string root;                      // mountinfo root field ("/" on the host)
  std::vector<std::string> controllers;  // {"memory"}, {"name=systemd"}, {} for v2
  bool v2 = false;
};

enum class Layout { v1, hybrid, v2 };

// Parses /proc/self/mountinfo text into cgroup hierarchies (pure).
std::vector<Hierarchy> parse_mountinfo(const std::string& mountinfo);
Layout layout_of(const std::vector<Hierarchy>& hs);

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
  // Pids in the container's cgroup.
  virtual std::vector<pid_t> pids() const = 0;
  // Signals every process of the cgroup.
  virtual Result<void> signal_all(int sig) const = 0;
  // Removes the directories (retrying EBUSY while processes die).
  virtual Result<void> destroy() = 0;
  // One directory per hierarchy, absolute ("/sys/fs/cgroup/memory/brig/x").
  virtual std::vector<std::string> dirs() const = 0;
  virtual const std::vector<Hierarchy>& hierarchies() const = 0;
  virtual const std::string& path() const = 0;  // the relative cgroup path
};

// The cgroupfs backend for v1, hybrid and v2 hosts.
Result<std::unique_ptr<Manager>> open_fs(const std::string& path);

}  // namespace brig::cgroup
