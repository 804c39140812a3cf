// Namespaces: which to create (clone3 flags) and which to join by path
// (setns), computed from linux.namespaces by pure code; then the few calls
// that apply it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "runtime/core/sanitizers.hpp"
#include "spec/config.hpp"

// clone_vfork's trampoline: x86-64, and not under AddressSanitizer.
#if defined(__x86_64__) && !BRIG_ASAN
#define BRIG_CLONE_TRAMPOLINE 1
#else
#define BRIG_CLONE_TRAMPOLINE 0
#endif

namespace brig::ns {

// CLONE_NEW* flag of an OCI namespace type ("pid", "network", ...), or 0.
uint64_t flag_of(const std::string& type);
// The name /proc/PID/ns/<name> uses for an OCI namespace type.
const char* proc_name_of(const std::string& type);

struct Join {
  std::string type;  // OCI type
  std::string path;
  uint64_t flag = 0;
};

struct Plan {
  uint64_t clone_flags = 0;      // namespaces to create
  std::vector<Join> joins;       // namespaces to enter, user first
  bool new_user() const;
  bool new_pid() const;
  bool has(const std::string& type) const;  // created or joined
  bool creates(const std::string& type) const;
};

// Pure: validates types (unknown, duplicate) and orders joins.
Result<Plan> plan(const std::vector<spec::Namespace>& namespaces);

// An opened namespace to join.
struct OpenJoin {
  Join join;
  Fd fd;
};
// Opens every path in plan.joins (in the caller, so errors are reported before clone).
Result<std::vector<OpenJoin>> open_joins(const Plan& plan);

// setns into each (in order). Run in the child.
Result<void> enter(const std::vector<OpenJoin>& joins, bool skip_pid_time);

// clone3 with the given CLONE_NEW* flags; returns 0 in the child, the child's
// pid in the parent; *pidfd gets a pidfd of the child (CLONE_PIDFD).
// into_cgroup >= 0: clone3(CLONE_INTO_CGROUP) into that cgroup2 directory,
// and no fallback to clone(2) (the caller retries without).
Result<pid_t> clone_child(uint64_t flags, int* pidfd, int into_cgroup = -1);

// A child that shares our memory and runs fn(arg) on a stack of its own
// while we wait, until it execs or exits (clone3 with CLONE_VM|CLONE_VFORK,
// posix_spawn's way): no page tables are copied and neither side takes
// copy-on-write faults afterwards. Returns the child's pid once it has
// exec'd or exited; *pidfd gets a pidfd of it; into_cgroup as clone_child.
// fn must never return into its caller's frames: it execs or _exits. What
// it changes in memory (globals, the heap) is ours to see afterwards. The
// kernel refuses setns(CLONE_NEWUSER) and a time namespace to such a child.
// ENOSYS where we have no trampoline (not x86-64, or under
// AddressSanitizer, which cannot follow a stack it did not make): use
// clone_child then.
Result<pid_t> clone_vfork(int* pidfd, int into_cgroup, int (*fn)(void*), void* arg);

// Writes /proc/PID/{uid_map,gid_map} (and setgroups=deny when asked).
Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                           const std::vector<spec::IdMapping>& gids, bool deny_setgroups);
// "0 1000 1\n..." as the kernel wants it.
std::string format_id_map(const std::vector<spec::IdMapping>& m);

}  // namespace brig::ns
