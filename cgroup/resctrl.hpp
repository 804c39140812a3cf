// Intel RDT through the resctrl filesystem (config-linux.md "IntelRdt").
//
// A container with linux.intelRdt is put in a resctrl group: the one named by
// closID (made when schemata are given and it is missing, never removed), or
// its own group named after the container ID (made, and removed on delete).
// With enableMonitoring it also gets a MON group, mon_groups/<id>, removed on
// delete. The group's schemata file gets l3CacheSchema, then memBwSchema,
// then schemata; a group that already exists must already hold them.
//
// Plan-then-apply: plan() is pure; prepare() makes the groups before the
// clone, add_task() puts a process in them, remove() undoes prepare().
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/rollback.hpp"
#include "spec/config.hpp"

namespace brig::cgroup::resctrl {

struct Plan {
  std::string group;                  // below the resctrl root; "" is the root (closID "/")
  bool own_group = false;             // no closID: the group is the container's own
  std::vector<std::string> schemata;  // lines for the group's schemata file, in order
  std::string mon_group;              // "mon_groups/<id>" with enableMonitoring, else ""
};

// What a container holds: the tasks file its processes go to, and the
// directories delete removes (innermost first). Kept in the container's state.
struct Applied {
  std::string tasks;
  std::vector<std::string> remove;
};

Result<Plan> plan(const spec::IntelRdt& rdt, const std::string& id);

// Whether `have` (a schemata file's text) already holds every line of `want`:
// same resource, same value for each domain given (hex masks compared as
// numbers, so "L3:0=00ff" matches the kernel's "L3:0=ff").
bool schemata_hold(const std::string& have, const std::vector<std::string>& want);

// The resctrl mount point from /proc/self/mountinfo text (pure); "" if none.
std::string mount_point_in(const std::string& mountinfo);

// Makes the groups and writes the schemata; what it makes is undone by `rb`.
Result<Applied> prepare(const Plan& p, Rollback& rb);
// Puts a process (the container's init, or an exec'd one) in the group.
Result<void> add_task(const Applied& a, pid_t pid);
// `update --l3-cache-schema/--mem-bw-schema`: writes lines to the schemata
// of the group whose tasks file (or MON group's) is `tasks`.
Result<void> update_schemata(const std::string& tasks, const std::vector<std::string>& lines);
// Whether a resctrl filesystem is mounted (`features`).
bool available();
// Removes what prepare() made (delete); already-gone directories are fine.
Result<void> remove(const std::vector<std::string>& dirs);

}  // namespace brig::cgroup::resctrl
