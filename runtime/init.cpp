#include "runtime/init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <climits>
#include <new>
#include <optional>

#include "rootfs/apply.hpp"
#include "rootfs/paths.hpp"
#include "runtime/hooks.hpp"
#include "runtime/process.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/raw.hpp"
#include "netns/attach.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/sync.hpp"
#include "runtime/tty.hpp"

namespace brig::runtime {

namespace {

// Blocks until `start` writes to the exec fifo.
Result<void> wait_for_start(int fifo) {
  for (;;) {
    struct pollfd p {fifo, POLLIN, 0};
    int n = ::poll(&p, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("wait for start");
    }
    char c;
    ssize_t r = ::read(fifo, &c, 1);
    if (r == 1) return {};
    if (r < 0 && errno != EAGAIN && errno != EINTR) return fail_errno("read exec fifo");
    // A writer came and went without a byte: wait for the next one.
    struct timespec ts {0, 10'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

// The signals whose disposition is not the default (SigIgn | SigCgt of
// /proc/self/status; bit s-1 for signal s), or nullopt where that cannot be
// read. Read before the rootfs is set up, so from the host's /proc.
std::optional<uint64_t> signals_not_default() {
  auto status = sys::read_attribute("/proc/self/status");
  if (!status) return std::nullopt;
  std::string_view text(*status);
  uint64_t out = 0;
  for (std::string_view key : {"\nSigIgn:\t", "\nSigCgt:\t"}) {
    size_t at = text.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    const char* p = text.data() + at + key.size();
    const char* end = text.data() + text.size();
    uint64_t mask = 0;
    auto [q, ec] = std::from_chars(p, end, mask, 16);
    if (ec != std::errc() || q == p || q == end || *q != '\n') return std::nullopt;
    out |= mask;
  }
  return out;
}

// Every signal unblocked and at its default disposition, as the process
// must start. A handler is reset by execve anyway, but not an ignored
// signal the caller passed down (nohup's SIGHUP, a shell's SIGINT): those
// are reset here, one call each, rather than a call for each of the 64
// signals (~0.1 ms on this VM, contrib/bench/README.md).
void reset_signals() {
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  auto changed = signals_not_default();
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    if (changed && (s > 64 || !(*changed & (uint64_t{1} << (s - 1))))) continue;
    ::signal(s, SIG_DFL);
  }
}

// The state a hook run from init reads: pid as the container sees it.
std::string hook_state(const InitContext& c, const char* status) {
  spec::State s = c.state;
  s.status = status;
  s.pid = ::getpid();
  return spec::state_json_compact(s);
}

// After the mounts, before the pivot: the parent runs prestart and
// createRuntime (runtime namespace), then createContainer runs here
// (container namespace; its path still resolves in the runtime's view).
Result<void> run_create_hooks(const InitContext& c) {
  if (!c.cfg->hooks) return {};
  const spec::Hooks& h = *c.cfg->hooks;
  if (!h.prestart.empty() || !h.createRuntime.empty()) {
    TRY_VOID(send(c.sync_fd, Msg::hooks));
    TRY(auto r, receive(c.sync_fd));
    if (r.type != Msg::go) return fail_msg("sync: unexpected message from parent");
  }
  // In the container: the process's environment, not the caller's (as runc).
  static const std::vector<std::string> none;
  return run_hooks(h.createContainer, "createContainer", hook_state(c, "creating"),
                   c.cfg->process ? &c.cfg->process->env : &none);
}

Result<void> setup(const InitContext& c, std::string& exe, std::vector<std::string>& env) {
  const spec::Config& cfg = *c.cfg;
  const spec::Process& proc = *cfg.process;

  TRY_VOID(await_go(c.sync_fd, c.wait_go));
  log::phase("init: go received");
  if (c.cgroup_join && c.cgroup_join->active()) {
    TRY_VOID(cgroup::join_self(*c.cgroup_join));
    log::phase("init: joined its cgroups");
  }

  // A user namespace joined by path comes first (the clone may have joined
  // it already). Then we are its root, whether it was made or joined (as
  // runc's init becomes uid 0): what we make in the rootfs is the
  // container's root's, not the host's.
  if (!c.user_joined) TRY_VOID(ns::enter(*c.joins, ~uint64_t{CLONE_NEWUSER}));
  if (c.ns->has("user")) {
    std::string where;  // a joined one's path
    for (const auto& j : *c.joins)
      if (j.join.flag == CLONE_NEWUSER) where = " " + j.join.path;
    if (::setresgid(0, 0, 0) < 0)
      return fail_errno("setgid 0 in user namespace{}{}", where, errno == EINVAL ? " (gid 0 is not mapped there)" : "");
    if (::setresuid(0, 0, 0) < 0)
      return fail_errno("setuid 0 in user namespace{}{}", where, errno == EINVAL ? " (uid 0 is not mapped there)" : "");
  }
  TRY_VOID(ns::enter(*c.joins, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME));
  if (c.ns->creates("cgroup") && ::unshare(CLONE_NEWCGROUP) < 0) return fail_errno("unshare cgroup namespace");
  if (c.ns->creates("time")) {
    if (::unshare(CLONE_NEWTIME) < 0) return fail_errno("unshare time namespace");
    if (cfg.linux && !cfg.linux->timeOffsets.empty()) {
      std::string offs;
      for (const auto& [clock, o] : cfg.linux->timeOffsets)
        offs += fmt::format("{} {} {}\n", clock, o.secs.value_or(0), o.nanosecs.value_or(0));
      TRY_CTX_VOID(sys::write_file("/proc/self/timens_offsets", offs), "linux.timeOffsets");
    }
  }
  if (c.lo_in_init) {
    TRY(Fd net, sys::open("/proc/self/ns/net", O_RDONLY));
    TRY_CTX_VOID(netns::loopback_up(net), "network namespace: lo");
  }
  if (::setsid() < 0) return fail_errno("setsid");
  // Through the host's /proc, still mounted here: works without a /proc in the container.
  if (proc.oomScoreAdj)
    TRY_CTX_VOID(sys::write_file("/proc/self/oom_score_adj", std::to_string(*proc.oomScoreAdj)),
                 "set process.oomScoreAdj {}", *proc.oomScoreAdj);
  // Our own /proc/self files, written above, are root's once we are not
  // dumpable: unprivileged, that comes only now (before the rootfs).
  if (c.dumpable_until_go) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  ::umask(0);
  if (c.ns->has("mount")) {
    log::phase("init: namespaces joined, setsid");
    TRY(Fd root, rootfs::prepare_root(*c.fs, c.rootfs));
    log::phase("init: root prepared");
    TRY_VOID(rootfs::apply_ops(*c.fs, root));
    log::phase("init: mounts done");
    TRY_VOID(run_create_hooks(c));
    TRY_VOID(rootfs::enter_root(root, c.no_pivot));
    // A missing cwd is made now, inside the mounts, before the root can
    // turn read-only (where runc does it too: after the createContainer
    // hooks and the pivot); as root, whatever the user.
    if (!proc.cwd.empty() && sys::clean_path(proc.cwd) != "/")  // the root is there
      TRY_CTX_VOID(rootfs::mkdir_all_in_root(root, proc.cwd), "create cwd {}", proc.cwd);
    log::phase("init: pivoted");
    TRY_VOID(rootfs::finalize(*c.fs));
    log::phase("init: masked/readonly paths, propagation");
  }
  if (c.console_fd >= 0) {
    TRY_VOID(setup_console(c.console_fd, proc, c.ns->has("mount")));
    ::close(c.console_fd);
  }

  if (cfg.hostname && !cfg.hostname->empty()) {
    if (!c.ns->has("uts")) return fail_msg("unable to set hostname without a private UTS namespace");
    if (::sethostname(cfg.hostname->data(), cfg.hostname->size()) < 0)
      return fail_errno("sethostname {}", *cfg.hostname);
  }
  if (cfg.domainname && !cfg.domainname->empty()) {
    if (!c.ns->has("uts")) return fail_msg("unable to set domainname without a private UTS namespace");
    if (::setdomainname(cfg.domainname->data(), cfg.domainname->size()) < 0)
      return fail_errno("setdomainname {}", *cfg.domainname);
  }

  // In init, so the parent is waiting on it (a test holds init here to end it).
  BRIG_FAULT("create.init-set-up");
  // seccomp loads as late as it may (runtime/seccomp.hpp, Stage).
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_caps, c.sync_fd));
  TRY(exe, prepare_process(proc, c.ns->has("user"), env, &cfg));
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_ready, c.sync_fd));
  log::phase("init: process attributes, caps, user");
  return {};
}

// ---- init sharing the runtime's memory: the part after "ready" ----
//
// Everything init needs once it has handed the turn back, laid out in a
// mapping the runtime never learns of (so never frees), and read with raw
// syscalls only: the runtime runs C++ in the same memory meanwhile (and may
// exit: the memory lives on while init uses it).
struct Final {
  int fifo_fd = -1;
  int preserve_fds = 0;
  int max_fd = 0;  // for closing fds one by one without close_range
  const char* exe = nullptr;
  char** argv = nullptr;
  char** envp = nullptr;
  const char* exec_prefix = nullptr;  // "exec EXE"
  struct sock_fprog seccomp {};
  unsigned seccomp_flags = 0;
  bool seccomp_at_exec = false;
  const char* (*errno_desc)(int) = nullptr;  // strerrordesc_np, bound before the hand-over
};

// Mapped before init's set-up: process.rlimits (RLIMIT_AS) may forbid a
// new mapping after it, in a memory as large as brig's.
class Arena {
 public:
  explicit Arena(size_t size) : size_((size + 4095) & ~size_t{4095}) {
    void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base_ = m == MAP_FAILED ? nullptr : static_cast<char*>(m);
  }
  bool ok() const { return base_ != nullptr; }
  size_t size() const { return size_; }
  void* take(size_t n, size_t align = alignof(std::max_align_t)) {
    used_ = (used_ + align - 1) & ~(align - 1);
    void* p = base_ + used_;
    used_ += n;
    return p;
  }
  char* copy(std::string_view s) {
    char* p = static_cast<char*>(take(s.size() + 1, 1));
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
  }
  char** copy_all(const std::vector<std::string>& v) {
    auto** out = static_cast<char**>(take((v.size() + 1) * sizeof(char*)));
    for (size_t i = 0; i < v.size(); i++) out[i] = copy(v[i]);
    out[v.size()] = nullptr;
    return out;
  }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  size_t used_ = 0;
};

// What set_aside needs at most (args, env as given, plus room for the
// executable's path twice and HOME).
size_t room_to_set_aside(const InitContext& c, const std::vector<std::string>& env, size_t exe_len) {
  size_t need = sizeof(Final) + 2 * exe_len + 256;
  for (const auto& v : {std::cref(c.cfg->process->args), std::cref(env)})
    for (const auto& a : v.get()) need += a.size() + 1 + sizeof(char*) + 16;
  const seccomp::Program* sc = c.seccomp && c.seccomp->stage == seccomp::Stage::before_exec ? c.seccomp : nullptr;
  if (sc) need += sc->bpf.size() * sizeof(struct sock_filter) + 16;
  return need;
}

const Final* set_aside(Arena& a, const InitContext& c, const std::string& exe, const std::vector<std::string>& env) {
  if (!a.ok() || room_to_set_aside(c, env, exe.size()) > a.size()) return nullptr;
  const seccomp::Program* sc = c.seccomp && c.seccomp->stage == seccomp::Stage::before_exec ? c.seccomp : nullptr;
  auto* f = new (a.take(sizeof(Final))) Final;
  f->fifo_fd = c.fifo_fd;
  f->preserve_fds = c.preserve_fds;
  struct rlimit rl {};
  f->max_fd = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? static_cast<int>(rl.rlim_cur) : 65536;
  f->exe = a.copy(exe);
  f->argv = a.copy_all(c.cfg->process->args);
  f->envp = a.copy_all(env);
  f->exec_prefix = a.copy(fmt::format("exec {}", exe));
  if (sc) {
    auto* insns = static_cast<struct sock_filter*>(a.take(sc->bpf.size() * sizeof(struct sock_filter)));
    std::memcpy(insns, sc->bpf.data(), sc->bpf.size() * sizeof(struct sock_filter));
    f->seccomp.len = static_cast<unsigned short>(sc->bpf.size());
    f->seccomp.filter = insns;
    f->seccomp_flags = sc->flags;
    f->seccomp_at_exec = true;
  }
  // Through a pointer: a call through the PLT could bind lazily, in the
  // dynamic linker, after the hand-over.
  f->errno_desc = &::strerrordesc_np;
  return f;
}

// Raw helpers for after the hand-over: no libc, no errno, no stores outside
// this stack frame.
long raw_len(const char* s) {
  long n = 0;
  // The empty asm hides the loop's shape: no compiler makes it a strlen call.
  while (s && s[n]) {
    n++;
    __asm__("" : "+r"(n));
  }
  return n;
}

void raw_put(const char* s) { (void)raw::call(SYS_write, 2, raw::arg(s), raw_len(s)); }

// One line on stderr, as Error::sys words it ("what: no such file or
// directory"), and the end of init.
[[noreturn]] void raw_die(const Final& f, const char* prefix, const char* what, long neg_errno, int code) {
  raw_put(prefix);
  raw_put(what);
  const char* d = f.errno_desc(static_cast<int>(-neg_errno));
  if (d && d[0]) {
    char first[2] = {d[0], 0};
    if (first[0] >= 'A' && first[0] <= 'Z' && !(d[1] >= 'A' && d[1] <= 'Z'))
      first[0] = static_cast<char>(first[0] - 'A' + 'a');
    raw_put(": ");
    raw_put(first);
    raw_put(d + 1);
  } else {
    // As strerror words one it knows nothing of ("unknown error N").
    char num[24];
    raw_put(": unknown error ");
    raw_put(raw::decimal(num + sizeof num - 1, static_cast<unsigned long>(-neg_errno)));
  }
  raw_put("\n");
  for (;;) (void)raw::call(SYS_exit_group, code);
}

// wait_for_start, startContainer-less (hooks keep init a copy), then the
// exec: what init_main does after "ready", in raw syscalls.
[[noreturn]] void finish_raw(const Final& f) {
  for (;;) {
    struct pollfd p {f.fifo_fd, POLLIN, 0};
    long n = raw::call(SYS_ppoll, raw::arg(&p), 1, 0, 0, 0);
    if (n == -EINTR) continue;
    if (n < 0) raw_die(f, "brig init: ", "wait for start", n, 1);
    char ch;
    long r = raw::call(SYS_read, f.fifo_fd, raw::arg(&ch), 1);
    if (r == 1) break;
    if (r < 0 && r != -EAGAIN && r != -EINTR) raw_die(f, "brig init: ", "read exec fifo", r, 1);
    struct timespec ts {0, 10'000'000};
    (void)raw::call(SYS_nanosleep, raw::arg(&ts), 0);
  }
  long from = 3 + f.preserve_fds;
  if (raw::call(SYS_close_range, from, ~0U, 0) < 0)
    for (long fd = from; fd < f.max_fd; fd++) (void)raw::call(SYS_close, fd);
  if (f.seccomp_at_exec) {
    long rc = raw::call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f.seccomp_flags, raw::arg(&f.seccomp));
    if (rc < 0) raw_die(f, "brig init: ", "load seccomp filter", rc, 1);
  }
  for (long fd = 3; fd < from; fd++) (void)raw::call(SYS_fcntl, fd, F_SETFD, 0);
  long rc = raw::call(SYS_execve, raw::arg(f.exe), raw::arg(f.argv), raw::arg(f.envp));
  raw_die(f, f.exec_prefix, "", rc, 127);
}

// Hands the turn back with one message (the last thing init does with
// the C library) and never returns: on to the exec after "ready", or out.
// Nothing of `c` (the runtime's, on its stack) is read once the message
// is out: what is needed after it is copied into locals first.
[[noreturn]] void hand_over(const InitContext& c, const Final* f, Msg m, const std::string& payload) {
  std::string buf(1, static_cast<char>(m));
  buf += payload;
  const long sync_fd = c.sync_fd;
  log::buffer_phases(nullptr);  // the runtime's own log, again
  long n;
  do {
    n = raw::call(SYS_sendto, sync_fd, raw::arg(buf.data()), static_cast<long>(buf.size()), MSG_NOSIGNAL, 0, 0);
  } while (n == -EINTR);
  if (n < 0 || m != Msg::ready || !f)
    for (;;) (void)raw::call(SYS_exit_group, 1);
  (void)raw::call(SYS_close, sync_fd);
  finish_raw(*f);
}

}  // namespace

int init_entry(void* ctx) { init_main(*static_cast<const InitContext*>(ctx)); }

bool tight_memory_limit(const spec::Config& cfg) {
  constexpr int64_t kRoom = 8 << 20;
  if (!cfg.linux || !cfg.linux->resources) return false;
  const spec::Resources& r = *cfg.linux->resources;
  if (r.memory && r.memory->limit && *r.memory->limit >= 0 && *r.memory->limit < kRoom) return true;
  auto max = r.unified.find("memory.max");
  if (max == r.unified.end() || max->second == "max") return false;
  int64_t v = -1;
  auto [end, ec] = std::from_chars(max->second.data(), max->second.data() + max->second.size(), v);
  return ec != std::errc() || v < kRoom;
}

void init_main(const InitContext& c) {
  std::string phases;
  log::buffer_phases(&phases);
  log::phase("init: cloned");
  reset_signals();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Until execve replaces this image (possibly long after, in `start`),
  // nothing in the container may reach brig's binary or fds through
  // /proc/PID/exe or /proc/PID/fd (CVE-2019-5736 class). execve resets it.
  // An unprivileged parent writes our id maps (owned by root once we are
  // not dumpable): then only after its go, once our own /proc files are
  // written, before the rootfs (setup).
  if (!c.dumpable_until_go) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Keep stdio, the preserved fds, and our own few; drop the rest (the
  // parent's lock on the state dir among them).
  std::vector<int> keep = {c.sync_fd, c.fifo_fd, c.console_fd};
  for (auto& j : *c.joins) keep.push_back(j.fd.get());
  for (auto& op : c.fs->ops)
    if (op.tree_fd >= 0) keep.push_back(op.tree_fd);  // idmapped trees the parent made (O_CLOEXEC)
  if (c.cgroup_join)
    for (auto& f : c.cgroup_join->tasks) keep.push_back(f.get());
  sys::close_fds_except(3 + c.preserve_fds, keep);

  std::string exe;
  std::optional<Arena> arena;
  // Generous: HOME comes from the container's /etc/passwd, and untouched
  // pages of the mapping cost nothing.
  if (c.shared_memory) arena.emplace(room_to_set_aside(c, c.cfg->process->env, PATH_MAX) + (64 << 10));
  std::vector<std::string> env;
  auto r = setup(c, exe, env);
  if (!r) {
    if (c.shared_memory) hand_over(c, nullptr, Msg::error, r.error().msg);
    (void)send(c.sync_fd, Msg::error, r.error().msg);
    ::_exit(1);
  }

  // From here on the parent may exit: do not die with it.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (c.shared_memory) {
    const Final* f = set_aside(*arena, c, exe, env);
    if (!f)
      hand_over(c, nullptr, Msg::error,
                arena->ok() ? "init: args and env larger than the room set aside for them"
                            : Error::sys(ENOMEM, "init: map room for its last steps").msg);
    log::phase("init: ready");
    hand_over(c, f, Msg::ready, phases);
  }
  log::phase("init: ready");
  // Nobody to start us (the runtime died just now): do not wait for ever.
  if (!send(c.sync_fd, Msg::ready, phases)) ::_exit(1);
  log::buffer_phases(nullptr);
  ::close(c.sync_fd);

  auto w = wait_for_start(c.fifo_fd);
  if (w && c.cfg->hooks)
    w = run_hooks(c.cfg->hooks->startContainer, "startContainer", hook_state(c, "created"), &env);
  if (!w) {
    fmt::print(stderr, "brig init: {}\n", w.error().msg);
    ::_exit(1);
  }
  sys::close_fds_except(3 + c.preserve_fds, {});
  if (auto sc = seccomp::install_at(c.seccomp, seccomp::Stage::before_exec, -1); !sc) {
    fmt::print(stderr, "brig init: {}\n", sc.error().msg);
    ::_exit(1);
  }
  exec_process(exe, c.cfg->process->args, env, c.preserve_fds);
}

}  // namespace brig::runtime
