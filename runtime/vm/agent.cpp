// `brig vm-agent`: PID 1 of the microVM guest. Mounts the basics, loads the
// initramfs's virtio modules, takes the config from the host over the
// virtio-serial port "brig.ctl", mounts the rootfs shared over virtiofs and
// runs the container with brig's own namespace executor (`brig create` /
// `brig start` / `brig exec` on a guest-local state root), relaying stdio,
// terminals (the guest brig's pty masters, over console sockets), execs and
// the exit. With brig networking it configures eth0 first.
#include <dirent.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <algorithm>
#include <map>
#include <optional>

#include "netns/attach.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/vm/vm.hpp"

namespace brig::runtime::vm {
namespace {

constexpr const char* kBrig = "/bin/brig";
constexpr const char* kRoot = "/run/brig";

int ctl = -1;
// Frames the host has not taken yet: the port is non-blocking, so the agent
// never stops reading it while the host is busy (see Frame::ack).
std::string outq;

void say(std::string_view m) {
  // Before the port is up only the serial console hears us.
  int fd = ::open("/dev/console", O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0) {
    std::string line = "brig-agent: " + std::string(m) + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  }
}

void flush_out() {
  while (ctl >= 0 && !outq.empty()) {
    ssize_t n = ::write(ctl, outq.data(), outq.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      outq.clear();  // the host is gone
      return;
    }
    outq.erase(0, static_cast<size_t>(n));
  }
}

[[noreturn]] void power_off() {
  // What is queued reaches the host first (it always reads the channel).
  if (ctl >= 0) {
    ::fcntl(ctl, F_SETFL, ::fcntl(ctl, F_GETFL) & ~O_NONBLOCK);
    flush_out();
  }
  ::sync();
  // reboot=t and QEMU's -no-reboot turn this into QEMU exiting.
  ::reboot(RB_AUTOBOOT);
  for (;;) ::pause();
}

void send(Frame t, std::string_view d) {
  if (ctl < 0) return;
  outq += encode(t, d);
  flush_out();
}

[[noreturn]] void fatal(const std::string& m) {
  say(m);
  send(Frame::error, m);
  power_off();
}

void load_modules() {
  std::ifstream list("/lib/modules/load");
  std::string name;
  while (std::getline(list, name)) {
    if (name.empty()) continue;
    std::string path = "/lib/modules/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fatal(fmt::format("open {}: {}", path, std::strerror(errno)));
    if (::syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
      fatal(fmt::format("load module {}: {}", path, std::strerror(errno)));
    ::close(fd);
  }
}

// virtio devices probe asynchronously: wait for the named port.
std::string find_port(const std::string& want) {
  for (int i = 0; i < 500; i++) {
    if (DIR* d = ::opendir("/sys/class/virtio-ports")) {
      while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        auto n = sys::read_file(fmt::format("/sys/class/virtio-ports/{}/name", e->d_name));
        if (n && n->starts_with(want)) {
          std::string dev = fmt::format("/dev/{}", e->d_name);
          ::closedir(d);
          if (sys::exists(dev)) return dev;
          return "";
        }
      }
      ::closedir(d);
    }
    ::usleep(20000);
  }
  return "";
}

// Starts brig with the given stdio; returns its pid.
pid_t spawn_brig(std::vector<std::string> args, int in, int out, int err) {
  args.insert(args.begin(), {kBrig, "--root", kRoot});
  pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> a;
    for (auto& s : args) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(kBrig, a.data());
    ::_exit(127);
  }
  return pid;
}

// Runs brig with the given stdio; returns its wait status.
int run_brig(std::vector<std::string> args, int in, int out, int err) {
  pid_t pid = spawn_brig(std::move(args), in, out, err);
  if (pid < 0) return 127 << 8;  // as a brig that could not run (fork failed)
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return st;
}

std::string drain(int fd) {
  std::string s;
  char b[4096];
  ssize_t n;
  while ((n = ::read(fd, b, sizeof b)) > 0) s.append(b, static_cast<size_t>(n));
  return s;
}

// Input for a process (a pipe, or a pty master) that never blocks the
// agent: what the process does not take yet waits here; EOF after it. Each
// byte passed on (or dropped, its reader gone) is acknowledged to the host,
// which sends no more than kWindow ahead: at most that much waits here.
struct Sink {
  int fd = -1;
  bool own = true;  // a pipe closes at EOF; a pty master is closed elsewhere
  uint32_t stream = 0;  // exec number, 0 = the container's stdin
  std::string pending;
  bool eof = false;

  void put(std::string_view d) {
    if (fd < 0) return ack(d.size());
    pending.append(d);
    flush();
  }
  void end() {
    eof = true;
    flush();
  }
  void flush() {
    size_t done = 0;
    while (fd >= 0 && !pending.empty()) {
      ssize_t n = ::write(fd, pending.data(), pending.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        done += pending.size();  // the reader is gone
        pending.clear();
        break;
      }
      done += static_cast<size_t>(n);
      pending.erase(0, static_cast<size_t>(n));
    }
    ack(done);
    // EOF once the process has taken everything before it.
    if (eof && own && fd >= 0 && pending.empty()) {
      ::close(fd);
      fd = -1;
    }
  }
  // The process is gone from this input (its terminal closed): drop the rest.
  void lose() {
    ack(pending.size());
    pending.clear();
    fd = -1;
  }
  void ack(size_t n) const {
    if (n) send(Frame::ack, tag(stream, std::to_string(n)));
  }
};

Sink sink_for(int fd, bool own, uint32_t stream) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return Sink{fd, own, stream, {}, false};
}

// Output of a process on its way to the host: at most kWindow bytes of a
// stream unacknowledged; past that the agent stops reading its pipes and
// the process waits, as it would on a full pipe.
struct Credit {
  size_t unacked = 0;
  bool open() const { return unacked < kWindow; }
  size_t room() const { return open() ? kWindow - unacked : 0; }
  void acked(std::string_view n) { take_ack(unacked, n); }
};

// A second process: the guest's `brig exec`, its stdio on pipes.
struct Exec {
  uint32_t n = 0;
  pid_t pid = 0;
  Sink in;  // its stdin pipe, or its pty once there
  Credit credit;  // of its stdout + stderr (or pty)
  int out = -1, err = -1;
  int lsn = -1, pty = -1;  // with a terminal: the console socket, then the pty master
  std::string size;        // its last size, for a pty not there yet
  // Detached: `brig exec -d` started the process on our pipes; once that
  // brig exits the process is ours to reap (PID 1 adopts it), `proc`.
  bool detach = false;
  pid_t proc = 0;
  int pending_sig = 0;  // a signal for it that came before its pid
  bool exited = false;
  int status = 0;
  int64_t quiet_since = 0, exited_at = 0;  // once it exited: when its output last moved
};

std::string exec_file(uint32_t n) { return fmt::format("/run/bundle/exec-{}.json", n); }
std::string console_file(uint32_t n) { return fmt::format("/run/bundle/console-{}.sock", n); }
std::string pid_file(uint32_t n) { return fmt::format("/run/bundle/exec-{}.pid", n); }
// An exec's process.json and console socket, once its brig no longer needs them.
void forget_exec_files(uint32_t n) {
  ::unlink(exec_file(n).c_str());
  ::unlink(console_file(n).c_str());
  ::unlink(pid_file(n).c_str());
}

// Starts `brig exec` for an exec frame, its stdio (and, detached, its
// process's) on pipes.
std::optional<Exec> start_exec(uint32_t n, std::string_view payload, const std::string& id) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  bool detach = detached(payload);
  Exec e;
  e.n = n;
  e.detach = detach;
  std::vector<std::string> args;
  if (j.contains("brig")) {
    // A brig command on the guest container (`ps`): its arguments as given.
    try {
      args = j["brig"].get<std::vector<std::string>>();
    } catch (const std::exception&) {
      return std::nullopt;
    }
  } else if (j.contains("process")) {
    std::string path = exec_file(n);
    if (!sys::write_file_atomic(path, j["process"].dump(), 0600)) return std::nullopt;
    args = {"exec", "--process", path};
    if (detach) args.insert(args.end(), {"-d", "--pid-file", pid_file(n)});
  } else {
    return std::nullopt;
  }
  if (j.contains("process") && j["process"].value("terminal", false)) {
    std::string sock = console_file(n);
    auto l = listen_unix(sock, true);
    if (!l) {
      forget_exec_files(n);
      return std::nullopt;
    }
    e.lsn = l->release();
    args.insert(args.end(), {"--console-socket", sock});
  }
  if (j.contains("process")) args.push_back(id);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], e.lsn})
      if (fd >= 0) ::close(fd);
    forget_exec_files(n);
    return std::nullopt;
  }
  e.pid = spawn_brig(args, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (e.pid < 0) {  // fork failed: no process to signal or wait for (never kill(-1))
    for (int fd : {in[1], out[0], err[0], e.lsn})
      if (fd >= 0) ::close(fd);
    forget_exec_files(n);
    return std::nullopt;
  }
  e.in = sink_for(in[1], true, n);
  e.out = out[0];
  e.err = err[0];
  ::fcntl(e.out, F_SETFL, O_NONBLOCK);
  ::fcntl(e.err, F_SETFL, O_NONBLOCK);
  return e;
}

// The pty master a guest brig sends to the console socket `lsn`; -1 if none
// (yet, with a non-blocking `lsn`).
int take_master(int lsn) {
  int c = ::accept4(lsn, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return -1;
  Fd conn(c);
  char name[256];
  auto r = sys::recv_with_fd(conn, name, sizeof name);
  if (!r || !r->fd) return -1;
  return r->fd.release();
}

// pivot_root refuses a root on the initramfs (it has no parent mount): move
// a tmpfs holding the initramfs's binaries over / first (as switch_root
// does), so the container gets a real pivot_root inside the guest.
void leave_initramfs() {
  ::mkdir("/newroot", 0755);
  if (::mount("tmpfs", "/newroot", "tmpfs", 0, "mode=755") < 0) fatal(fmt::format("mount tmpfs: {}", std::strerror(errno)));
  for (const char* d : {"bin", "lib", "lib64", "usr"}) {
    std::string src = std::string("/") + d, dst = std::string("/newroot/") + d;
    if (!sys::exists(src)) continue;
    ::mkdir(dst.c_str(), 0755);
    if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      fatal(fmt::format("bind {}: {}", src, std::strerror(errno)));
  }
  if (::chdir("/newroot") < 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0 || ::chroot(".") < 0 ||
      ::chdir("/") < 0)
    fatal(fmt::format("move the root off the initramfs: {}", std::strerror(errno)));
  for (const char* d : {"/proc", "/sys", "/dev"}) ::mkdir(d, 0755);
}

// Whether "/" is the initramfs (rootfs: ramfs or tmpfs), not vm.image's disk.
bool on_initramfs() {
  struct statfs st;
  return ::statfs("/", &st) == 0 && (st.f_type == RAMFS_MAGIC || st.f_type == TMPFS_MAGIC);
}

// The value of `key=` on the guest's kernel command line, "" if none.
std::string cmdline_value(const std::string& key) {
  auto line = sys::read_file("/proc/cmdline");
  if (!line) return "";
  std::istringstream words(*line);
  std::string w;
  while (words >> w) {
    if (w == "--") break;  // init's own arguments follow
    if (w.starts_with(key + "=")) return w.substr(key.size() + 1);
  }
  return "";
}

// vm.image: the disk `dev` is the guest's root. The initramfs only loads the
// modules, mounts it read-only and hands PID 1 over to the brig it holds
// (switch_root's steps), which goes on as the agent from there. Never
// returns; an error goes to the console (the host shows its last lines).
[[noreturn]] void hand_over_to_image(const std::string& dev) {
  auto fail = [&](const std::string& what) {
    say(fmt::format("vm.image: {}: {}", what, std::strerror(errno)));
    power_off();
  };
  load_modules();
  for (int i = 0; i < 500 && !sys::exists(dev); i++) ::usleep(20000);
  ::mkdir("/image", 0755);
  // The first filesystem the kernel has that takes it (as mount(8) tries).
  auto fss = sys::read_file("/proc/filesystems");
  std::istringstream lines(fss ? *fss : "");
  std::string line, used;
  int err = ENODEV;
  while (used.empty() && std::getline(lines, line)) {
    size_t at = line.find_first_not_of(" \t");
    if (line.starts_with("nodev") || at == std::string::npos) continue;
    std::string fs = line.substr(at);
    if (::mount(dev.c_str(), "/image", fs.c_str(), MS_RDONLY, nullptr) == 0) used = fs;
    else if (errno != EINVAL) err = errno;
  }
  if (used.empty()) {
    errno = err;
    fail(fmt::format("mount {}", dev));
  }
  std::string brig = std::string("/image") + kImageBrig;
  if (::access(brig.c_str(), X_OK) < 0) fail(fmt::format("{} of {} ({})", kImageBrig, dev, used));
  say(fmt::format("root {} ({}): handing over to its {}", dev, used, kImageBrig));
  ::umount2("/dev", MNT_DETACH);
  ::umount2("/proc", MNT_DETACH);
  if (::chdir("/image") < 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0 || ::chroot(".") < 0 ||
      ::chdir("/") < 0)
    fail("make it the root");
  const char* argv[] = {kImageBrig, "vm-agent", nullptr};
  ::execve(kImageBrig, const_cast<char* const*>(argv), environ);
  fail(fmt::format("exec {}", kImageBrig));
  power_off();  // (fail does not return either)
}

}  // namespace

void agent_main() {
  // It remounts / and /proc: never on a host, only as a guest's first process.
  if (::getpid() != 1) {
    std::fputs("brig: vm-agent only runs as PID 1 of a brig microVM guest\n", stderr);
    ::_exit(1);
  }
  ::umask(022);
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  if (on_initramfs()) {
    ::mount("proc", "/proc", "proc", 0, nullptr);
    std::string image = cmdline_value(kImageArg);
    if (!image.empty()) {
      ::mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
      hand_over_to_image(image);
    }
    ::umount2("/proc", MNT_DETACH);
    leave_initramfs();
  }
  // On vm.image's disk (read-only) the mount points are the image's own.
  ::mount("proc", "/proc", "proc", 0, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  ::mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  for (const char* d : {"/run", "/tmp"}) {
    ::mkdir(d, 0755);
    ::mount("tmpfs", d, "tmpfs", 0, "mode=755");
  }
  ::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, "nsdelegate");
  load_modules();

  std::string port = find_port("brig.ctl");
  if (port.empty()) {
    say("no virtio-serial port brig.ctl");
    power_off();
  }
  ctl = ::open(port.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (ctl < 0) {
    say(fmt::format("open {}: {}", port, std::strerror(errno)));
    power_off();
  }

  Decoder dec;
  char buf[65536];
  auto next_msg = [&]() -> Msg {
    for (;;) {
      auto m = dec.next();
      if (!m) fatal(m.error().msg);
      if (*m) return std::move(**m);
      ssize_t n = ::read(ctl, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fatal("control channel closed");
      dec.feed(buf, static_cast<size_t>(n));
    }
  };
  Msg hello = next_msg();
  if (hello.type != Frame::config) fatal("the first frame is not the config");
  auto j = nlohmann::json::parse(hello.data, nullptr, false);
  if (j.is_discarded() || !j.contains("id") || !j.contains("config")) fatal("malformed config frame");
  std::string id = j["id"].get<std::string>();
  int host = j.contains("protocol") && j["protocol"].is_number_integer() ? j["protocol"].get<int>() : 1;
  if (host != protocol())
    fatal(fmt::format("the host's brig speaks protocol {}, this guest agent {}: rebuild the initramfs with "
                      "the host's brig (contrib/vm/build-agent-initramfs.sh){}",
                      host, protocol(),
                      on_initramfs() ? "" : ", and the vm.image disk (contrib/vm/build-agent-image.sh)"));

  // brig networking: eth0 (virtio-net on the host's tap) gets the lease.
  if (j.contains("network")) {
    auto a = netns::attachment_from_json(j["network"]);
    if (!a) fatal(a.error().msg);
    for (int i = 0; i < 250 && !sys::exists("/sys/class/net/eth0"); i++) ::usleep(20000);
    if (auto r = netns::configure_here(*a, "eth0"); !r) fatal("network: " + r.error().msg);
  }
  ::mkdir("/rootfs", 0755);
  int tries = 0;
  while (::mount("rootfs", "/rootfs", "virtiofs", 0, nullptr) < 0) {
    if (++tries > 250) fatal(fmt::format("mount virtiofs rootfs: {}", std::strerror(errno)));
    ::usleep(20000);
  }
  if (j.value("volumes", false)) {  // the bind mounts' sources (Volume)
    ::mkdir(kGuestVolumes, 0700);
    tries = 0;
    while (::mount(kVolumesTag, kGuestVolumes, "virtiofs", 0, nullptr) < 0) {
      if (++tries > 250) fatal(fmt::format("mount virtiofs {}: {}", kVolumesTag, std::strerror(errno)));
      ::usleep(20000);
    }
  }
  ::mkdir("/run/bundle", 0700);
  if (auto w = sys::write_file_atomic("/run/bundle/config.json", j["config"].dump(), 0644); !w) fatal(w.error().msg);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0 || ::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0)
    fatal("pipe");
  // A terminal: the guest brig sends the pty master to our console socket.
  bool terminal = j["config"].contains("process") && j["config"]["process"].value("terminal", false);
  std::vector<std::string> create = {"create", "--bundle", "/run/bundle", "--pid-file", "/run/ctr.pid"};
  Fd console;
  if (terminal) {
    auto l = listen_unix("/run/bundle/console.sock");
    if (!l) fatal(l.error().msg);
    console = std::move(*l);
    create.insert(create.end(), {"--console-socket", "/run/bundle/console.sock"});
  }
  create.push_back(id);
  int cst = run_brig(create, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  for (int fd : {out[0], err[0]}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  if (!WIFEXITED(cst) || WEXITSTATUS(cst) != 0) {
    std::string e = error_text(drain(err[0]));
    fatal(e.empty() ? "brig create failed in the guest" : "in the guest: " + e);
  }
  int tty = -1;
  if (terminal) {
    tty = take_master(console.get());
    if (tty < 0) fatal("the guest's brig create sent no pty master");
    console.reset();
  }
  auto pidtext = sys::read_file("/run/ctr.pid");
  pid_t cpid = pidtext ? static_cast<pid_t>(std::atoi(pidtext->c_str())) : 0;
  if (cpid <= 0) fatal("brig create left no pid file");
  send(Frame::created, nlohmann::json{{"pid", cpid}, {"protocol", protocol()}}.dump());

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  // From here on the port never blocks us: frames queue in outq.
  ::fcntl(ctl, F_SETFL, ::fcntl(ctl, F_GETFL) | O_NONBLOCK);
  // The container's stdin: the pipe brig create gave it, or the pty master.
  Sink input = tty >= 0 ? sink_for(tty, false, 0) : sink_for(in[1], true, 0);
  if (tty >= 0) ::close(in[1]);
  Credit credit;  // of the container's stdout + stderr (or pty)
  bool out_open = true, err_open = true, exited = false;
  int status = 0;
  int64_t quiet_since = 0;  // once the process exited: when its output last moved
  int64_t exited_at = 0;
  bool killed = false;  // the host passed a signal on to it
  std::vector<Exec> execs;
  std::map<pid_t, int> orphans;  // reaped pids no one claimed yet: their status
  auto exec_of = [&](uint32_t num) -> Exec* {
    for (auto& e : execs)
      if (e.n == num) return &e;
    return nullptr;
  };
  // Moves what a pipe has into frames, as much as the stream's credit
  // allows; false at EOF.
  auto relay = [&](int fd, Frame type, std::optional<uint32_t> num, Credit& c, int64_t& moved) {
    if (!c.open()) return true;  // read once the host has taken some
    ssize_t r = ::read(fd, buf, std::min(sizeof buf, c.room()));
    if (r < 0) return errno == EAGAIN || errno == EINTR;
    if (r == 0) return false;
    c.unacked += static_cast<size_t>(r);
    moved = sys::monotonic_ms();
    std::string_view d(buf, static_cast<size_t>(r));
    send(type, num ? tag(*num, d) : std::string(d));
    return true;
  };
  // Once a process exited, what it left in its pipes goes out before its
  // status, for as long as the host takes it (see `killed` below). A pipe
  // some other process still holds open (a child it left running) is given
  // up after 3 s without output, or 10 s after the exit while the host takes
  // all it gets (a chatty child never goes quiet).
  auto settled = [](bool drained, const Credit& c, int64_t quiet, int64_t exited_at) {
    return drained || (c.open() && (sys::monotonic_ms() - quiet > 3000 || sys::monotonic_ms() - exited_at > 10000));
  };
  for (;;) {
    auto want = [](int fd, const Credit& c) { return c.open() ? fd : -1; };
    std::vector<pollfd> p = {{ctl, static_cast<short>(POLLIN | (outq.empty() ? 0 : POLLOUT)), 0},
                             {sfd, POLLIN, 0},
                             {out_open ? want(out[0], credit) : -1, POLLIN, 0},
                             {err_open ? want(err[0], credit) : -1, POLLIN, 0},
                             {want(tty, credit), POLLIN, 0}};
    for (auto& e : execs) {
      p.push_back({want(e.out, e.credit), POLLIN, 0});
      p.push_back({want(e.err, e.credit), POLLIN, 0});
      p.push_back({e.lsn, POLLIN, 0});
      p.push_back({want(e.pty, e.credit), POLLIN, 0});
    }
    // Input waiting for a process to take it.
    std::vector<Sink*> blocked;
    for (Sink* k : {&input})
      if (k->fd >= 0 && !k->pending.empty()) blocked.push_back(k);
    for (auto& e : execs)
      if (e.in.fd >= 0 && !e.in.pending.empty()) blocked.push_back(&e.in);
    size_t first_sink = p.size();
    for (Sink* k : blocked) p.push_back({k->fd, POLLOUT, 0});
    bool waiting = exited || std::any_of(execs.begin(), execs.end(), [](const Exec& e) { return e.exited; });
    int n = ::poll(p.data(), p.size(), waiting ? 100 : -1);
    if (n < 0 && errno != EINTR) fatal("poll");
    if (p[0].revents & POLLOUT) flush_out();
    for (size_t i = 0; i < blocked.size(); i++)
      if (p[first_sink + i].revents) blocked[i]->flush();
    if (p[2].revents) out_open = relay(out[0], Frame::out, std::nullopt, credit, quiet_since);
    if (p[3].revents) err_open = relay(err[0], Frame::err, std::nullopt, credit, quiet_since);
    // A pty master reads EIO once the last slave is closed: the end.
    if (p[4].revents && !relay(tty, Frame::out, std::nullopt, credit, quiet_since)) {
      ::close(tty);
      tty = -1;
      input.lose();
    }
    auto done = [](int& fd) {
      ::close(fd);
      fd = -1;
    };
    // An exec's terminal arrived: its input goes there now, at its size.
    auto got_pty = [&](Exec& e) {
      done(e.lsn);
      if (!e.size.empty()) set_window_size(e.pty, e.size);
      std::string early = std::move(e.in.pending);
      e.in.pending.clear();
      e.in.end();  // the stdin pipe of brig exec: not the process's
      e.in = sink_for(e.pty, false, e.n);
      e.in.put(early);
    };
    for (size_t i = 0; i < execs.size(); i++) {
      Exec& e = execs[i];
      pollfd* q = &p[5 + 4 * i];
      if (q[0].revents && !relay(e.out, Frame::exec_out, e.n, e.credit, e.quiet_since)) done(e.out);
      if (q[1].revents && !relay(e.err, Frame::exec_err, e.n, e.credit, e.quiet_since)) done(e.err);
      if (q[2].revents && (e.pty = take_master(e.lsn)) >= 0) got_pty(e);
      if (q[3].revents && !relay(e.pty, Frame::exec_out, e.n, e.credit, e.quiet_since)) {
        done(e.pty);
        e.in.lose();
      }
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) > 0) {}
      int st;
      pid_t w;
      auto ended = [&](Exec& e, int st) {
        e.exited = true;
        e.status = st;
        e.quiet_since = e.exited_at = sys::monotonic_ms();
      };
      while ((w = ::waitpid(-1, &st, WNOHANG)) > 0) {
        if (w == cpid) {
          exited = true;
          status = st;
          quiet_since = exited_at = sys::monotonic_ms();
        }
        bool known = w == cpid;
        for (auto& e : execs) {
          if (e.exited) continue;
          if (e.detach && e.proc == w) {
            known = true;
            ended(e, st);
          } else if (e.pid == w && !e.proc) {
            known = true;
            // Detached, its brig's success means the process runs: from
            // now on its pid is the one we follow.
            pid_t p = 0;
            if (e.detach && WIFEXITED(st) && WEXITSTATUS(st) == 0)
              if (auto t = sys::read_file(pid_file(e.n))) p = static_cast<pid_t>(std::atoi(t->c_str()));
            if (p <= 0) {
              ended(e, st);
              continue;
            }
            e.proc = p;
            send(Frame::exec_started, tag(e.n, ""));
            if (auto r = orphans.find(p); r != orphans.end()) {  // it already ended
              ended(e, r->second);
              orphans.erase(r);
            } else if (e.pending_sig) {
              ::kill(p, e.pending_sig);
            }
          }
        }
        // Reaped before its brig's exit told us whose it is: kept only
        // while a detached exec still waits for its brig (a container's
        // orphans are not kept, so a recycled pid never finds a stale one).
        bool starting = std::any_of(execs.begin(), execs.end(),
                                    [](const Exec& e) { return e.detach && !e.proc && !e.exited; });
        if (!known && starting && orphans.size() < 64) orphans[w] = st;
        if (!starting) orphans.clear();
      }
    }
    bool hurry = false;  // a kill for a process that already exited
    if (p[0].revents & ~POLLOUT) {
      ssize_t r = ::read(ctl, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) r = -2;
      if (r == 0 || r == -1) power_off();
      if (r > 0) dec.feed(buf, static_cast<size_t>(r));
      for (;;) {
        auto m = dec.next();
        if (!m) fatal(m.error().msg);
        if (!*m) break;
        Msg& msg = **m;
        auto [num, rest] = untag(msg.data);
        if (msg.type == Frame::start) {
          int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
          int ep[2];
          if (::pipe2(ep, O_CLOEXEC) < 0) fatal("pipe");
          int st = run_brig({"start", id}, devnull, devnull, ep[1]);
          ::close(ep[1]);
          ::fcntl(ep[0], F_SETFL, O_NONBLOCK);
          if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            send(Frame::started, "");
          } else {
            // The host's `brig start` fails with this line; the container
            // goes, as it would after a failed `brig run`.
            std::string e = error_text(drain(ep[0]));
            send(Frame::started, "in the guest: " + (e.empty() ? std::string("brig start failed") : e));
            if (!exited) ::kill(cpid, SIGKILL);
          }
          ::close(ep[0]);
          ::close(devnull);
        } else if (msg.type == Frame::signal) {
          // Killed after it ended: what it left unread is not waited for.
          int sig = std::atoi(msg.data.c_str());
          if (!exited) ::kill(cpid, sig);
          else if (stops_process(sig)) hurry = true;
          if (stops_process(sig)) killed = true;
        } else if (msg.type == Frame::resize) {
          Exec* e = num ? exec_of(num) : nullptr;
          if (e) e->size = rest;
          int t = num ? (e ? e->pty : -1) : tty;
          if (t >= 0) set_window_size(t, rest);
        } else if (msg.type == Frame::in) {
          // EOF closes a pipe; a terminal has no EOF to pass on.
          if (!msg.data.empty()) input.put(msg.data);
          else if (input.own) input.end();
        } else if (msg.type == Frame::ack) {
          if (!num) credit.acked(rest);
          else if (Exec* e = exec_of(num)) e->credit.acked(rest);
        } else if (msg.type == Frame::exec) {
          if (auto e = start_exec(num, rest, id)) execs.push_back(*e);
          else send(Frame::exec_exit, tag(num, std::to_string(W_EXITCODE(255, 0))));
        } else if (msg.type == Frame::exec_in) {
          Exec* e = exec_of(num);
          if (e && !rest.empty()) e->in.put(rest);
          else if (e && e->in.own) e->in.end();
          else if (!e && !rest.empty())  // already gone: taken, and dropped
            send(Frame::ack, tag(num, std::to_string(rest.size())));
        } else if (msg.type == Frame::exec_signal) {
          Exec* e = exec_of(num);
          int sig = std::atoi(std::string(rest).c_str());
          if (e && !e->exited && e->detach) {
            if (e->proc) {
              ::kill(e->proc, sig);
            } else {
              e->pending_sig = sig;  // still starting: for the process once it runs
              if (sig == SIGKILL) ::kill(e->pid, sig);  // and a brig that hangs goes now
            }
          } else if (e && !e->exited) {
            ::kill(e->pid, sig);
          }
        }
      }
    }
    // An exec that ended: its output first, then its status.
    for (auto& e : execs) {
      // Its master may still wait in the console socket's queue.
      if (e.exited && e.lsn >= 0 && (e.pty = take_master(e.lsn)) >= 0) got_pty(e);
      bool drained = e.out < 0 && e.err < 0 && e.pty < 0;
      if (e.exited && settled(drained, e.credit, e.quiet_since, e.exited_at)) {
        send(Frame::exec_exit, tag(e.n, std::to_string(e.status)));
        if (e.in.own && e.in.fd >= 0) ::close(e.in.fd);
        for (int fd : {e.out, e.err, e.lsn, e.pty})
          if (fd >= 0) ::close(fd);
        forget_exec_files(e.n);
        e.n = 0;
      }
    }
    std::erase_if(execs, [](const Exec& e) { return e.n == 0; });
    // Stopped by a kill, a process whose output nobody reads would wait
    // for ever: 1 s for the host to take it, then what is left goes.
    if (exited && (hurry || (killed && sys::monotonic_ms() - exited_at > 1000) ||
                   settled(!out_open && !err_open && tty < 0, credit, quiet_since, exited_at))) {
      send(Frame::exit, std::to_string(status));
      power_off();
    }
  }
}

}  // namespace brig::runtime::vm
