// exec: a second process in a running container. The child is a clone of
// this process that enters every namespace of the container's init, joins
// its cgroup, takes the process attributes, and execs; we wait for it (or
// detach) and leave with its status.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "cgroup/manager.hpp"
#include "cgroup/resctrl.hpp"
#include "namespaces/namespaces.hpp"
#include "runtime/container.hpp"
#include "runtime/core/rollback.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/raw.hpp"
#include "runtime/core/sanitizers.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/attributes.hpp"
#include "runtime/init.hpp"
#include "runtime/process.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/selfexe.hpp"
#include "runtime/state.hpp"
#include "runtime/sync.hpp"
#include "runtime/tty.hpp"
#include "runtime/vm/vm.hpp"
#include "spec/config.hpp"

namespace brig::runtime {
namespace {

Result<uint32_t> parse_id(const std::string& s, const char* what) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return fail_msg("invalid {} \"{}\"", what, s);
  return v;
}

// The process to run: --process FILE, or the container's own process with
// the command line and flags laid over it (runc's rules).
Result<spec::Process> build_process(const ExecOptions& o, const spec::Config& cfg) {
  spec::Process p;
  if (!o.process_file.empty()) {
    TRY(std::string text, sys::read_file(o.process_file));
    TRY(p, spec::parse_process(text));
  } else {
    if (!cfg.process) return fail_msg("process property must not be empty");
    p = *cfg.process;
    p.args = o.args;
    if (p.args.empty()) return fail_msg("process args cannot be empty");
    p.terminal = o.tty;
    p.consoleSize.reset();
  }
  for (const auto& e : o.env) {
    if (e.empty() || e.find('=') == 0) return fail_msg("invalid environment variable: \"{}\"", e);
    std::string key = e.substr(0, e.find('='));
    std::erase_if(p.env, [&](const std::string& x) { return x.compare(0, key.size() + 1, key + "=") == 0; });
    p.env.push_back(e);
  }
  if (!o.cwd.empty()) p.cwd = o.cwd;
  if (!o.user.empty()) {
    auto colon = o.user.find(':');
    TRY(p.user.uid, parse_id(o.user.substr(0, colon), "user"));
    if (colon != std::string::npos) {
      TRY(p.user.gid, parse_id(o.user.substr(colon + 1), "group"));
    }
  }
  for (const auto& g : o.additional_gids) {
    TRY(uint32_t gid, parse_id(g, "additional gid"));
    p.user.additionalGids.push_back(gid);
  }
  if (o.no_new_privs) p.noNewPrivileges = true;
  if (!o.caps.empty()) {
    if (!p.capabilities) p.capabilities.emplace();
    auto add = [&](std::optional<std::vector<std::string>>& set) {
      if (!set) set.emplace();
      for (const auto& c : o.caps)
        if (std::find(set->begin(), set->end(), c) == set->end()) set->push_back(c);
    };
    add(p.capabilities->bounding);
    add(p.capabilities->effective);
    add(p.capabilities->permitted);
  }
  if (!o.apparmor.empty()) p.apparmorProfile = o.apparmor;
  if (!o.process_label.empty()) p.selinuxLabel = o.process_label;
  TRY_VOID(spec::validate(p, "process"));
  return p;
}

struct ExecChild {
  const spec::Process* proc;
  const spec::Config* cfg;
  const seccomp::Program* seccomp;
  const std::vector<ns::OpenJoin>* joins;
  const cgroup::SelfJoin* cgroup_join;  // joins its v1 cgroups itself when active
  bool userns;
  int sync_fd, console_fd, preserve_fds;
  bool wait_go;  // the parent sends go after the clone (see await_go)
  bool user_joined = false;  // cloned inside the container's user namespace
};

Result<std::string> child_setup(const ExecChild& c, std::vector<std::string>& env) {
  TRY_VOID(await_go(c.sync_fd, c.wait_go));
  if (c.cgroup_join->active()) TRY_VOID(cgroup::join_self(*c.cgroup_join));
  TRY_VOID(ns::enter(*c.joins, CLONE_NEWPID | CLONE_NEWTIME | (c.user_joined ? CLONE_NEWUSER : 0)));
  if (::setsid() < 0) return fail_errno("setsid");
  if (c.console_fd >= 0) {
    TRY_VOID(setup_console(c.console_fd, *c.proc, /*mount_console=*/false));
    ::close(c.console_fd);
  }
  // The container's seccomp filter, loaded at the same stages as in init.
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_caps, c.sync_fd));
  TRY(std::string exe, prepare_process(*c.proc, c.userns, env, c.cfg));
  TRY_VOID(seccomp::install_at(c.seccomp, seccomp::Stage::before_ready, c.sync_fd));
  return exe;
}

[[noreturn]] void child_main(const ExecChild& c) {
  std::string phases;
  log::buffer_phases(&phases);
  log::phase("exec child: cloned");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Until execve replaces this image, nothing in the container may reach it
  // through /proc/PID/exe or /proc/PID/fd.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  std::vector<int> keep = {c.sync_fd, c.console_fd};
  for (auto& j : *c.joins) keep.push_back(j.fd.get());
  for (auto& f : c.cgroup_join->tasks) keep.push_back(f.get());
  sys::close_fds_except(3 + c.preserve_fds, keep);
  std::vector<std::string> env;
  auto exe = child_setup(c, env);
  if (!exe) {
    (void)send(c.sync_fd, Msg::error, exe.error().msg);
    ::_exit(1);
  }
  log::phase("exec child: ready");
  // The death signal would outlive execve: a detached process must not die with us.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  (void)send(c.sync_fd, Msg::ready, phases);
  log::buffer_phases(nullptr);
  if (auto sc = seccomp::install_at(c.seccomp, seccomp::Stage::before_exec, -1); !sc) {
    (void)send(c.sync_fd, Msg::error, sc.error().msg);
    ::_exit(1);
  }
  exec_process(*exe, c.proc->args, env, c.preserve_fds, c.sync_fd);
}

int child_entry(void* ec) { child_main(*static_cast<const ExecChild*>(ec)); }

}  // namespace

Result<int> exec(const Globals& g, const ExecOptions& o) {
  log::phase("exec: begin");
  Store store(g.root);
  Record rec;
  {
    TRY(auto lock, store.open(o.id));
    TRY(rec, store.load(lock, o.id));
  }
  // Found once: for the freezer's state here and the child's cgroups below.
  auto cgs = cgroup_of(rec);
  std::string st = status_of(store, rec, cgs ? cgs->get() : nullptr);
  if (st == "stopped" || st == "creating") return fail_msg("cannot exec in a stopped container");
  TRY(spec::Config cfg, spec::parse_config(rec.config));
  if (st == "paused" && !o.ignore_paused)
    return fail_msg("cannot exec in a paused container (use --ignore-paused to override)");
  // From here on the config's process is this one: the seccomp filter's stage
  // and the listener's state are this process's.
  TRY(cfg.process, build_process(o, cfg));
  const spec::Process& proc = *cfg.process;
  TRY_VOID(check_lsm(proc));
  if (proc.terminal && o.detach && o.console_socket.empty())
    return fail_msg("cannot allocate tty if brig will detach without setting console socket");
  // A microVM container's pid is brig's shim on the host: entering its
  // namespaces would run the process on the host. The guest's brig runs it.
  if (vm::wanted(cfg)) {
    if (o.preserve_fds > 0) return fail_msg("exec: --preserve-fds cannot pass fds into a microVM");
    if (!o.cgroups.empty()) return fail_msg("exec: --cgroup is not supported in a microVM container");
    return vm::exec_in_guest(store.dir(o.id), spec::to_json(proc), o.detach, o.console_socket, o.pid_file);
  }

  // Every namespace the container has, entered through its init.
  static const std::vector<spec::Namespace> none;
  TRY(ns::Plan cplan, ns::plan(cfg.linux ? cfg.linux->namespaces : none));
  log::phase("exec: state loaded, config parsed, process built");
  if (needs_protected_exe(cfg)) {
    TRY_VOID(protect_exe());
  }
  log::phase("exec: self-exe protected");

  std::vector<spec::Namespace> targets;
  for (const char* t : {"user", "pid", "time", "network", "ipc", "uts", "cgroup", "mount"})
    if (cplan.has(t)) targets.push_back({t, fmt::format("/proc/{}/ns/{}", rec.pid, ns::proc_name_of(t))});
  TRY(ns::Plan eplan, ns::plan(targets));
  TRY(auto joins, ns::open_joins(eplan));
  // The pidfd pins init: check it is still ours now that the ns fds are open.
  TRY(Fd initfd, sys::pidfd_open(rec.pid));
  if (!process_alive(rec)) return fail_msg("cannot exec in a stopped container");

  // The filter is the container's, its stage set by this process's attributes.
  log::phase("exec: namespaces opened");
  TRY(auto seccomp_prog, seccomp::prepare(cfg));
  log::phase("exec: seccomp compiled");

  if (!cgs) return fail(std::move(cgs.error()));
  auto& cg = *cgs;
  log::phase("exec: cgroup hierarchies found");
  TRY(auto sync, make_sync_pair());

  Fd console, console_peer;
  if (proc.terminal) {
    if (!o.console_socket.empty()) {
      TRY(console_peer, connect_console_socket(o.console_socket));
    } else {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
      console = Fd(sv[0]);
      console_peer = Fd(sv[1]);
    }
  }

  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGCONT, SIGTSTP})
    sigaddset(&fwd, s);
  if (!o.detach) ::sigprocmask(SIG_BLOCK, &fwd, nullptr);

  // The container's pid and time namespaces: entered around the clone.
  // Unprivileged, we may enter them only from inside the container's user
  // namespace: then a process there clones the child (as runc's exec does).
  bool in_userns = ::geteuid() != 0 && cplan.has("user");
  ns::AroundClone around;
  if (!in_userns) TRY_VOID(around.enter(joins));

  // The child joins the container's cgroups itself (cgroup::SelfJoin), but
  // not when --cgroup moves it on into sub-cgroups from here afterwards.
  cgroup::SelfJoin join;
  if (o.cgroups.empty())
    if (auto j = cg->prepare_self_join()) join = std::move(*j);
  // We have work between the clone and the child's set-up only when we move
  // it: into its cgroups, or into the container's resctrl group (before it
  // can start threads or children that would stay outside).
  bool moved_by_us = !join.active() || !o.cgroups.empty() || !rec.rdt_tasks.empty();
  ExecChild ec{&proc, &cfg, seccomp_prog ? &*seccomp_prog : nullptr, &joins, &join, cplan.has("user"), sync.child.get(), console_peer.get(), o.preserve_fds, moved_by_us, in_userns};
  int pidfd = -1;
  auto clone = [&](int into_cgroup) {
    return in_userns ? ns::clone_child_in_userns(0, &pidfd, joins, into_cgroup) : ns::clone_child(0, &pidfd, into_cgroup);
  };
  // The child in our memory, we stopped until its execve or end
  // (CLONE_VFORK): no copy of our pages, and no turns to keep, since it is
  // alone until it is gone. Not where we work between the clone and its
  // set-up, nor for a seccomp listener (we serve it before its exec), nor
  // for a user or joined time namespace (the kernel refuses those to a
  // process sharing its memory).
  bool joins_time = ns::joins_type(joins, CLONE_NEWTIME);
  bool share = raw::available && !BRIG_ASAN && ns::clone_sharing_memory_supported() && !in_userns &&
               !cplan.has("user") && !joins_time && !moved_by_us && !(seccomp_prog && seccomp_prog->notify) &&
               !tight_memory_limit(cfg) && !::getenv("BRIG_CLONE_COPY");
  Result<pid_t> cl = std::unexpected(Error{});  // set by one clone or the other below
  if (share) {
    int dumpable = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    auto stack = ns::map_child_stack();
    long raw_pid = stack ? ns::clone_child_sharing_memory(CLONE_VFORK, &pidfd, join.v2_dir ? join.v2_dir.get() : -1,
                                                          *stack, child_entry, &ec)
                         : -ENOMEM;
    // Here once the child has exec'd or ended: its stack is ours again, our
    // log is no longer buffered into its phases, and we may be dumpable
    // again (the child made our shared memory non-dumpable).
    log::buffer_phases(nullptr);
    if (raw_pid > 0 && dumpable > 0) ::prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
    if (raw_pid > 0)
      cl = static_cast<pid_t>(raw_pid);
    else
      cl = stack ? ns::clone_sharing_memory_failed(raw_pid, bool(join.v2_dir)) : fail(std::move(stack.error()));
    if (stack) stack->unmap();
    if (!cl) {
      log::debug(fmt::format("exec child sharing our memory: {}; cloning a copy", cl.error().msg));
      share = false;
    }
  }
  if (!share) {
    cl = clone(join.v2_dir ? join.v2_dir.get() : -1);
    if (!cl && join.v2_dir) {
      join = {};  // no CLONE_INTO_CGROUP: moved from here below
      ec.wait_go = true;
      cl = clone(-1);
    }
  }
  if (!cl || *cl != 0) around.restore();  // the child stays where it was cloned
  if (!cl) return fail(std::move(cl.error()));
  pid_t pid = *cl;
  if (pid == 0) child_main(ec);
  log::phase(share ? "exec: child cloned, sharing our memory, and executed or ended" : "exec: child cloned");
  Fd child_pidfd(pidfd);
  Rollback rb;
  rb.push([pid] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  });
  sync.child.reset();
  BRIG_FAULT("exec.after-clone");
  console_peer.reset();

  if (!join.active()) TRY_VOID(cg->add(pid));
  join = {};
  // --cgroup [controller:]sub: a sub-cgroup of the container's, which must exist.
  for (const auto& arg : o.cgroups) TRY_VOID(cgroup::add_to_sub(*cg, pid, arg));
  TRY_VOID(cgroup::resctrl::add_task({rec.rdt_tasks, {}}, pid));
  log::phase("exec: child in cgroups");
  BRIG_FAULT("exec.after-cgroup-join");
  if (ec.wait_go) TRY_VOID(send(sync.parent, Msg::go));
  auto m = receive(sync.parent);
  while (m && m->type == Msg::seccomp_fd) {  // a notify filter's listener fd
    if (!m->fd) return fail_msg("sync: seccomp listener message without an fd");
    TRY_CTX_VOID(seccomp::hand_to_listener(cfg, rec.id, rec.bundle, pid, m->fd), "unable to start container process");
    m = receive(sync.parent);
  }
  if (!m) return fail_msg("unable to start container process: exec child ended before it was ready");
  if (m->type == Msg::error) return fail_msg("unable to start container process: {}", m->payload);
  BRIG_FAULT("exec.after-ready");
  // The sync socket closes on execve: EOF means the process is running.
  log::replay_phases(m->payload);
  auto after = receive(sync.parent);
  if (after && after->type == Msg::error) return fail_msg("unable to start container process: {}", after->payload);
  log::phase("exec: process executed");
  Fd master;
  if (console) {
    TRY(master, receive_fd(console));
  }
  if (!o.pid_file.empty()) TRY_VOID(sys::write_file_atomic(sys::abs_path(o.pid_file), std::to_string(pid), 0644));
  rb.commit();
  if (o.detach) return 0;
  TRY(int status, wait_foreground(pid, child_pidfd, fwd, master ? &master : nullptr));
  log::phase("exec: process exited");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace brig::runtime
