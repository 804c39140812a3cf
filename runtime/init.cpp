#include "runtime/init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "rootfs/apply.hpp"
#include "rootfs/paths.hpp"
#include "runtime/hooks.hpp"
#include "runtime/process.hpp"
#include "runtime/core/log.hpp"
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

void reset_signals() {
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
}

// The state a hook run from init reads: pid as the container sees it.
std::string hook_state(const InitContext& c, const char* status) {
  spec::State s = c.state;
  s.status = status;
  s.pid = ::getpid();
  return spec::to_json(s).dump();
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

Result<void> setup(const InitContext& c, std::string& exe) {
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
    if (!proc.cwd.empty())
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

  // seccomp loads as late as it may (runtime/seccomp.hpp, Stage).
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_caps, c.sync_fd));
  TRY(exe, prepare_process(proc, c.ns->has("user"), &cfg));
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_ready, c.sync_fd));
  log::phase("init: process attributes, caps, user");
  return {};
}

}  // namespace

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
  auto r = setup(c, exe);
  if (!r) {
    (void)send(c.sync_fd, Msg::error, r.error().msg);
    ::_exit(1);
  }
  std::vector<std::string> env = process_env(*c.cfg->process);

  // From here on the parent may exit: do not die with it.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
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
