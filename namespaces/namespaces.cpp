#include "namespaces/namespaces.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace brig::ns {
namespace {
struct Kind {
  const char* type;
  uint64_t flag;
  const char* proc;
};
// Order here is the order in which namespaces are joined: user first, so the
// joins after it happen with its privileges; mount last among the rest so
// that paths to the others are still resolved in the caller's mount view.
constexpr Kind kKinds[] = {
    {"user", CLONE_NEWUSER, "user"},     {"pid", CLONE_NEWPID, "pid"},
    {"time", CLONE_NEWTIME, "time"},     {"network", CLONE_NEWNET, "net"},
    {"ipc", CLONE_NEWIPC, "ipc"},        {"uts", CLONE_NEWUTS, "uts"},
    {"cgroup", CLONE_NEWCGROUP, "cgroup"}, {"mount", CLONE_NEWNS, "mnt"},
};
const Kind* find(const std::string& t) {
  for (auto& k : kKinds)
    if (t == k.type) return &k;
  return nullptr;
}
}  // namespace

uint64_t flag_of(const std::string& type) {
  auto k = find(type);
  return k ? k->flag : 0;
}
const char* proc_name_of(const std::string& type) {
  auto k = find(type);
  return k ? k->proc : "";
}

bool Plan::new_user() const { return clone_flags & CLONE_NEWUSER; }
bool Plan::new_pid() const { return clone_flags & CLONE_NEWPID; }
bool Plan::creates(const std::string& type) const { return clone_flags & flag_of(type); }
bool Plan::has(const std::string& type) const {
  if (creates(type)) return true;
  return std::any_of(joins.begin(), joins.end(), [&](const Join& j) { return j.type == type; });
}

Result<Plan> plan(const std::vector<spec::Namespace>& namespaces) {
  Plan p;
  uint64_t seen = 0;
  for (size_t i = 0; i < namespaces.size(); i++) {
    const auto& n = namespaces[i];
    const Kind* k = find(n.type);
    if (!k) return fail_msg("linux.namespaces[{}].type: unknown namespace \"{}\"", i, n.type);
    if (seen & k->flag) return fail_msg("linux.namespaces[{}].type: duplicate namespace \"{}\"", i, n.type);
    seen |= k->flag;
    if (n.path && !n.path->empty())
      p.joins.push_back({n.type, *n.path, k->flag});
    else
      p.clone_flags |= k->flag;
  }
  auto rank = [](const Join& j) {
    for (size_t i = 0; i < std::size(kKinds); i++)
      if (j.type == kKinds[i].type) return i;
    return std::size(kKinds);
  };
  std::stable_sort(p.joins.begin(), p.joins.end(),
                   [&](const Join& a, const Join& b) { return rank(a) < rank(b); });
  return p;
}

Result<std::vector<OpenJoin>> open_joins(const Plan& plan) {
  std::vector<OpenJoin> out;
  for (const auto& j : plan.joins) {
    auto fd = sys::open(j.path, O_RDONLY);
    if (!fd) return fail(std::move(fd.error()).context(fmt::format("join {} namespace", j.type)));
    out.push_back({j, std::move(*fd)});
  }
  return out;
}

Result<void> enter(const std::vector<OpenJoin>& joins, uint64_t skip) {
  for (const auto& j : joins) {
    if (j.join.flag & skip) continue;
    if (::setns(j.fd.get(), static_cast<int>(j.join.flag)) < 0)
      return fail_errno("setns {} namespace {}", j.join.type, j.join.path);
  }
  return {};
}

Result<void> AroundClone::enter(const std::vector<OpenJoin>& joins) {
  for (const auto& j : joins) {
    if (!(j.join.flag & (CLONE_NEWPID | CLONE_NEWTIME))) continue;
    bool pid = j.join.flag == CLONE_NEWPID;
    Fd& keep = pid ? pid_ : time_;
    if (!keep) {
      TRY(keep, sys::open(pid ? "/proc/self/ns/pid_for_children" : "/proc/self/ns/time", O_RDONLY));
    }
    if (::setns(j.fd.get(), static_cast<int>(j.join.flag)) < 0)
      return fail_errno("setns {} namespace {}", j.join.type, j.join.path);
  }
  return {};
}

void AroundClone::restore() {
  if (pid_) (void)::setns(pid_.get(), CLONE_NEWPID);
  if (time_) (void)::setns(time_.get(), CLONE_NEWTIME);
  pid_.reset();
  time_.reset();
}

bool joins_type(const std::vector<OpenJoin>& joins, uint64_t flag) {
  for (const auto& j : joins)
    if (j.join.flag == flag) return true;
  return false;
}

Result<pid_t> clone_child(uint64_t flags, int* pidfd, int into_cgroup) {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  if (into_cgroup >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(into_cgroup);
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0 && into_cgroup >= 0) return fail_errno("clone3 into cgroup");
  if (pid < 0 && errno == ENOSYS) {
    // Kernels before 5.3: plain clone. CLONE_NEWTIME shares its bit with
    // CSIGNAL there, so time namespaces need clone3.
    if (flags & CLONE_NEWTIME) return fail_err(ENOSYS, "clone3 (needed for a time namespace)");
    *pidfd = -1;
    pid = ::syscall(SYS_clone, (flags & ~CLONE_PIDFD) | SIGCHLD, 0, 0, 0, 0);
  }
  if (pid < 0) return fail_errno("clone");
  return static_cast<pid_t>(pid);
}

namespace {
constexpr size_t kGuard = 4096, kChildStack = size_t{1} << 20;
}

Result<ChildStack> map_child_stack() {
  ChildStack st;
  st.len = kGuard + kChildStack;
  void* m = ::mmap(nullptr, st.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
  if (m == MAP_FAILED) return fail_errno("map a stack for the child");
  st.base = m;
  if (::mprotect(m, kGuard, PROT_NONE) < 0) {
    auto e = fail_errno("guard the child's stack");
    st.unmap();
    return e;
  }
  return st;
}

void ChildStack::unmap() {
  if (base) ::munmap(base, len);
  base = nullptr;
}

#if defined(__x86_64__)
// clone3 onto a new stack: the child cannot return into the caller's frames
// (they are the parent's, in the same memory), so it calls fn(arg) here and
// exits with its value. In: rdi clone_args, rsi their size, rdx fn, rcx arg;
// r8 and r9 survive the syscall (rcx and r11 do not). Returns the pid, or
// -errno, in the parent.
extern "C" long brig_clone3_on_stack(struct clone_args* args, size_t size, int (*fn)(void*), void* arg);
__asm__(
    // A section of its own, as -ffunction-sections gives every function, so
    // that the linker can place it with the hot code (BRIG_LAYOUT).
    "  .pushsection .text.brig_clone3_on_stack, \"ax\", @progbits\n"
    "  .globl brig_clone3_on_stack\n"
    "  .hidden brig_clone3_on_stack\n"
    "  .type brig_clone3_on_stack, @function\n"
    "brig_clone3_on_stack:\n"
    "  endbr64\n"
    "  mov %rdx, %r8\n"
    "  mov %rcx, %r9\n"
    "  mov $435, %eax\n"  // SYS_clone3
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jz 1f\n"
    "  ret\n"
    "1:\n"
    "  xor %ebp, %ebp\n"  // the end of the child's frame chain
    "  and $-16, %rsp\n"
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n"  // SYS_exit
    "  syscall\n"
    "  ud2\n"
    "  .size brig_clone3_on_stack, .-brig_clone3_on_stack\n"
    "  .popsection\n");

bool clone_sharing_memory_supported() { return true; }

long clone_child_sharing_memory(uint64_t flags, int* pidfd, int into_cgroup, const ChildStack& stack,
                                int (*fn)(void*), void* arg) {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_VM | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(stack.base) + kGuard;
  args.stack_size = stack.len - kGuard;
  if (into_cgroup >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(into_cgroup);
  }
  return brig_clone3_on_stack(&args, sizeof args, fn, arg);
}
#else
bool clone_sharing_memory_supported() { return false; }

long clone_child_sharing_memory(uint64_t, int*, int, const ChildStack&, int (*)(void*), void*) { return -ENOSYS; }
#endif

std::unexpected<Error> clone_sharing_memory_failed(long neg_errno, bool into_cgroup) {
  return fail_err(static_cast<int>(-neg_errno), into_cgroup ? "clone3 into cgroup" : "clone3");
}

Result<pid_t> clone_child_in_userns(uint64_t flags, int* pidfd, const std::vector<OpenJoin>& joins, int into_cgroup) {
  const OpenJoin* user = nullptr;
  for (const auto& j : joins)
    if (j.join.flag == CLONE_NEWUSER) user = &j;
  if (!user) return fail_msg("clone: no user namespace to join");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe (to join user namespace {})", user->join.path);
  Fd rd(p[0]), wr(p[1]);
  struct Answer {
    int32_t pid;    // the child, or -1
    int32_t err;    // errno when pid is -1
    int32_t where;  // the join that failed (index in joins), or -1: the clone
  };
  // Forked before anything is joined, so that this process stays in our pid
  // namespace and the pid it reads back is one we can use.
  pid_t mid = ::fork();
  if (mid < 0) return fail_errno("fork (to join user namespace {})", user->join.path);
  if (mid == 0) {
    rd.reset();
    Answer a{-1, 0, -1};
    // pid and time apply to the child. Each is joined before the user
    // namespace where we may (as root, one the host's user namespace owns),
    // else after it (unprivileged, one the joined user namespace owns).
    std::vector<size_t> later;
    for (size_t i = 0; i < joins.size() && a.err == 0; i++) {
      const auto& j = joins[i];
      if (!(j.join.flag & (CLONE_NEWPID | CLONE_NEWTIME))) continue;
      if (::setns(j.fd.get(), static_cast<int>(j.join.flag)) == 0) continue;
      if (errno == EPERM)
        later.push_back(i);
      else
        a = {-1, errno, static_cast<int32_t>(i)};
    }
    if (a.err == 0 && ::setns(user->fd.get(), CLONE_NEWUSER) < 0)
      a = {-1, errno, static_cast<int32_t>(user - joins.data())};
    for (size_t i : later)
      if (a.err == 0 && ::setns(joins[i].fd.get(), static_cast<int>(joins[i].join.flag)) < 0)
        a = {-1, errno, static_cast<int32_t>(i)};
    if (a.err == 0) {
      // CLONE_PARENT: the child is our caller's; clone3 wants no exit
      // signal with it (the child takes this process's, SIGCHLD).
      struct clone_args args;
      std::memset(&args, 0, sizeof args);
      args.flags = flags | CLONE_PARENT;
      if (into_cgroup >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<uint64_t>(into_cgroup);
      }
      long pid = ::syscall(SYS_clone3, &args, sizeof args);
      if (pid < 0 && errno == ENOSYS && !(flags & CLONE_NEWTIME) && into_cgroup < 0)
        pid = ::syscall(SYS_clone, flags | CLONE_PARENT, 0, 0, 0, 0);
      if (pid == 0) return 0;  // the child: wr closes on the way out
      a = pid < 0 ? Answer{-1, errno, -1} : Answer{static_cast<int32_t>(pid), 0, -1};
    }
    ssize_t n = ::write(wr.get(), &a, sizeof a);
    if (n != static_cast<ssize_t>(sizeof a) && a.pid > 0) ::kill(a.pid, SIGKILL);  // unknown to the caller
    ::_exit(n == static_cast<ssize_t>(sizeof a) ? 0 : 1);
  }
  wr.reset();
  Answer a{-1, EPIPE, -1};
  ssize_t n;
  do n = ::read(rd.get(), &a, sizeof a);
  while (n < 0 && errno == EINTR);
  int status;
  while (::waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof a))
    return fail_msg("clone in user namespace {}: the joining process ended early", user->join.path);
  if (a.pid < 0 && a.where >= 0 && static_cast<size_t>(a.where) < joins.size()) {
    const auto& j = joins[static_cast<size_t>(a.where)].join;
    return fail_err(a.err, fmt::format("setns {} namespace {}", j.type, j.path));
  }
  if (a.pid < 0) {
    // A joined pid namespace whose first process has ended takes no more.
    for (const auto& j : joins)
      if (a.err == ENOMEM && j.join.flag == CLONE_NEWPID)
        return fail_err(a.err, fmt::format("clone in user namespace {} and pid namespace {}", user->join.path, j.join.path));
    return fail_err(a.err, fmt::format("clone in user namespace {}", user->join.path));
  }
  // The child is ours and not reaped: its pid cannot have been reused.
  long fd = ::syscall(SYS_pidfd_open, a.pid, 0);
  *pidfd = fd < 0 ? -1 : static_cast<int>(fd);
  return static_cast<pid_t>(a.pid);
}

std::string format_id_map(const std::vector<spec::IdMapping>& m) {
  std::string s;
  for (const auto& e : m) s += fmt::format("{} {} {}\n", e.containerID, e.hostID, e.size);
  return s;
}

namespace {
// The caller's own id alone: all an unprivileged process may write to its
// child's user namespace map itself.
bool own_id_only(const std::vector<spec::IdMapping>& m, uint32_t id) {
  return m.size() == 1 && m[0].hostID == id && m[0].size == 1;
}

// newuidmap / newgidmap (shadow's setuid helpers, package uidmap) write for
// an unprivileged user what its /etc/subuid (/etc/subgid) ranges allow: as
// runc, found on PATH and given the pid and the map's triples. The last line
// it wrote is the error. Plain errors (no errno): a missing helper is not
// init's /proc going away.
Result<void> run_map_helper(const char* helper, pid_t pid, const std::vector<spec::IdMapping>& m) {
  std::vector<std::string> args{helper, std::to_string(pid)};
  for (const auto& e : m) {
    args.push_back(std::to_string(e.containerID));
    args.push_back(std::to_string(e.hostID));
    args.push_back(std::to_string(e.size));
  }
  auto ran = sys::run_program(args);
  if (!ran)
    return fail(Error::plain(
        fmt::format("{} (package uidmap) for a map beyond the caller's own id: {}", helper, ran.error().msg)));
  if (ran->ok()) return {};
  std::string last = ran->exit_text();
  for (const std::string* out : {&ran->out, &ran->err})
    for (auto line : text::lines(*out))
      if (!text::words(line).empty()) last = std::string(line);
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return fail_msg("{}: {}", cmd, last);
}
}  // namespace

IdMapPlan plan_id_maps(const std::vector<spec::IdMapping>& uids, const std::vector<spec::IdMapping>& gids,
                       bool unprivileged, uid_t euid, gid_t egid) {
  IdMapPlan p;
  p.uid_helper = unprivileged && !uids.empty() && !own_id_only(uids, euid);
  p.gid_helper = unprivileged && !gids.empty() && !own_id_only(gids, egid);
  // The kernel takes an unprivileged gid map only with setgroups denied; one
  // newgidmap writes is its to decide (allowed when /etc/subgid granted it).
  p.deny_setgroups = unprivileged && !p.gid_helper;
  return p;
}

Result<void> write_id_maps(pid_t pid, const std::vector<spec::IdMapping>& uids,
                           const std::vector<spec::IdMapping>& gids, bool unprivileged) {
  IdMapPlan p = plan_id_maps(uids, gids, unprivileged, ::geteuid(), ::getegid());
  if (p.deny_setgroups)
    TRY_CTX_VOID(sys::write_file(fmt::format("/proc/{}/setgroups", pid), "deny"), "write setgroups");
  // As runc: written directly first (a caller with CAP_SETUID / CAP_SETGID
  // needs no helper), through the helper where the kernel says EPERM.
  auto write_map = [&](const char* file, const char* helper, const std::vector<spec::IdMapping>& m,
                       bool helper_ok) -> Result<void> {
    auto w = sys::write_file(fmt::format("/proc/{}/{}", pid, file), format_id_map(m));
    if (w || !helper_ok || w.error().err != EPERM) return w;
    return run_map_helper(helper, pid, m);
  };
  if (!uids.empty()) TRY_CTX_VOID(write_map("uid_map", "newuidmap", uids, p.uid_helper), "write uid_map");
  if (!gids.empty()) TRY_CTX_VOID(write_map("gid_map", "newgidmap", gids, p.gid_helper), "write gid_map");
  return {};
}

}  // namespace brig::ns
