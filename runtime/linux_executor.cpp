// The namespace executor: init is a clone3 child of this process, in new or
// joined namespaces, set up by runtime/init.cpp.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "namespaces/namespaces.hpp"
#include "netns/attach.hpp"
#include "rootfs/apply.hpp"
#include "rootfs/plan.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/raw.hpp"
#include "runtime/core/sanitizers.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"
#include "runtime/caps.hpp"
#include "runtime/executor.hpp"
#include "runtime/vm/vm.hpp"
#include "runtime/hooks.hpp"
#include "runtime/init.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/sync.hpp"

namespace brig::runtime {
namespace {

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return "ended";
}

// Limits are set before the init joins its cgroup, so a memory limit below
// what the init needs shows up as an OOM kill during create: say so (v1
// memory.oom_control and v2 memory.events both count "oom_kill N").
std::string oom_note(const cgroup::Manager& cg) {
  auto dir = cg.dir_of("memory");
  if (!dir) return "";
  for (const char* f : {"memory.oom_control", "memory.events"}) {
    auto text = sys::read_file(*dir + "/" + f);
    if (!text) continue;
    auto w = text::words(*text);
    for (size_t i = 0; i + 1 < w.size(); i += 2)
      if (w[i] == "oom_kill" && w[i + 1] != "0")
        return fmt::format(": OOM-killed in cgroup {} (linux.resources.memory.limit too low?)", cg.path());
  }
  return "";
}

class NamespaceExecutor final : public Executor {
 public:
  Result<Spawned> spawn(const SpawnRequest& rq, Rollback& rb) override {
    const spec::Config& cfg = rq.cfg;
    static const std::vector<spec::Namespace> none;
    TRY(ns::Plan nsp, ns::plan(cfg.linux ? cfg.linux->namespaces : none));
    if (!nsp.has("mount")) return fail_msg("linux.namespaces: a mount namespace is required");

    rootfs::Context fctx;
    fctx.bundle = rq.bundle;
    fctx.cgroups = rq.cgroup.hierarchies();
    fctx.cgroup_path = rq.cgroup.path();
    if (fctx.cgroups.empty()) {
      // No cgroup of its own (rootless): the container is shown ours, as in runc.
      if (auto all = cgroup::open_fs("/")) {
        fctx.cgroups = (*all)->hierarchies();
        fctx.cgroup_dirs = cgroup::own_dirs(fctx.cgroups);
      }
    }
    fctx.cgroupns = nsp.creates("cgroup");
    fctx.userns = nsp.has("user");
    fctx.ns = nsp;
    TRY(rootfs::Plan fsp, rootfs::plan(cfg, fctx));
    // idmapped sources, made where the kernel allows it: in the host's user
    // namespace, before init enters the container's (made or joined).
    std::vector<Fd> trees;
    if (nsp.has("user")) {
      TRY(trees, rootfs::detach_idmapped_binds(fsp));
    }
    log::phase("spawn: namespace and mount plans");

    TRY(auto seccomp_prog, seccomp::prepare(cfg));
    log::phase("spawn: seccomp compiled");
    TRY(auto joins, ns::open_joins(nsp));
    TRY(auto sync, make_sync_pair());
    TRY(Fd fifo, sys::open(rq.fifo_path, O_RDONLY | O_NONBLOCK));

    // The cgroup namespace must be rooted at the container's cgroup, which
    // init joins only after the clone: init unshares it after the join.
    // Likewise the time namespace: its offsets can be set only before any
    // process is in it, so init unshares it and the exec'd process enters it.
    uint64_t flags = nsp.clone_flags & ~static_cast<uint64_t>(CLONE_NEWCGROUP | CLONE_NEWTIME);
    // A user namespace joined by path must own the namespaces the clone
    // makes (as in runc and crun: the container's root has its privileges
    // over its own mounts, network, pids): the clone is made from inside it
    // (ns::clone_child_in_userns), which joins pid and time itself.
    bool in_userns = flags && std::any_of(joins.begin(), joins.end(),
                                          [](const ns::OpenJoin& j) { return j.join.flag == CLONE_NEWUSER; });

    // Joined pid and time namespaces: entered around the clone (unless the
    // clone is made in the user namespace, which enters them itself), left
    // right after it, so that hooks and the network set-up run in ours.
    ns::AroundClone around;
    if (!in_userns) TRY_VOID(around.enter(joins));

    InitContext ic;
    ic.cfg = &cfg;
    ic.ns = &nsp;
    ic.joins = &joins;
    ic.fs = &fsp;
    ic.rootfs = rq.rootfs;
    ic.no_pivot = rq.opts.no_pivot;
    ic.preserve_fds = rq.opts.preserve_fds;
    ic.sync_fd = sync.child.get();
    ic.fifo_fd = fifo.get();
    ic.console_fd = rq.console_fd;
    ic.state.ociVersion = "1.3.0";
    ic.state.id = rq.id;
    ic.state.bundle = rq.bundle;
    ic.state.annotations = cfg.annotations;
    ic.seccomp = seccomp_prog ? &*seccomp_prog : nullptr;
    // init joins its cgroups itself (cgroup::SelfJoin); if that cannot be
    // set up, we move it from here as before.
    cgroup::SelfJoin join;
    if (auto j = rq.cgroup.prepare_self_join()) join = std::move(*j);
    ic.cgroup_join = &join;

    int pidfd = -1;
    // lo of a network namespace init makes is brought up from here (runc
    // does it too), while init sets up its mounts, and before the runtime
    // namespace's hooks run (we run those, below). createContainer hooks
    // run in init without asking us: with those, lo comes up before init
    // goes on. A brig network's set-up (after_clone) brings it up itself.
    bool lo_up = nsp.creates("network") && !rq.network_attached;
    // Unprivileged, we may not enter init's network namespace: init, root
    // in its user namespace, brings lo up itself (as runc's init does).
    ic.lo_in_init = lo_up && ::geteuid() != 0;
    lo_up = lo_up && !ic.lo_in_init;
    bool lo_first = lo_up && cfg.hooks && !cfg.hooks->createContainer.empty();
    // Whether we have work between the clone and init's set-up (below).
    auto parent_work = [&] { return nsp.new_user() || !join.active() || bool(rq.after_clone) || lo_first; };
    ic.wait_go = parent_work();
    ic.dumpable_until_go = nsp.new_user() && ::geteuid() != 0;  // new_user: wait_go is set
    ic.user_joined = in_userns;
    auto clone = [&](int into_cgroup) {
      return in_userns ? ns::clone_child_in_userns(flags, &pidfd, joins, into_cgroup)
                       : ns::clone_child(flags, &pidfd, into_cgroup);
    };
    // init in our memory where no step needs us both at once (the rules:
    // InitContext::shared_memory). process.oomScoreAdj, written by init,
    // would be written to every process of its memory: to brig too.
    bool init_hooks = cfg.hooks && (!cfg.hooks->prestart.empty() || !cfg.hooks->createRuntime.empty() ||
                                    !cfg.hooks->createContainer.empty() || !cfg.hooks->startContainer.empty());
    bool joins_time = ns::joins_type(joins, CLONE_NEWTIME);
    ic.shared_memory = raw::available && !BRIG_ASAN && ns::clone_sharing_memory_supported() && !ic.wait_go &&
                       !nsp.has("user") && !joins_time && !init_hooks && !(seccomp_prog && seccomp_prog->notify) &&
                       !tight_memory_limit(cfg) && !(cfg.process && cfg.process->oomScoreAdj) &&
                       !::getenv("BRIG_CLONE_COPY");
    Result<pid_t> cl = std::unexpected(Error{});  // set by one clone or the other below
    // lo comes up from here while init sets up, as with a copy, but in raw
    // syscalls (netns::RawLoopbackUp); if that cannot be prepared, in init.
    netns::RawLoopbackUp raw_lo;
    bool lo_raw = false;
    if (ic.shared_memory) {
      bool lo_was_ours = lo_up, lo_was_inits = ic.lo_in_init;
      lo_raw = lo_up && raw_lo.prepare();
      ic.lo_in_init = ic.lo_in_init || (lo_up && !lo_raw);
      lo_up = lo_raw;
      // A cache init would otherwise fill from the container's /proc.
      (void)kernel_last_cap();
      // Never unmapped: init runs on it until its exec or end, which we do
      // not wait for.
      auto stack = ns::map_child_stack();
      long raw_pid = stack ? ns::clone_child_sharing_memory(flags, &pidfd, join.v2_dir ? join.v2_dir.get() : -1,
                                                            *stack, init_entry, &ic)
                           : -ENOMEM;
      if (raw_pid > 0) {
        // init runs on our memory now: nothing of ours but raw syscalls runs
        // until its turn ends.
        if (lo_raw) raw_lo.run(pidfd, static_cast<pid_t>(raw_pid));
        await_hand_over(sync.child, sync.parent);
        // Reset here too: an init killed before its hand-over left it
        // pointing at its stack.
        log::buffer_phases(nullptr);
        cl = static_cast<pid_t>(raw_pid);
      } else {
        cl = stack ? ns::clone_sharing_memory_failed(raw_pid, bool(join.v2_dir)) : fail(std::move(stack.error()));
        if (stack) stack->unmap();
        log::debug(fmt::format("init sharing our memory: {}; cloning a copy", cl.error().msg));
        ic.shared_memory = false;
        lo_up = lo_was_ours;
        lo_raw = false;
        ic.lo_in_init = lo_was_inits;
      }
    }
    if (!ic.shared_memory) {
      cl = clone(join.v2_dir ? join.v2_dir.get() : -1);
      if (!cl && join.v2_dir) {
        // No CLONE_INTO_CGROUP here (old kernel, or the directory refuses it).
        join = {};
        ic.wait_go = parent_work();
        cl = clone(-1);
      }
    }
    if (!cl || *cl != 0) around.restore();  // not in init: it stays where it was cloned
    if (!cl) return fail(std::move(cl.error()));
    pid_t pid = *cl;
    if (pid == 0) init_main(ic);
    log::phase(ic.shared_memory ? "spawn: init cloned, sharing our memory, and ready" : "spawn: init cloned");

    Spawned out;
    out.pid = pid;
    out.pidfd = Fd(pidfd);
    out.own_pidns = nsp.creates("pid");
    rb.push([pid] {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    });
    sync.child.reset();
    fifo.reset();

    // init's end, once it has ended (block: wait for it), read without
    // reaping it: the rollback's kill must not reach another process that
    // got the pid of a reaped init.
    auto end_of_init = [&](bool block) -> std::optional<Error> {
      siginfo_t si{};
      while (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0)
        if (errno != EINTR) return std::nullopt;
      if (si.si_pid == 0) return std::nullopt;
      int status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
                                            : (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
      return Error::plain(fmt::format("unable to start container process: init {}{}", describe_exit(status),
                                      WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? oom_note(rq.cgroup) : ""));
    };
    // A step of ours on init failed: if init has ended meanwhile (killed,
    // or a memory limit below what it needs), its end is what to report.
    // Its /proc entries go (ENOENT, ESRCH) a moment before it is a zombie.
    auto or_end_of_init = [&](Error e) {
      if (e.err == ENOENT || e.err == ESRCH) {
        struct pollfd p {out.pidfd.get(), POLLIN, 0};
        if (p.fd >= 0) (void)::poll(&p, 1, 1000);
      }
      auto end = end_of_init(false);
      return fail(end ? std::move(*end) : std::move(e));
    };
    BRIG_FAULT("create.after-clone");

    if (nsp.new_user() && cfg.linux) {
      // Unprivileged: our own ids directly, any others through newuidmap/newgidmap.
      auto maps = ns::write_id_maps(pid, cfg.linux->uidMappings, cfg.linux->gidMappings, ::geteuid() != 0);
      if (!maps) return or_end_of_init(std::move(maps.error()).context(fmt::format("user namespace of init {}", pid)));
      BRIG_FAULT("create.after-idmaps");
    }
    if (!join.active())
      if (auto r = rq.cgroup.add(pid); !r) return or_end_of_init(std::move(r.error()));
    join = {};
    BRIG_FAULT("create.after-cgroup-join");
    if (rq.after_clone)
      if (auto r = rq.after_clone(pid); !r) return or_end_of_init(std::move(r.error()));
    log::phase("spawn: init in its cgroups");
    // init holds its namespace (it was cloned with CLONE_NEWNET, and is
    // ours until reaped), so /proc/PID/ns/net is never the host's.
    auto bring_lo_up = [&]() -> Result<void> {
      BRIG_FAULT("create.before-lo-up");
      TRY(Fd net, sys::open(fmt::format("/proc/{}/ns/net", pid), O_RDONLY));
      TRY_CTX_VOID(netns::loopback_up(net), "network namespace of init {}", pid);
      return {};
    };
    // init may fail, or be killed (a memory limit below what it needs),
    // and be gone before we are done here: then its own error or its end,
    // read below, is the one to report.
    std::optional<Error> lo_error;
    if (lo_first)
      if (auto r = bring_lo_up(); !r) lo_error = std::move(r.error());
    if (ic.wait_go && !lo_error) {
      // A dead init cannot take its go: its end, read below, says why.
      auto sent = send(sync.parent, Msg::go);
      if (!sent && sent.error().err != EPIPE && sent.error().err != ECONNRESET) return fail(std::move(sent.error()));
    }
    if (lo_up && !lo_first) {
      if (auto r = lo_raw ? raw_lo.outcome(pid) : bring_lo_up(); !r) lo_error = std::move(r.error());
      log::phase("spawn: lo up");
    }
    if (lo_error && lo_first) {
      // Held for a go that will not come, init says more only by ending.
      // Its namespace gone (ENOENT) means it is ending: its socket closes
      // a moment later, so wait for that a little.
      struct pollfd p {sync.parent.get(), POLLIN, 0};
      if (::poll(&p, 1, lo_error->err == ENOENT ? 1000 : 0) <= 0) return or_end_of_init(std::move(*lo_error));
    }

    auto m = receive(sync.parent);
    if (lo_error && m && m->type != Msg::error) return or_end_of_init(std::move(*lo_error));
    // Before it is ready, init may hand over a notify filter's listener fd,
    // and asks for the runtime-namespace create hooks once its mounts are done.
    while (m && (m->type == Msg::seccomp_fd || m->type == Msg::hooks)) {
      if (m->type == Msg::hooks) {
        spec::State s = ic.state;
        s.status = "creating";
        s.pid = pid;
        std::string st = spec::state_json_compact(s);
        TRY_VOID(run_hooks(cfg.hooks->prestart, "prestart", st));
        TRY_VOID(run_hooks(cfg.hooks->createRuntime, "createRuntime", st));
        BRIG_FAULT("create.after-hooks");
        TRY_VOID(send(sync.parent, Msg::go));
      } else {
        if (!m->fd) return fail_msg("sync: seccomp listener message without an fd");
        TRY_CTX_VOID(seccomp::hand_to_listener(cfg, rq.id, rq.bundle, pid, m->fd), "unable to start container process");
      }
      m = receive(sync.parent);
    }
    if (!m) {
      auto end = end_of_init(true);
      return fail(end ? std::move(*end) : std::move(m.error()));
    }
    if (m->type == Msg::error) return fail_msg("unable to start container process: {}", m->payload);
    if (m->type != Msg::ready) return fail_msg("sync: unexpected message from init");
    log::replay_phases(m->payload);
    auto st = sys::process_start_time(pid);
    if (!st) return fail_msg("unable to start container process: init {} is gone", pid);
    out.pid_start = *st;
    out.pid_ino = sys::pidfs_ino(out.pidfd);
    return out;
  }
};

}  // namespace

std::unique_ptr<Executor> namespace_executor() { return std::make_unique<NamespaceExecutor>(); }

Result<std::unique_ptr<Executor>> executor_for(const spec::Config& cfg) {
  if (vm::wanted(cfg)) return vm_executor();
  return namespace_executor();
}

}  // namespace brig::runtime
