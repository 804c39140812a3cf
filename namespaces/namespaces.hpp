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
#include "spec/config.hpp"

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
// Whether one of them is a namespace of this type (CLONE_NEW*).
bool joins_type(const std::vector<OpenJoin>& joins, uint64_t flag);

// setns into each (in order), but those whose flag is in skip. Run in the child.
Result<void> enter(const std::vector<OpenJoin>& joins, uint64_t skip);

// The pid and time namespaces among joins, entered for the clone that
// follows: pid applies to our children only, time to us as well (setns).
// restore() (or the destructor) takes us back to ours; the child must not.
class AroundClone {
 public:
  AroundClone() = default;
  AroundClone(const AroundClone&) = delete;
  AroundClone& operator=(const AroundClone&) = delete;
  ~AroundClone() { restore(); }
  Result<void> enter(const std::vector<OpenJoin>& joins);
  void restore();

 private:
  Fd pid_, time_;  // ours, while we are in joined ones
};

// clone3 with the given CLONE_NEW* flags; returns 0 in the child, the child's
// pid in the parent; *pidfd gets a pidfd of the child (CLONE_PIDFD).
// into_cgroup >= 0: clone3(CLONE_INTO_CGROUP) into that cgroup2 directory,
// and no fallback to clone(2) (the caller retries without).
Result<pid_t> clone_child(uint64_t flags, int* pidfd, int into_cgroup = -1);
// The same, for a child that shares our memory (CLONE_VM): it runs fn(arg)
// on `stack` (kept mapped by the caller for as long as the child may run)
// and exits with fn's value. Both sides then run in one
// address space: see InitContext::shared_memory for the turns they must
// keep, unless flags has CLONE_VFORK (we are stopped until the child's
// execve or end, as exec's child does). No clone(2) fallback; false
// `supported()` where we have no clone3 trampoline (only x86_64 has one).
struct ChildStack {
  void* base = nullptr;  // the mapping, a guard page at its bottom
  size_t len = 0;
  void unmap();
};
// 1 MiB (untouched pages cost nothing) above a PROT_NONE guard page.
Result<ChildStack> map_child_stack();
// Returns the pid, or -errno: nothing the C library or a destructor touches
// runs on our side between the clone and the caller's wait.
long clone_child_sharing_memory(uint64_t flags, int* pidfd, int into_cgroup, const ChildStack& stack,
                                int (*fn)(void*), void* arg);
// Its -errno as an error, worded as the copying clones word theirs.
std::unexpected<Error> clone_sharing_memory_failed(long neg_errno, bool into_cgroup);
bool clone_sharing_memory_supported();
// The same, for a user namespace joined by path (among joins): a
// short-lived process joins the pid and time namespaces in joins (for its
// child; before the user namespace where it may, else after it), the user
// namespace, and clones the child as our own child
// (CLONE_PARENT), so that the namespaces the clone makes belong to that user
// namespace and not to ours. The child is in it already; *pidfd comes from
// pidfd_open (or -1). into_cgroup as for clone_child (the kernel checks the
// joining process's credentials there).
Result<pid_t> clone_child_in_userns(uint64_t flags, int* pidfd, const std::vector<OpenJoin>& joins,
                                    int into_cgroup = -1);

// Who writes which map: unprivileged (brig not root), a map of the caller's
// own id alone is written directly (the gid's with setgroups denied first,
// as the kernel requires); any other is tried directly too (a caller with
// CAP_SETUID / CAP_SETGID may write it) and, refused, handed to newuidmap /
// newgidmap, as runc does. A gid map that may go to newgidmap leaves
// setgroups alone: the helper decides.
struct IdMapPlan {
  bool uid_helper = false, gid_helper = false, deny_setgroups = false;
};
IdMapPlan plan_id_maps(const std::vector<spec::IdMapping>& uids, const std::vector<spec::IdMapping>& gids,
                       bool unprivileged, uid_t euid, gid_t egid);
// Writes /proc/PID/{uid_map,gid_map} as plan_id_maps says (the helpers, as
// runc's, within the caller's /etc/subuid and /etc/subgid ranges; found on
// PATH).
Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                           const std::vector<spec::IdMapping>& gids, bool unprivileged);
// "0 1000 1\n..." as the kernel wants it.
std::string format_id_map(const std::vector<spec::IdMapping>& m);

}  // namespace brig::ns
