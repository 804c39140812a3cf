// The microVM executor: a shim process (the container's pid for `state`,
// `kill` and `run`) boots QEMU with virtiofsd sharing the rootfs (and a tap
// with brig networking), hands the guest agent the config, and relays start,
// signals, stdio (or the terminal: a host pty), execs and the exit.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>

#include "netns/attach.hpp"
#include "netns/network.hpp"
#include "netns/passthrough.hpp"
#include "rootfs/clones.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/executor.hpp"
#include "runtime/tty.hpp"
#include "runtime/vm/vm.hpp"

namespace brig::runtime::vm {
namespace {

constexpr int kBootTimeoutMs = 180000;  // TCG on a loaded host is slow

[[noreturn]] void exit_like(int wait_status) {
  ::_exit(WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status));
}

// `contained`: the program runs as the only child of PID 1 of a pid
// namespace of its own, and this process (the keeper) waits for that PID 1.
// A program that changes its uid loses PR_SET_PDEATHSIG (QEMU's -runas), but
// when a namespace's PID 1 dies the kernel kills everything in it; that PID 1
// stays root and keeps its death signal, tied to the keeper's, tied to ours.
void contain(int keep) {
  // The keeper and PID 1 never exec: they must not hold the shim's fds (the
  // pipe create waits on, the sockets) nor its stdio (a caller's pipes);
  // `keep` (if >= 0) is the program's.
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) ::_exit(127);
  for (int fd = 0; fd < 3; fd++) ::dup2(null, fd);
  int kept[] = {keep};
  sys::close_fds_except(3, kept);
  if (::unshare(CLONE_NEWPID) < 0) ::_exit(127);
  int alive[2];  // the keeper holds the write end: EOF means it is gone
  if (::pipe2(alive, O_CLOEXEC) < 0) ::_exit(127);
  pid_t one = ::fork();
  if (one < 0) ::_exit(127);
  if (one > 0) {  // the keeper
    ::close(alive[0]);
    int st = 0;
    while (::waitpid(one, &st, 0) < 0)
      if (errno != EINTR) ::_exit(127);
    exit_like(st);
  }
  ::close(alive[1]);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  pollfd p{alive[0], POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) ::_exit(127);  // the keeper died before the prctl
  ::close(alive[0]);
  pid_t prog = ::fork();
  if (prog < 0) ::_exit(127);
  if (prog == 0) return;  // the program's own set-up and exec follow
  // PID 1: reaps whatever ends up here; the program's status is its own.
  for (;;) {
    int st = 0;
    pid_t w = ::wait(&st);
    if (w == prog) exit_like(st);
    if (w < 0 && errno != EINTR) ::_exit(127);
  }
}

// In a child about to become the volumes' virtiofsd: each source cloned
// into `dir` in a mount namespace of its own (rootfs::clone_into). An error
// is one line on stdout (the log) and exit 127.
void bind_volumes(const std::string& dir, const std::vector<Volume>& vols) {
  std::vector<rootfs::Clone> clones;
  for (const auto& v : vols)
    clones.push_back({std::to_string(v.index), v.source, v.dir, v.recursive, v.readonly, v.rreadonly,
                      fmt::format("mounts[{}]", v.index)});
  if (auto r = rootfs::clone_into(dir, clones); !r) {
    std::string line = "vm: volumes: " + r.error().msg + "\n";
    (void)!::write(1, line.data(), line.size());
    ::_exit(127);
  }
}

// A helper process that dies with the shim (PR_SET_PDEATHSIG); see contain().
// `vols`: it is the volumes' virtiofsd (bind_volumes into `vols_dir`).
// `pass`: an fd the program gets, at the same number.
pid_t launch(const std::vector<std::string>& argv, const std::string& log, bool contained = false,
             const std::vector<Volume>* vols = nullptr, const std::string& vols_dir = "", int pass = -1) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  if (contained) contain(pass);
  if (pass >= 0) ::fcntl(pass, F_SETFD, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  // virtiofsd keeps one fd per inode it has seen: as many as we may.
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 clears it on 0-2
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (in < 0 || out < 0) ::_exit(127);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  if (vols) bind_volumes(vols_dir, *vols);
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  ::execv(a[0], a.data());
  ::_exit(127);
}

std::string tail_of(const std::string& path, size_t n = 400) {
  auto t = sys::read_file(path);
  if (!t || t->empty()) return "";
  std::string s = t->size() > n ? t->substr(t->size() - n) : *t;
  for (auto& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

void write_fd(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = ::write(fd, d.data(), d.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a gone reader must not stop the relay
    d.remove_prefix(static_cast<size_t>(n));
  }
}

struct Shim {
  std::string dir, id, rootfs, fifo;
  Plan plan;
  nlohmann::json config;
  std::string network, owner;  // brig networking: the network, the lease owner
  std::vector<netns::PortMap> ports;
  std::vector<Volume> vols;  // bind mounts: their sources, shared by a second virtiofsd
  // A network namespace passed through (netns/passthrough.hpp): the tap's
  // fd for QEMU, the interface's MAC and addressing for the guest.
  int pod_tap = -1;
  std::string pod_mac;
  nlohmann::json pod_net;
  int ready = -1;  // pipe to the creating brig; closed once reported
  int tty = -1;    // with process.terminal: the host pty's slave, raw
  pid_t vfsd = 0, volsd = 0, qemu = 0;  // qemu: the keeper of its pid namespace (contain())
  int ctl = -1;

  void report(std::string_view msg) {
    if (ready < 0) return;
    write_fd(ready, msg);
    ::close(ready);
    ready = -1;
  }

  // Ends the shim: QEMU and virtiofsd go first, then the sockets.
  [[noreturn]] void finish(int wait_status) {
    for (pid_t p : {qemu, vfsd, volsd})
      if (p > 0) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
    for (const char* s : {"/ctl.sock", "/vfs.sock", "/vols.sock"}) ::unlink((dir + s).c_str());
    // The namespace we were given is left as it was found (the tap went with QEMU).
    if (auto r = netns::passthrough::stop_recorded(owner); !r) log::warn(r.error().msg);
    ::unlink((dir + "/" + kShimSocket).c_str());
    // The status came from the guest: only a terminating signal is re-raised
    // (a stop signal would freeze the shim with the VM already gone).
    bool stop_sig = false;
    if (WIFSIGNALED(wait_status))
      for (int s : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
        if (WTERMSIG(wait_status) == s) stop_sig = true;
    if (WIFSIGNALED(wait_status) && (stop_sig || WTERMSIG(wait_status) < 1 || WTERMSIG(wait_status) > 64))
      ::_exit(255);
    if (WIFSIGNALED(wait_status)) {
      int sig = WTERMSIG(wait_status);
      struct rlimit no_core {0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core);
      ::signal(sig, SIG_DFL);
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, sig);
      ::sigprocmask(SIG_UNBLOCK, &s, nullptr);
      ::raise(sig);
      ::_exit(128 + sig);
    }
    ::_exit(WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 255);
  }

  // `console`: the guest's last console lines help (the boot went wrong).
  [[noreturn]] void die(const std::string& msg, bool console = true) {
    std::string con = console ? tail_of(dir + "/console.log") : "";
    report(con.empty() ? msg : msg + "; guest console: " + con);
    finish(W_EXITCODE(255, 0));
  }

  [[noreturn]] void run() {
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, nullptr);
    int sfd = ::signalfd(-1, &all, SFD_CLOEXEC);
    if (sfd < 0) die(fmt::format("vm: signalfd: {}", std::strerror(errno)));
    // start writes the fifo; holding it read-write keeps `start` from
    // seeing a stopped container while we live.
    int ff = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (ff < 0) die(fmt::format("vm: open exec fifo {}: {}", fifo, std::strerror(errno)));

    listen_socket();
    std::string csock = dir + "/ctl.sock";
    int64_t t0 = sys::monotonic_ms();
    // chroot'ed into the rootfs (nothing the guest names resolves outside
    // it), and without CAP_MKNOD / CAP_SETFCAP: the guest can make no device
    // node and no file capability on the host.
    vfsd = share(rootfs, "vfs", nullptr);
    if (!vols.empty()) {
      // The mount point of the volumes' tmpfs (bind_volumes), root's alone.
      std::string vdir = dir + "/volumes";
      if (::mkdir(vdir.c_str(), 0700) < 0 && errno != EEXIST)
        die(fmt::format("vm: mkdir {}: {}", vdir, std::strerror(errno)), false);
      volsd = share(vdir, "vols", &vols);
      plan.volumes = true;
    }
    // brig networking: a tap on the network's bridge with a lease held by
    // this shim (the container's pid); delete's teardown removes both.
    nlohmann::json hello_net;
    if (!network.empty()) {
      plan.tap = netns::host_dev_name(owner, "tb");
      plan.mac = mac_for(owner);
      auto a = netns::attach_tap(network, plan.tap, owner, ::getpid(), ports);
      if (!a) die(a.error().msg, false);
      hello_net = netns::to_json(*a);
    }
    if (pod_tap >= 0) {
      plan.tap_fd = pod_tap;
      plan.mac = pod_mac;
      hello_net = pod_net;
    }
    plan.run_as = kQemuIdBase + static_cast<uint32_t>(::getpid());
    auto uids = sys::read_file("/proc/self/uid_map"), gids = sys::read_file("/proc/self/gid_map");
    if (!uids || !gids || !id_mapped(*uids, plan.run_as) || !id_mapped(*gids, plan.run_as)) {
      log::warn(fmt::format("vm: uid and gid {} are not mapped in this user namespace: QEMU keeps running as root",
                            plan.run_as));
      plan.run_as = 0;
    }
    std::vector<std::string> qa = {plan.qemu};
    for (auto& a : qemu_args(plan, dir)) qa.push_back(a);
    // QEMU gives up root (and with it its death signal): it is contained.
    qemu = launch(qa, dir + "/qemu.log", true, nullptr, "", pod_tap);
    if (qemu < 0) die(fmt::format("vm: fork {}: {}", plan.qemu, std::strerror(errno)));
    if (pod_tap >= 0) {  // QEMU's alone now: the tap goes when QEMU does
      ::close(pod_tap);
      pod_tap = -1;
    }
    // QEMU listens on the control socket; connect once it is there.
    while (ctl < 0) {
      if (::waitpid(qemu, nullptr, WNOHANG) == qemu) {
        qemu = 0;
        die(fmt::format("vm: {} exited: {}", plan.qemu, tail_of(dir + "/qemu.log")));
      }
      if (sys::exists(csock))
        if (auto c = sys::connect_unix(csock)) ctl = c->release();
      if (ctl < 0) {
        if (sys::monotonic_ms() - t0 > 20000) die("vm: QEMU did not open its control socket");
        ::usleep(20000);
      }
    }
    nlohmann::json h = {{"id", id}, {"config", config}, {"protocol", protocol()}};
    if (!hello_net.is_null()) h["network"] = hello_net;
    if (!vols.empty()) h["volumes"] = true;
    // The channel never blocks us: frames queue (ctlq) and both ends keep
    // reading while they wait to write (see Frame::ack).
    ::fcntl(ctl, F_SETFL, ::fcntl(ctl, F_GETFL) | O_NONBLOCK);
    to_guest(encode(Frame::config, h.dump()));

    Decoder dec;
    bool created = false, started = false, in_open = false, ctl_open = true;
    // With a terminal the container's stdio is the host pty, not ours: its
    // slave is ours alone, so it never blocks us (our own stdio may be shared
    // with the caller: write_out takes care there).
    int tin = tty >= 0 ? tty : 0;
    if (tty >= 0) ::fcntl(tty, F_SETFL, ::fcntl(tty, F_GETFL) | O_NONBLOCK);
    std::vector<Out> outs = {{tty >= 0 ? tty : 1, {}}, {tty >= 0 ? tty : 2, {}}};
    if (tty >= 0) outs.pop_back();  // one queue keeps the terminal's order
    char buf[65536];
    for (;;) {
      // ctl, signals, fifo, stdin, the shim socket, then its clients, then
      // our stdout and stderr while output waits for them.
      std::vector<pollfd> p = {{ctl_open ? ctl : -1, static_cast<short>(POLLIN | (ctlq.empty() ? 0 : POLLOUT)), 0},
                               {sfd, POLLIN, 0}, {ff, POLLIN, 0}, {tin, POLLIN, 0}, {lsn, POLLIN, 0}};
      if (!created || started) p[2].fd = -1;
      if (!in_open || in_flight >= kWindow) p[3].fd = -1;
      if (!created || exit_status) p[4].fd = -1;
      for (auto& c : clients) p.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      for (auto& o : outs) p.push_back({o.q.empty() ? -1 : o.fd, POLLOUT, 0});
      // The console socket's holder resizes the pty without telling us: look.
      int timeout = !created || exit_status ? 100 : tty >= 0 ? 200 : -1;
      int n = ::poll(p.data(), p.size(), timeout);
      if (n < 0 && errno != EINTR) die(fmt::format("vm: poll: {}", std::strerror(errno)));
      if (created && tty >= 0) {
        std::string now = window_size(tty);
        if (!now.empty() && now != size) {
          size = now;
          to_guest(encode(Frame::resize, tag(0, size)));
        }
      }
      if (!created && sys::monotonic_ms() - t0 > kBootTimeoutMs)
        die(fmt::format("vm: the guest agent did not report within {}s", kBootTimeoutMs / 1000));
      if (p[0].revents & POLLOUT) flush_ctl();
      if (p[0].revents & ~POLLOUT) {
        ssize_t r = ::read(ctl, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) r = -2;
        if ((r == 0 || r == -1) && !exit_status) {
          // QEMU is gone (or going) with the container in it: what it sent
          // before has been read, and there was no exit among it.
          if (qemu > 0) {
            ::kill(qemu, SIGKILL);
            ::waitpid(qemu, nullptr, 0);
            qemu = 0;
          }
          if (!created) die(fmt::format("vm: QEMU exited: {}", tail_of(dir + "/qemu.log")));
          finish(W_EXITCODE(0, SIGKILL));
        }
        if (r == 0 || r == -1) ctl_open = false;  // the guest powered off after its exit
        if (r > 0) dec.feed(buf, static_cast<size_t>(r));
        for (;;) {
          auto m = dec.next();
          if (!m) die(m.error().msg);
          if (!*m) break;
          Msg& msg = **m;
          switch (msg.type) {
            case Frame::created: {
              auto c = nlohmann::json::parse(msg.data, nullptr, false);
              int guest = !c.is_object() ? 1
                          : c.contains("protocol") && c["protocol"].is_number_integer() ? c["protocol"].get<int>()
                                                                                        : 0;
              if (guest != protocol())
                die(fmt::format("vm: the guest agent in {} speaks protocol {}, this brig {}: rebuild it with this "
                                "brig (contrib/vm/build-agent-initramfs.sh)",
                                plan.initrd, guest, protocol()),
                    false);
              created = true;
              report("");
              break;
            }
            case Frame::error:
              die("vm: " + msg.data, false);
            case Frame::out:
            case Frame::err:
              // A guest that ignores its window is broken or hostile: it
              // does not get to fill our memory.
              out_unacked += msg.data.size();
              if (out_unacked > kWindow + kMaxFrame) die("vm: the guest sent output beyond its window", false);
              (msg.type == Frame::out ? outs.front() : outs.back()).q += msg.data;
              break;
            case Frame::exit:
              exit_status = std::atoi(msg.data.c_str());
              exit_at = sys::monotonic_ms();
              break;
            case Frame::started:
              start_result = msg.data;
              for (auto& c : clients)
                if (c.wants_start) to_client(c, encode(Frame::started, msg.data));
              break;
            case Frame::ack: {
              auto [num, rest] = untag(msg.data);
              if (!num) {
                take_ack(in_flight, rest);
              } else {
                for (auto& c : clients)
                  if (c.exec == num) to_client(c, encode(msg.type, msg.data));
              }
              break;
            }
            case Frame::exec_out:
            case Frame::exec_err:
            case Frame::exec_started:
            case Frame::exec_exit: {
              auto [num, rest] = untag(msg.data);
              bool taken = false;
              for (auto& c : clients)
                if (c.exec == num) {
                  taken = true;
                  to_client(c, encode(msg.type, msg.data), msg.type == Frame::exec_exit ? 0 : rest.size());
                  if (msg.type == Frame::exec_exit) c.exec = 0;  // done: it hangs up
                }
              // Its `brig exec` is gone: the output goes nowhere, and on.
              if (!taken && msg.type != Frame::exec_exit && !rest.empty()) ack(num, rest.size());
              break;
            }
            default:
              break;
          }
        }
      }
      if (p[1].revents) {
        struct signalfd_siginfo si;
        if (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          int sig = static_cast<int>(si.ssi_signo);
          if (sig == SIGCHLD) {
            int st = 0;
            if (qemu > 0 && ::waitpid(qemu, &st, WNOHANG) == qemu) {
              qemu = 0;
              if (!created) die(fmt::format("vm: QEMU exited: {}", tail_of(dir + "/qemu.log")));
              // The guest powered off (after its exit frame, as it does) or
              // the VM died: the control channel's end tells which, once
              // all QEMU passed on before it has been read.
            }
            for (pid_t* d : {&vfsd, &volsd})
              if (*d > 0 && ::waitpid(*d, &st, WNOHANG) == *d) *d = 0;
          } else if (sig != SIGPIPE && sig != SIGWINCH) {
            // A kill once the process ended: its unread output is dropped.
            if (exit_status && stops_process(sig)) finish(*exit_status);
            if (stops_process(sig)) killed = true;
            if (!exit_status) to_guest(encode(Frame::signal, std::to_string(sig)));
          }
        }
      }
      if (p[2].fd >= 0 && p[2].revents) {
        char c;
        if (::read(ff, &c, 1) == 1) {
          started = true;
          in_open = true;
          ::close(ff);
          ff = -1;
          to_guest(encode(Frame::start, ""));
        }
      }
      if (p[3].fd >= 0 && p[3].revents) {
        ssize_t r = ::read(tin, buf, std::min(sizeof buf, kWindow - in_flight));
        if (r > 0) {
          in_flight += static_cast<size_t>(r);
          to_guest(encode(Frame::in, std::string_view(buf, static_cast<size_t>(r))));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          in_open = false;
          to_guest(encode(Frame::in, ""));
        }
      }
      if (p[4].fd >= 0 && p[4].revents) {
        int c = ::accept4(lsn, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c >= 0) clients.push_back(Client{c});
      }
      size_t first_out = p.size() - outs.size();
      for (size_t i = 5; i < first_out; i++) {
        if (p[i].revents & POLLOUT)
          for (auto& c : clients)
            if (c.fd == p[i].fd) flush(c);
        if (p[i].revents & ~POLLOUT) serve(p[i].fd, buf, sizeof buf);
      }
      std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
      for (size_t i = 0; i < outs.size(); i++)
        if (p[first_out + i].revents || exit_status) write_out(outs[i]);
      // The process ended: its output is delivered first, for as long as the
      // reader takes it, unless a kill stopped it (then 1 s at most).
      if (exit_status) {
        bool flushed = std::all_of(outs.begin(), outs.end(), [](const Out& o) { return o.q.empty(); });
        if (flushed || (killed && sys::monotonic_ms() - exit_at > 1000)) finish(*exit_status);
      }
    }
  }

  // Output of the container for our stdout or stderr (or the terminal).
  struct Out {
    int fd;
    std::string q;
  };
  std::optional<int> exit_status;  // the guest reported the process's end
  int64_t exit_at = 0;
  bool killed = false;  // a signal that stops it was passed on to the container
  size_t out_unacked = 0;  // container output the guest sent, not yet acknowledged
  size_t in_flight = 0;  // of our stdin, sent and not yet acknowledged
  std::string ctlq;      // frames for the guest, not yet taken

  void to_guest(const std::string& frame) {
    ctlq += frame;
    flush_ctl();
  }

  void flush_ctl() {
    while (!ctlq.empty()) {
      ssize_t n = ::write(ctl, ctlq.data(), ctlq.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        ctlq.clear();  // QEMU is gone: the channel's end (read side) tells
        return;
      }
      ctlq.erase(0, static_cast<size_t>(n));
    }
  }

  void ack(uint32_t num, size_t bytes) {
    if (bytes) to_guest(encode(Frame::ack, tag(num, std::to_string(bytes))));
  }

  // Writes what the reader takes without blocking: poll says there is room,
  // and a page at most goes per write (our stdio may be blocking fds we
  // share with others, so no O_NONBLOCK on them). What went is acknowledged.
  void write_out(Out& o) {
    size_t done = 0;
    while (!o.q.empty()) {
      pollfd w{o.fd, POLLOUT, 0};
      if (::poll(&w, 1, 0) <= 0 || !(w.revents & (POLLOUT | POLLERR | POLLHUP))) break;
      ssize_t n = ::write(o.fd, o.q.data(), std::min<size_t>(o.q.size(), 4096));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {  // the reader is gone: the rest goes nowhere
        done += o.q.size();
        o.q.clear();
        break;
      }
      done += static_cast<size_t>(n);
      o.q.erase(0, static_cast<size_t>(n));
    }
    out_unacked = done >= out_unacked ? 0 : out_unacked - done;
    ack(0, done);
  }

  // One `brig start` or `brig exec` on the shim socket.
  struct Client {
    int fd = -1;
    Decoder dec;
    uint32_t exec = 0;  // the exec number it runs, 0 = none
    bool tied = false;  // a detached exec's relay: its process dies with it
    bool wants_start = false;
    std::string out;  // frames it has not taken yet
    // For each frame in `out`: its size and the stream bytes in it, which are
    // acknowledged to the guest once the frame went out.
    std::deque<std::pair<size_t, size_t>> sizes;
  };
  std::vector<Client> clients;
  int lsn = -1;
  uint32_t next_exec = 1;
  std::optional<std::string> start_result;
  std::string size;  // the terminal's last size sent

  // A client that takes nothing for this long a queue is dropped (the guest
  // sends an exec's output only a window ahead, so this is a stuck client).
  static constexpr size_t kClientBacklog = 16u << 20;

  void to_client(Client& c, const std::string& frame, size_t data = 0) {
    if (c.fd < 0) {
      if (c.exec) ack(c.exec, data);
      return;
    }
    c.out += frame;
    c.sizes.emplace_back(frame.size(), data);
    flush(c);
  }

  void flush(Client& c) {
    size_t done = 0;
    while (c.fd >= 0 && !c.out.empty()) {
      ssize_t n = ::write(c.fd, c.out.data(), c.out.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        if (c.exec) ack(c.exec, done);
        return hang_up(c);
      }
      c.out.erase(0, static_cast<size_t>(n));
      for (size_t k = static_cast<size_t>(n); k > 0 && !c.sizes.empty();) {
        auto& [left, data] = c.sizes.front();
        size_t take = std::min(left, k);
        left -= take;
        k -= take;
        if (left == 0) {
          done += data;
          c.sizes.pop_front();
        }
      }
    }
    if (c.exec) ack(c.exec, done);
    if (c.out.size() > kClientBacklog) hang_up(c);
  }

  void hang_up(Client& c) {
    if (c.fd < 0) return;
    // A foreground `brig exec` gone: the process loses its stdin, as it
    // would with the caller's terminal closed; it keeps running, its output
    // going nowhere (what waited for the client is acknowledged).
    // A detached exec's relay gone (SIGKILLed, say): it stood for the
    // process on this host, so the process goes too.
    if (c.exec) {
      size_t unsent = 0;
      for (auto& s : c.sizes) unsent += s.second;
      ack(c.exec, unsent);
      to_guest(encode(Frame::exec_in, tag(c.exec, "")));
      if (c.tied) to_guest(encode(Frame::exec_signal, tag(c.exec, std::to_string(SIGKILL))));
    }
    c.sizes.clear();
    c.out.clear();
    ::close(c.fd);
    c.fd = -1;
    c.exec = 0;
  }

  void serve(int fd, char* buf, size_t size) {
    auto it = std::find_if(clients.begin(), clients.end(), [fd](const Client& c) { return c.fd == fd; });
    if (it == clients.end()) return;
    Client& c = *it;
    ssize_t r = ::read(fd, buf, size);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) return hang_up(c);
    c.dec.feed(buf, static_cast<size_t>(r));
    for (;;) {
      auto m = c.dec.next();
      if (!m) return hang_up(c);
      if (!*m) return;
      Msg& msg = **m;
      auto rest = untag(msg.data).second;
      switch (msg.type) {
        case Frame::started:
          c.wants_start = true;
          if (start_result) to_client(c, encode(Frame::started, *start_result));
          break;
        case Frame::exec:
          if (c.exec) return hang_up(c);
          c.exec = next_exec++;
          c.tied = detached(rest);
          to_guest(encode(Frame::exec, tag(c.exec, rest)));
          break;
        case Frame::exec_in:
        case Frame::exec_signal:
        case Frame::resize:
          if (c.exec) to_guest(encode(msg.type, tag(c.exec, rest)));
          break;
        default:
          return hang_up(c);
      }
    }
  }

  // Starts a virtiofsd exporting `source` on <dir>/<name>.sock (and, with
  // `v`, the volumes cloned into `source` first); returns once it listens.
  pid_t share(const std::string& source, const std::string& name, const std::vector<Volume>* v) {
    std::string sock = dir + "/" + name + ".sock", log = dir + "/" + name + "-virtiofsd.log";
    if (name == "vfs") log = dir + "/virtiofsd.log";
    pid_t pid = launch({"/usr/lib/qemu/virtiofsd", "--socket-path=" + sock, "-o", "source=" + fuse_escape(source), "-o",
                        "cache=auto", "-o", "sandbox=chroot", "-o", "modcaps=-mknod:-setfcap", "-o", "log_level=err",
                        "--rlimit-nofile=0"},
                       log, false, v, source);
    if (pid < 0) die(fmt::format("vm: fork virtiofsd: {}", std::strerror(errno)));
    int64_t t0 = sys::monotonic_ms();
    while (!sys::exists(sock)) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        std::string why = tail_of(log);
        // bind_volumes' own line says what failed; virtiofsd's needs naming.
        die(why.starts_with("vm: ") ? why : "vm: virtiofsd exited: " + why, false);
      }
      if (sys::monotonic_ms() - t0 > 10000) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        die("vm: virtiofsd did not create its socket", false);
      }
      ::usleep(20000);
    }
    return pid;
  }

  // The shim socket, for `brig start` and `brig exec` (root only).
  void listen_socket() {
    auto l = listen_unix(dir + "/" + kShimSocket);
    if (!l) die(l.error().msg, false);
    lsn = l->release();
  }
};

class VmExecutor final : public Executor {
 public:
  Result<Spawned> spawn(const SpawnRequest& rq, Rollback& rb) override {
    Host host = probe_host();
    TRY(Plan p, plan(rq.cfg, host, default_paths()));
    for (const auto* f : {&p.qemu, &p.kernel, &p.initrd})
      if (::access(f->c_str(), R_OK) < 0) return fail_errno("vm: {}", *f);
    if (::access("/usr/lib/qemu/virtiofsd", X_OK) < 0) return fail_errno("vm: /usr/lib/qemu/virtiofsd");
    if (!p.image.empty()) {
      TRY(Fd img, sys::open(p.image, O_RDONLY | O_CLOEXEC));
      std::string head(512, '\0');
      ssize_t n = ::pread(img.get(), head.data(), head.size(), 0);
      if (n < 0) return fail_errno("vm.image: read {}", p.image);
      head.resize(static_cast<size_t>(n));
      TRY_VOID(check_image(p.image, p.image_format, head));
    }
    if (!p.kvm)
      log::warn("vm: no hardware virtualization (vmx/svm): falling back to TCG emulation, the guest runs slowly");
    std::string dir = rq.fifo_path.substr(0, rq.fifo_path.rfind('/'));
    if (dir.size() + 2 + std::strlen(kShimSocket) > sizeof(sockaddr_un::sun_path))
      return fail_msg("vm: state directory {} is too long for a unix socket path", dir);

    // A terminal: a host pty whose master goes to the console socket once the
    // container exists; the shim relays its slave to the guest's pty.
    std::optional<Pty> pty;
    if (rq.cfg.process->terminal) {
      if (rq.console_fd < 0) return fail_msg("vm: process.terminal needs a console socket");
      TRY(pty, open_pty());
      struct termios t;
      if (::tcgetattr(pty->slave.get(), &t) == 0) {
        ::cfmakeraw(&t);  // the guest's pty does the line discipline
        ::tcsetattr(pty->slave.get(), TCSANOW, &t);
      }
      if (const auto& cs = rq.cfg.process->consoleSize)
        set_window_size(pty->slave.get(), fmt::format("{} {}", cs->height, cs->width));
    }
    int rp[2];
    if (::pipe2(rp, O_CLOEXEC) < 0) return fail_errno("pipe");
    Fd rd(rp[0]), wr(rp[1]);
    TRY(netns::Request net, netns::request_for(rq.cfg));
    if (!net.net_devices.empty()) return fail_msg("vm: linux.netDevices is not supported by the microVM backend yet");
    TRY(std::vector<Volume> vols, volumes(rq.cfg, rq.bundle));
    for (auto& v : vols) {
      struct stat st;
      if (::stat(v.source.c_str(), &st) < 0) return fail_errno("vm: mounts[{}].source {}", v.index, v.source);
      // A device node or a socket would mean the guest's, not the host's.
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return fail_msg("vm: mounts[{}].source {}: only directories and regular files can be shared with the guest",
                        v.index, v.source);
      v.dir = S_ISDIR(st.st_mode);
    }
    // A network namespace given by path (CNI's, netavark's): its interface
    // is passed through to the guest.
    std::optional<netns::passthrough::Joined> pod;
    std::string owner = sys::abs_path(dir);
    if (!net.attach() && rq.cfg.linux)
      for (const auto& ns : rq.cfg.linux->namespaces)
        if (ns.type == "network" && ns.path) {
          TRY(pod, netns::passthrough::start(*ns.path, owner));
          rb.push([owner] {
            if (auto r = netns::passthrough::stop_recorded(owner); !r) log::warn(r.error().msg);
          });
        }
    Shim shim{dir, rq.id, rq.rootfs, rq.fifo_path, p, guest_config(nlohmann::json::parse(rq.document), net.attach() || pod, vols), net.network,
              owner, net.ports, vols};
    if (pod && pod->tap) {
      shim.pod_tap = pod->tap.get();
      shim.pod_mac = pod->mac;
      shim.pod_net = netns::to_json(pod->addressing);
    }
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
      ::setsid();
      if (auto a = rq.cgroup.add(::getpid()); !a) {
        write_fd(wr.get(), a.error().msg);
        ::_exit(1);
      }
      // Nothing of the creating brig (its state lock above all) may stay open.
      int keep[] = {wr.get(), pty ? pty->slave.get() : -1, shim.pod_tap};
      sys::close_fds_except(3, keep);
      shim.ready = wr.get();
      if (pty) {
        shim.tty = pty->slave.get();
        shim.size = window_size(shim.tty);
      }
      shim.run();
    }
    wr.reset();
    if (pod) pod->tap.reset();  // the shim's now
    if (net.attach())
      rb.push([owner] {
        if (auto r = netns::teardown(owner); !r) log::warn(r.error().msg);
      });
    rb.push([pid] {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    });
    TRY(std::string msg, sys::read_all(rd));
    if (!msg.empty()) return fail_msg("{}", msg);
    if (pty) {
      TRY_VOID(send_fd(rq.console_fd, pty->master, pty->name));
    }
    Spawned out;
    out.pid = pid;
    auto st = sys::process_start_time(pid);
    if (!st) return fail_msg("vm: the shim {} is gone", pid);
    out.pid_start = *st;
    TRY(out.pidfd, sys::pidfd_open(pid));
    out.pid_ino = sys::pidfs_ino(out.pidfd);
    out.own_pidns = true;
    return out;
  }
};

}  // namespace
}  // namespace brig::runtime::vm

namespace brig::runtime {
std::unique_ptr<Executor> vm_executor() { return std::make_unique<vm::VmExecutor>(); }
}  // namespace brig::runtime
