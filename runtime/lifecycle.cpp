// create / start / run / state / kill / delete / list.
#include <fcntl.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "cgroup/manager.hpp"
#include "cgroup/resctrl.hpp"
#include "cgroup/resources.hpp"
#include "netns/attach.hpp"
#include "netns/network.hpp"
#include "runtime/container.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/rollback.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"
#include "runtime/attributes.hpp"
#include "runtime/executor.hpp"
#include "runtime/hooks.hpp"
#include "runtime/process.hpp"
#include "runtime/selfexe.hpp"
#include "runtime/state.hpp"
#include "runtime/tty.hpp"
#include "runtime/vm/vm.hpp"
#include "spec/config.hpp"
#include "spec/jdoc.hpp"

namespace brig::runtime {
namespace {

constexpr const char* kOciVersion = "1.3.0";

spec::State to_oci(const Store& store, const Record& r) {
  spec::State s;
  s.ociVersion = kOciVersion;
  s.id = r.id;
  s.status = status_of(store, r);
  s.pid = s.status == "stopped" ? 0 : r.pid;
  s.bundle = r.bundle;
  s.rootfs = r.rootfs;
  s.created = r.created;
  s.annotations = r.annotations;
  return s;
}

// The OCI state a hook reads on stdin, with the status the spec names for its phase.
std::string hook_state(const Store& store, const Record& rec, const char* status) {
  spec::State s = to_oci(store, rec);
  s.status = status;
  s.pid = rec.pid;
  return spec::state_json_compact(s);
}

struct Loaded {
  spec::Config cfg;
  std::string bundle, rootfs;
};

Result<Loaded> load_bundle(const std::string& bundle_arg) {
  Loaded l;
  l.bundle = sys::abs_path(bundle_arg.empty() ? "." : bundle_arg);
  struct stat st;
  if (::stat(l.bundle.c_str(), &st) < 0) return fail_errno("chdir {}", l.bundle);
  if (!S_ISDIR(st.st_mode)) return fail_err(ENOTDIR, fmt::format("chdir {}", l.bundle));
  // The state file and the hooks' stdin are JSON, which holds only UTF-8:
  // runc would write the path mangled (and then fail to mount its rootfs).
  if (!text::valid_utf8(l.bundle))
    return fail_msg("bundle {}: the path is not valid UTF-8", text::lossy_utf8(l.bundle));
  std::string path = l.bundle + "/config.json";
  auto text = sys::read_file(path);
  if (!text) {
    if (text.error().err == ENOENT) return fail_msg("JSON specification file config.json not found");
    return fail(std::move(text.error()));
  }
  auto cfg = spec::parse_config(*text);
  if (!cfg) return fail(std::move(cfg.error()));
  l.cfg = std::move(*cfg);
  if (!l.cfg.process) return fail_msg("process: must be set to create a container");
  TRY_VOID(check_lsm(*l.cfg.process));
  // Never a silent skip: a limit asked for and not enforced is an error.
  if (l.cfg.linux && l.cfg.linux->intelRdt && vm::wanted(l.cfg))
    return fail_msg("linux.intelRdt: Intel RDT is not supported by the microVM backend");
  // A relative root.path is taken from the bundle's real directory (runc
  // chdirs there); then no part of the rootfs path may be a symlink, as in
  // runc: a rootfs that is one could point the container's / anywhere.
  const std::string& rp = l.cfg.root.path;
  std::string base = l.bundle;
  bool real_base = false;
  if (rp.empty() || rp[0] != '/') {
    if (char* real = ::realpath(l.bundle.c_str(), nullptr)) {
      base = real;
      real_base = true;
      std::free(real);
    }
  }
  l.rootfs = sys::abs_path(!rp.empty() && rp[0] == '/' ? rp : base + "/" + rp);  // cleaned, no trailing '/'
  auto symlink_refused = [&l]() -> Result<Loaded> {
    struct stat target;
    if (::stat(l.rootfs.c_str(), &target) < 0) return fail_errno("invalid rootfs: stat {}", l.rootfs);
    return fail_msg("invalid rootfs: not an absolute path, or a symlink");
  };
  auto has_dotdot = [](std::string_view p) {
    for (size_t i = 0; i <= p.size();) {
      size_t j = std::min(p.find('/', i), p.size());
      if (p.substr(i, j - i) == "..") return true;
      i = j + 1;
    }
    return false;
  };
  if (real_base && l.rootfs.starts_with(base + "/") && !has_dotdot(rp)) {
    // Below a directory realpath has just resolved: only root.path's own
    // names can be symlinks, each looked at once (realpath would resolve the
    // bundle's every name again).
    for (size_t i = base.size() + 1; i <= l.rootfs.size(); ++i) {
      if (i != l.rootfs.size() && l.rootfs[i] != '/') continue;
      if (::lstat(l.rootfs.substr(0, i).c_str(), &st) < 0) return fail_errno("invalid rootfs: stat {}", l.rootfs);
      if (S_ISLNK(st.st_mode)) return symlink_refused();
    }
  } else {
    if (::stat(l.rootfs.c_str(), &st) < 0) return fail_errno("invalid rootfs: stat {}", l.rootfs);
    char* real = ::realpath(l.rootfs.c_str(), nullptr);
    if (!real) return fail_errno("invalid rootfs: resolve {}", l.rootfs);
    bool same = l.rootfs == real;
    std::free(real);
    if (!same) return symlink_refused();
  }
  if (!text::valid_utf8(l.rootfs))
    return fail_msg("invalid rootfs: {}: the path is not valid UTF-8", text::lossy_utf8(l.rootfs));
  return l;
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
  if (path.empty()) return {};
  return sys::write_file_atomic(sys::abs_path(path), std::to_string(pid), 0644);
}

// Waits (up to `ms`) for a pidfd to say its process is gone.
bool wait_gone(BorrowedFd pidfd, int ms) {
  struct pollfd p {pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

// Whether the saved config has hooks of a kind: the whole config is parsed
// (and validated again) only then, not on every start and delete.
bool has_hooks(const spec::jdoc::Node& config, const char* kind) {
  const spec::jdoc::Node* h = config.find("hooks");
  return h && h->member(kind);
}

// The container's network record and lease owner: its state dir, absolute.
std::string net_owner(const Store& store, const std::string& id) { return sys::abs_path(store.dir(id)); }

// The result of a create that `run` carries on with.
struct Created {
  Record rec;
  Fd pidfd;
  Fd console;  // pty master, when `run` proxies the terminal itself
  std::unique_ptr<cgroup::Manager> cgroup;  // for `run`'s delete
  Store::Lock lock;  // still held: `run` starts the container under it
};

// --rootless: as given, or (auto) an unprivileged user, or root of a user
// namespace that is not the host's (runc's rule).
bool rootless(const Globals& g) {
  if (g.rootless != "auto") return g.rootless == "true";
  if (::geteuid() != 0) return true;
  auto map = sys::read_file("/proc/self/uid_map");
  auto w = map ? text::words(*map) : std::vector<std::string_view>{};
  return map && !(w.size() == 3 && w[0] == "0" && w[1] == "0" && w[2] == "4294967295");
}

// A cgroupsPath, or a value that would be written (as runc decides: zero
// and absent values write nothing; device rules aside, since without a
// cgroup a rootless container has only the devices it is given).
bool asks_for_cgroup(const spec::Config& cfg) {
  if (!cfg.linux) return false;
  if (cfg.linux->cgroupsPath && !cfg.linux->cgroupsPath->empty()) return true;
  if (!cfg.linux->resources) return false;
  const auto& r = *cfg.linux->resources;
  auto set = [](const auto& v) { return v && *v != 0; };
  if (const auto& m = r.memory;
      m && (set(m->limit) || set(m->reservation) || (m->swap && *m->swap > 0) || (m->kernel && *m->kernel > 0) ||
            (m->kernelTCP && *m->kernelTCP > 0) || m->disableOOMKiller.value_or(false) ||
            (m->swappiness && static_cast<int64_t>(*m->swappiness) != -1)))
    return true;
  if (const auto& c = r.cpu;
      c && (set(c->shares) || set(c->quota) || set(c->burst) || set(c->period) || set(c->realtimeRuntime) ||
            set(c->realtimePeriod) || (c->cpus && !c->cpus->empty()) || (c->mems && !c->mems->empty()) ||
            set(c->idle)))
    return true;
  if (r.pids && r.pids->limit != 0) return true;
  if (const auto& b = r.blockIO;
      b && (set(b->weight) || set(b->leafWeight) || !b->weightDevice.empty() || !b->throttleReadBpsDevice.empty() ||
            !b->throttleWriteBpsDevice.empty() || !b->throttleReadIOPSDevice.empty() ||
            !b->throttleWriteIOPSDevice.empty()))
    return true;
  if (r.network && (set(r.network->classID) || !r.network->priorities.empty())) return true;
  return !r.hugepageLimits.empty() || !r.rdma.empty() || !r.unified.empty();
}

// `foreground`: the caller stays attached (run without -d), so a terminal
// can be proxied without a console socket.
Result<Created> do_create(const Globals& g, const CreateOptions& o, bool foreground) {
  TRY_VOID(validate_id(o.id));
  if (g.cgroup_manager != "cgroupfs")
    return fail_msg("cgroup manager \"{}\" is not supported yet: use cgroupfs", g.cgroup_manager);
  log::phase("create: begin");
  TRY(Loaded l, load_bundle(o.bundle));
  log::phase("create: config parsed");
  if (!vm::wanted(l.cfg) && needs_protected_exe(l.cfg)) {
    TRY_VOID(protect_exe());
  }
  TRY(auto exec, executor_for(l.cfg));
  log::phase("create: self-exe protected, executor chosen");
  TRY(netns::Request net, netns::request_for(l.cfg));
  if (net.attach()) {
    TRY_VOID(netns::load_network(net.network));
  }

  Store store(g.root);
  // A network's records (and its lease file) name the container by its state
  // dir, in JSON: that path must be UTF-8 before anything is made.
  if (std::string owner = net_owner(store, o.id); !net.empty() && !text::valid_utf8(owner))
    return fail_msg("network: the state directory {} is not valid UTF-8", text::lossy_utf8(owner));
  TRY(Store::Lock lock, store.create(o.id));
  std::unique_ptr<cgroup::Manager> cg;
  Rollback rb;  // after what its steps refer to, so it unwinds first
  rb.push([&] { (void)store.remove(o.id); });
  BRIG_FAULT("create.after-state-dir");

  Record rec;
  rec.id = o.id;
  rec.phase = "creating";
  rec.creator = ::getpid();
  rec.creator_start = sys::own_start_time(rec.creator).value_or(0);
  rec.bundle = l.bundle;
  rec.rootfs = l.rootfs;
  rec.created = sys::now_rfc3339_nano();
  rec.annotations = l.cfg.annotations;
  // The config in the record (most of it, saved below more than once): the
  // file as read rather than a dump of a document, its whitespace taken out,
  // which every later command would parse again, and a UTF-8 byte order
  // mark, which JSON allows only at the start of a text.
  std::string_view file_text = l.cfg.raw;
  if (file_text.starts_with("\xef\xbb\xbf")) file_text.remove_prefix(3);
  rec.config = text::json_minify(file_text);
  rec.cgroup_path = cgroup::resolve_path(l.cfg.linux ? l.cfg.linux->cgroupsPath : std::nullopt, o.id);
  TRY(cg, cgroup::open_fs(rec.cgroup_path));
  rec.cgroup_hierarchies = cg->hierarchies();
  TRY_VOID(store.save(rec));
  BRIG_FAULT("create.after-record");

  std::string fifo = store.fifo(o.id);
  if (::mkfifo(fifo.c_str(), 0622) < 0) return fail_errno("mkfifo {}", fifo);
  log::phase("create: state dir, lock, state saved, fifo");
  BRIG_FAULT("create.after-fifo");

  if (auto made = cg->create(); !made) {
    // Rootless, a cgroup we may not make is done without, as runc does
    // when the config asks for no cgroupsPath and no limits: then the
    // container has none, and no pause. Asked for, it is an error.
    int e = made.error().err;
    if (!(rootless(g) && (e == EACCES || e == EPERM || e == EROFS) && !asks_for_cgroup(l.cfg)))
      return fail(std::move(made.error()));
    TRY_CTX_VOID(cg->destroy(), "rootless: remove the cgroup made in part");
    log::debug(fmt::format("rootless: the container has no cgroup: {}", made.error().msg));
    cg = cgroup::none(rec.cgroup_path);
    rec.no_cgroup = true;
    rec.cgroup_hierarchies.clear();
    TRY_VOID(store.save(rec));
  }
  rb.push([&] { (void)cg->destroy(); });
  BRIG_FAULT("create.after-cgroup");
  // A microVM's host cgroup holds QEMU and its helpers: the container's
  // limits apply inside the guest (and size it), its device rules there too.
  if (!vm::wanted(l.cfg) && !rec.no_cgroup) {
    TRY_VOID(cg->apply(cgroup::container_resources(l.cfg)));
  }
  TRY_VOID(cg->ensure_thawed());
  // Intel RDT: the resctrl group is made now, init is put in it once cloned.
  cgroup::resctrl::Applied rdt;
  if (l.cfg.linux && l.cfg.linux->intelRdt) {
    TRY(auto rp, cgroup::resctrl::plan(*l.cfg.linux->intelRdt, o.id));
    TRY(rdt, cgroup::resctrl::prepare(rp, rb));
    rec.rdt_tasks = rdt.tasks;
    rec.rdt_remove = rdt.remove;
    TRY_VOID(store.save(rec));  // so that delete --force finds the groups
    BRIG_FAULT("create.after-resctrl");
  }
  log::phase("create: cgroups made and resources written");

  // The terminal: the master goes to --console-socket, or to us for `run`.
  Fd console, console_peer;
  if (l.cfg.process->terminal) {
    if (!o.console_socket.empty()) {
      TRY(console_peer, connect_console_socket(o.console_socket));
    } else if (foreground) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
      console = Fd(sv[0]);
      console_peer = Fd(sv[1]);
    } else {
      return fail_msg("cannot allocate tty if brig will detach without setting console socket");
    }
  } else if (!o.console_socket.empty()) {
    return fail_msg("cannot use console socket if brig will not detach or allocate tty");
  }

  // Socket activation fds go first (3..), then --preserve-fds more.
  CreateOptions opts = o;
  if (int n = listen_fds(); n > 0) {
    l.cfg.process->env.push_back(fmt::format("LISTEN_FDS={}", n));
    l.cfg.process->env.push_back("LISTEN_PID=1");
    opts.preserve_fds += n;
  }
  SpawnRequest rq{l.cfg, rec.config, o.id, l.bundle, l.rootfs, opts, fifo, *cg, console_peer.get()};
  rq.network_attached = net.attach();
  // Between the clone and init's set-up: its resctrl group (with its cgroups,
  // before it runs anything, hooks included) and its network.
  if (!net.empty() || !rdt.tasks.empty()) {
    std::string owner = net_owner(store, o.id);
    rq.after_clone = [&net, owner, &rb, &rdt](pid_t pid) -> Result<void> {
      TRY_VOID(cgroup::resctrl::add_task(rdt, pid));
      if (net.empty()) return {};
      return netns::setup(net, owner, pid, rb);
    };
  }
  TRY(Spawned sp, exec->spawn(rq, rb));
  log::phase("create: init ready");
  BRIG_FAULT("create.after-ready");
  console_peer.reset();
  Fd master;
  if (console) {
    TRY(master, receive_fd(console));
  }

  rec.pid = sp.pid;
  rec.pid_start = sp.pid_start;
  rec.pid_ino = sp.pid_ino;
  rec.own_pidns = sp.own_pidns;
  rec.phase = "created";
  rec.creator = 0;
  BRIG_FAULT("create.after-created");
  TRY_VOID(store.save(rec));
  TRY_VOID(write_pid_file(o.pid_file, sp.pid));
  rb.commit();
  log::phase("create: state saved");
  return Created{std::move(rec), std::move(sp.pidfd), std::move(master), cgroup::same_cgroup(*cg), std::move(lock)};
}

// `just_created`: `run`, which made the container under the lock it still
// holds, so nobody can have started, paused or deleted it since: its status
// is not read back. An init that died meanwhile is found at the fifo, which
// then has no reader (ENXIO), with the same words as the status check.
Result<void> do_start(const Store& store, const Record& rec, bool just_created = false) {
  if (!just_created) {
    std::string st = status_of(store, rec);
    if (st == "stopped") return fail_msg("cannot start a container that has stopped");
    if (st != "created") return fail_msg("cannot start an already {} container", st);
  }
  std::string fifo = store.fifo(rec.id);
  // A microVM's start is done when the guest says so: ask its shim first,
  // so that the answer cannot pass us by.
  Fd shim;
  TRY(spec::jdoc::Doc config, spec::jdoc::parse(rec.config));
  if (vm::wanted(config.root())) {
    TRY(shim, vm::connect_shim(store.dir(rec.id)));
  }
  BRIG_FAULT("start.before-fifo");
  int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENXIO) return fail_msg("cannot start a container that has stopped");
    return fail_errno("open exec fifo {}", fifo);
  }
  Fd f(fd);
  // Gone from the state dir first, so nobody sees "created" once init runs.
  ::unlink(fifo.c_str());
  // init can die (a racing `kill`) between our open and this write: EPIPE,
  // never SIGPIPE, and runc's words for it.
  if (auto w = sys::write_all_nosigpipe(f, "0"); !w) {
    if (w.error().err == EPIPE) return fail_msg("cannot start a container that has stopped");
    return fail(std::move(w.error()).context("write exec fifo"));
  }
  BRIG_FAULT("start.after-fifo");
  // A failed start stops the container: it must not run later on its own.
  auto stop = [&rec](Error e) -> Result<void> {
    if (auto pfd = sys::pidfd_open(rec.pid); pfd && process_alive(rec)) {
      (void)sys::pidfd_send_signal(*pfd, SIGKILL);
      (void)wait_gone(*pfd, 10000);
    }
    return fail(std::move(e));
  };
  // A guest that did not answer in time could still start the process
  // afterwards: its VM goes (SIGKILL to the shim takes QEMU with it).
  if (shim)
    if (auto a = vm::await_start(shim); !a) return stop(std::move(a.error()));
  log::phase("start: fifo written");
  if (!has_hooks(config.root(), "poststart")) return {};
  TRY(spec::Config cfg, spec::parse_config(rec.config));
  if (cfg.hooks && !cfg.hooks->poststart.empty()) {
    // A failing poststart hook fails start and stops the container (runtime.md).
    auto h = run_hooks(cfg.hooks->poststart, "poststart", hook_state(store, rec, "running"));
    if (!h) return stop(std::move(h.error()));
  }
  return {};
}

// Kills what is left and removes the cgroup and the state dir. `known`: the
// container's cgroup as `run` found it at create (no mountinfo read again).
Result<void> destroy(const Store& store, const Record& rec, std::unique_ptr<cgroup::Manager> known = {}) {
  log::phase("delete: begin");
  auto cg = known ? Result<std::unique_ptr<cgroup::Manager>>(std::move(known)) : cgroup_of(rec);
  log::phase("delete: cgroup hierarchies found");
  if (process_alive(rec)) {
    auto pfd = sys::pidfd_open(rec.pid);
    if (pfd && process_alive(rec)) {
      (void)sys::pidfd_send_signal(*pfd, SIGKILL);
      // A paused container: v1 delivers the kill only once thawed.
      if (cg && (*cg)->freezer_state() != cgroup::Freezer::thawed) (void)(*cg)->freeze(false);
      if (!wait_gone(*pfd, 10000)) return fail_msg("container init {} did not die", rec.pid);
    }
  }
  BRIG_FAULT("delete.after-kill");
  // init is gone. With its own pid namespace, so is every process of the
  // container (the kernel kills them and waits for them before init dies):
  // the directories are empty unless something moved a process in, so try
  // removing them before listing processes in each hierarchy.
  if (cg && !(rec.own_pidns && (*cg)->remove_if_empty())) {
    // Without its own pid namespace the container's other processes outlive init.
    (void)(*cg)->signal_all(SIGKILL);
    if ((*cg)->freezer_state() != cgroup::Freezer::thawed) (void)(*cg)->freeze(false);
    TRY_VOID((*cg)->destroy());
  }
  if (cg) {
    BRIG_FAULT("delete.after-cgroup-removal");
  }
  TRY_VOID(cgroup::resctrl::remove(rec.rdt_remove));
  log::phase("delete: container killed, cgroups removed");
  TRY_VOID(netns::teardown(net_owner(store, rec.id)));
  // poststop: after the container is gone; a failure only warns (runtime.md).
  if (auto config = spec::jdoc::parse(rec.config); config && has_hooks(config->root(), "poststop")) {
    auto cfg = spec::parse_config(rec.config);
    if (cfg && cfg->hooks && !cfg->hooks->poststop.empty()) {
      auto h = run_hooks(cfg->hooks->poststop, "poststop", hook_state(store, rec, "stopped"));
      if (!h) log::warn(h.error().msg);
    }
  }
  auto r = store.remove(rec.id);
  log::phase("delete: state removed");
  return r;
}

}  // namespace

Result<void> create(const Globals& g, const CreateOptions& o) {
  TRY(auto c, do_create(g, o, false));
  return {};
}

Result<void> start(const Globals& g, const std::string& id) {
  Store store(g.root);
  TRY(auto lock, store.open(id));
  TRY(Record rec, store.load(lock, id));
  log::phase("start: state loaded");
  return do_start(store, rec);
}

Result<int> run(const Globals& g, const RunOptions& o) {
  Store store(g.root);
  if (!o.detach && !o.no_subreaper) ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // Signals we forward to the container while we wait for it; blocked before
  // init exists so not even its SIGCHLD can slip by (init unblocks its own).
  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGCONT, SIGTSTP})
    sigaddset(&fwd, s);
  if (!o.detach) ::sigprocmask(SIG_BLOCK, &fwd, nullptr);
  TRY(Created c, do_create(g, o.create, !o.detach));

  {
    Store::Lock lock = std::move(c.lock);  // create's, released once started
    auto st = do_start(store, c.rec, true);
    if (!st) {
      (void)destroy(store, c.rec);
      return fail(std::move(st.error()));
    }
  }
  if (o.detach) return 0;

  TRY(int status, wait_foreground(c.rec.pid, c.pidfd, fwd, c.console ? &c.console : nullptr));
  log::phase("run: container exited");
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!o.keep) {
    TRY(auto lock, store.open(o.create.id));
    TRY_VOID(destroy(store, c.rec, std::move(c.cgroup)));
  }
  return code;
}

Result<spec::State> state(const Globals& g, const std::string& id) {
  Store store(g.root);
  TRY(Record rec, store.load_unlocked(id));
  return to_oci(store, rec);
}

Result<void> kill(const Globals& g, const std::string& id, int sig, bool all) {
  Store store(g.root);
  TRY(auto lock, store.open(id));
  TRY(Record rec, store.load(lock, id));
  std::string st = status_of(store, rec);
  if (st == "stopped" || st == "creating") return fail_msg("container not running");
  // A paused container gets SIGKILL delivered by thawing it afterwards (as runc).
  auto thaw_after_kill = [&] {
    if (st != "paused" || sig != SIGKILL) return;
    if (auto cg = cgroup_of(rec)) (void)(*cg)->freeze(false);
  };
  if (all) {
    TRY(auto cg, cgroup_of(rec));
    TRY_VOID(cg->signal_all(sig));
    thaw_after_kill();
    return {};
  }
  BRIG_FAULT("kill.before-signal");
  TRY(Fd pfd, sys::pidfd_open(rec.pid));
  // The pidfd pins the process: check it is still our init, then signal.
  if (!process_alive(rec)) return fail_msg("container not running");
  TRY_VOID(sys::pidfd_send_signal(pfd, sig));
  thaw_after_kill();
  return {};
}

Result<void> remove(const Globals& g, const std::string& id, bool force) {
  Store store(g.root);
  auto lock = store.open(id);
  if (!lock) {
    if (force && lock.error().msg == "container does not exist") return {};
    return fail(std::move(lock.error()));
  }
  auto rec = store.load(*lock, id);
  if (!rec) {
    // A state dir without a record: a create that died before its first
    // save, which had made nothing else yet. A record that cannot be read
    // (changed by hand: brig replaces it whole) no longer names the
    // container's processes and cgroups: forced, the state dir goes and the
    // warning says what may be left (runc refuses, and the id stays taken).
    if (force) {
      if (rec.error().msg != "container does not exist")
        log::warn(fmt::format("{}: removing its state directory; any processes and cgroups it recorded are left",
                              rec.error().msg));
      // Leases of a gone container are reclaimed later anyway: never keep its state for them.
      if (auto t = netns::teardown(net_owner(store, id)); !t) log::warn(t.error().msg);
      return store.remove(id);
    }
    return fail(std::move(rec.error()));
  }
  std::string st = status_of(store, *rec);
  if (st != "stopped" && st != "created" && !force)
    return fail_msg("cannot delete container {} that is not stopped: {}", id, st);
  return destroy(store, *rec);
}

std::vector<ListEntry> list(const Globals& g) {
  Store store(g.root);
  std::vector<ListEntry> out;
  for (const auto& id : store.ids()) {
    auto rec = store.load_unlocked(id);
    if (!rec) continue;
    ListEntry e;
    e.state = to_oci(store, *rec);
    struct stat st;
    e.owner = ::stat(store.dir(id).c_str(), &st) == 0 ? sys::user_name(st.st_uid) : "";
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace brig::runtime
