// The host side of `brig start` and `brig exec` on a microVM container: they
// talk to the container's shim over its socket in the state dir, with the
// control channel's frames; the shim relays to and from the guest agent.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

#include "runtime/tty.hpp"

#include "runtime/core/sys.hpp"
#include "runtime/vm/vm.hpp"

namespace brig::runtime::vm {
namespace {

// The next whole frame from the shim; nullopt when it hung up.
Result<std::optional<Msg>> next_frame(BorrowedFd fd, Decoder& dec) {
  char buf[65536];
  for (;;) {
    TRY(auto m, dec.next());
    if (m) return m;
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("vm: read from the shim");
    if (n == 0) return std::optional<Msg>{};
    dec.feed(buf, static_cast<size_t>(n));
  }
}

int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

}  // namespace

Result<Fd> listen_unix(const std::string& path, bool nonblock) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail_err(ENAMETOOLONG, fmt::format("listen on {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (s < 0) return fail_errno("socket");
  Fd fd(s);
  mode_t old = ::umask(077);
  int r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (r < 0 || ::listen(fd.get(), 16) < 0) return fail_errno("listen on {}", path);
  return fd;
}

std::string window_size(int tty) {
  struct winsize ws {};
  if (::ioctl(tty, TIOCGWINSZ, &ws) < 0) return "";
  return fmt::format("{} {}", ws.ws_row, ws.ws_col);
}

void set_window_size(int tty, std::string_view size) {
  unsigned rows = 0, cols = 0;
  if (std::sscanf(std::string(size).c_str(), "%u %u", &rows, &cols) != 2) return;
  struct winsize ws {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  ::ioctl(tty, TIOCSWINSZ, &ws);
}

Result<Fd> connect_shim(const std::string& state_dir) {
  TRY(Fd c, sys::connect_unix(state_dir + "/" + kShimSocket));
  TRY_CTX_VOID(sys::write_all(c, encode(Frame::started, "")), "vm: ask the shim");
  return c;
}

Result<void> await_start(BorrowedFd conn) {
  // start holds the container's lock meanwhile: a guest that never answers
  // must not block kill and delete for ever.
  int start_timeout = 120;
#ifdef BRIG_FAULT_INJECTION
  // Test builds: a shorter wait, for the test of a guest that never answers.
  if (const char* t = std::getenv("BRIG_VM_START_TIMEOUT"); t && std::atoi(t) > 0) start_timeout = std::atoi(t);
#endif
  struct timeval tv {start_timeout, 0};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  Decoder dec;
  for (;;) {
    auto r = next_frame(conn, dec);
    if (!r && (r.error().err == EAGAIN || r.error().err == EWOULDBLOCK))
      return fail_msg("vm: the guest did not answer start within {} s", start_timeout);
    TRY(auto m, std::move(r));
    if (!m) return fail_msg("vm: the microVM stopped before the container process started");
    if (m->type != Frame::started) continue;
    if (m->data.empty()) return {};
    return fail_msg("vm: {}", m->data);
  }
}

namespace {

// One request to the guest over the shim: its output to `tout` and stderr,
// with `interactive` our stdin (`tin`) and signals to it, and the size of
// `size_src` followed (looked at every 200 ms with `poll_size`). Returns the
// exit code to leave with. `started`: called when a detached exec's process
// runs.
Result<int> converse(const std::string& state_dir, const nlohmann::json& rq, bool interactive, int tin, int tout,
                     int size_src, std::string size, bool poll_size, std::string_view input = {},
                     std::string* err = nullptr, const std::function<void()>& started = {}) {
  TRY(Fd c, sys::connect_unix(state_dir + "/" + kShimSocket));
  // Arguments, env and cwd are any bytes; JSON holds UTF-8, and bytes that are
  // not become U+FFFD, as runc's own JSON of a process writes them.
  std::string text = rq.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  TRY_CTX_VOID(sys::write_all(c, encode(Frame::exec, tag(0, text))), "vm: ask the shim");
  auto check_size = [&]() -> Result<void> {
    if (size_src < 0) return {};
    std::string now = window_size(size_src);
    if (now.empty() || now == size) return {};
    size = now;
    return sys::write_all(c, encode(Frame::resize, tag(0, size)));
  };

  // In the foreground the caller's signals go to the process inside.
  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP, SIGWINCH}) sigaddset(&fwd, s);
  Fd sig;
  if (interactive) {
    ::sigprocmask(SIG_BLOCK, &fwd, nullptr);
    int s = ::signalfd(-1, &fwd, SFD_CLOEXEC);
    if (s < 0) return fail_errno("signalfd");
    sig = Fd(s);
  }
  bool in_open = interactive && tin >= 0;
  // Our stdin goes at most kWindow ahead of what the process has taken:
  // the rest waits in our own stdin, not in the guest's memory.
  size_t in_flight = 0;
  if (!interactive) {
    // Not interactive: `input` is all its stdin (a few KiB at most: within the window).
    for (size_t at = 0; at < input.size(); at += 65536)
      TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, input.substr(at, 65536)))));
    TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, ""))));
  } else if (tin < 0) {
    TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, ""))));  // no stdin: EOF
  }
  Decoder dec;
  char buf[65536];
  for (;;) {
    struct pollfd p[3] = {{c.get(), POLLIN, 0},
                          {in_open && in_flight < kWindow ? tin : -1, POLLIN, 0},
                          {sig ? sig.get() : -1, POLLIN, 0}};
    // A console socket's holder resizes the pty without telling us: look.
    if (::poll(p, 3, poll_size ? 200 : -1) < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    if (poll_size) TRY_VOID(check_size());
    if (p[1].revents) {
      ssize_t n = ::read(tin, buf, std::min(sizeof buf, kWindow - in_flight));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      std::string_view d = n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view();
      if (n <= 0) in_open = false;
      in_flight += d.size();
      TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, d))));
    }
    if (p[2].revents) {
      struct signalfd_siginfo si;
      if (::read(sig.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGWINCH) TRY_VOID(check_size());
        else TRY_VOID(sys::write_all(c, encode(Frame::exec_signal, tag(0, std::to_string(si.ssi_signo)))));
      }
    }
    if (!p[0].revents) continue;
    ssize_t n = ::read(c.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail_msg("vm: the microVM stopped before the exec'd process ended");
    dec.feed(buf, static_cast<size_t>(n));
    for (;;) {
      TRY(auto m, dec.next());
      if (!m) break;
      auto rest = untag(m->data).second;
      if (m->type == Frame::exec_out) (void)sys::write_all(tout, rest);
      else if (m->type == Frame::exec_err && err) err->append(rest);
      else if (m->type == Frame::exec_err) (void)sys::write_all(STDERR_FILENO, rest);
      else if (m->type == Frame::exec_exit) return exit_code(std::atoi(std::string(rest).c_str()));
      else if (m->type == Frame::exec_started && started) started();
      else if (m->type == Frame::ack)
        take_ack(in_flight, rest);
    }
  }
}

}  // namespace

Result<int> exec_in_guest(const std::string& state_dir, const nlohmann::json& process, bool detach,
                          const std::string& console_socket, const std::string& pid_file) {
  bool terminal = process.value("terminal", false);
  // Where the process's terminal or stdio meets ours: a host pty whose
  // master the console socket gets, or our stdin/stdout.
  int tin = STDIN_FILENO, tout = STDOUT_FILENO, size_src = -1;
  Fd slave;
  std::optional<RawMode> raw;
  if (terminal && !console_socket.empty()) {
    TRY(Fd sock, connect_console_socket(console_socket));
    TRY(Pty pty, open_pty());
    struct termios t;
    if (::tcgetattr(pty.slave.get(), &t) == 0) {
      ::cfmakeraw(&t);  // the guest's pty does the line discipline
      ::tcsetattr(pty.slave.get(), TCSANOW, &t);
    }
    if (process.contains("consoleSize"))
      set_window_size(pty.slave.get(), fmt::format("{} {}", process["consoleSize"].value("height", 0),
                                                  process["consoleSize"].value("width", 0)));
    TRY_VOID(send_fd(sock, pty.master, pty.name));
    slave = std::move(pty.slave);
    tin = tout = size_src = slave.get();
  } else if (terminal && ::isatty(STDIN_FILENO)) {
    raw.emplace(STDIN_FILENO);
    size_src = STDIN_FILENO;
  }

  // The guest's pty starts at our terminal's size (no resize race at start).
  std::string size = size_src >= 0 ? window_size(size_src) : "";
  nlohmann::json proc = process;
  unsigned rows = 0, cols = 0;
  if (std::sscanf(size.c_str(), "%u %u", &rows, &cols) == 2 && rows && cols)
    proc["consoleSize"] = {{"height", rows}, {"width", cols}};
  nlohmann::json rq = {{"process", proc}, {"detach", detach}};
  auto write_pid = [&](pid_t pid) -> Result<void> {
    if (pid_file.empty()) return {};
    return sys::write_file_atomic(sys::abs_path(pid_file), std::to_string(pid), 0644);
  };
  if (!detach) {
    // In the foreground this process stands for the one in the guest.
    TRY_VOID(write_pid(::getpid()));
    return converse(state_dir, rq, true, tin, tout, size_src, size, static_cast<bool>(slave));
  }
  // Detached: a relay process stands for it on this host, as runc's
  // detached process itself would: the pid in --pid-file, it holds our
  // stdio (or the terminal), passes its signals on, and exits with its
  // status (a subreaper such as containerd's shim reaps it and learns that);
  // killed, it takes the process along. We return once the process runs.
  int np[2];
  if (::pipe2(np, O_CLOEXEC) < 0) return fail_errno("pipe");
  Fd note_rd(np[0]), note_wr(np[1]);
  pid_t relay = ::fork();
  if (relay < 0) return fail_errno("fork");
  if (relay == 0) {
    note_rd.reset();
    ::setsid();
    ::signal(SIGPIPE, SIG_IGN);  // a caller that stopped reading loses the output, not the process
    int keep[] = {note_wr.get(), slave.get()};
    sys::close_fds_except(3, keep);
    bool told = false;
    // A terminal the caller types into is not the process's to read from
    // the background (runc's detached process would only compete for it if
    // it read): without -t it gets EOF instead.
    int rin = !terminal && ::isatty(tin) ? -1 : tin;
    auto r = converse(state_dir, rq, true, rin, tout, size_src, size, static_cast<bool>(slave), {}, nullptr, [&] {
      (void)sys::write_all(note_wr, "s");
      note_wr.reset();
      told = true;
    });
    if (!told) (void)sys::write_all(note_wr, r ? fmt::format("x{}", *r) : "e" + r.error().msg);
    // The VM went (delete -f, a kill of the container): so did the process,
    // as one SIGKILLed with its container.
    ::_exit(r ? *r : told ? 128 + SIGKILL : 255);
  }
  note_wr.reset();
  slave.reset();
  TRY(std::string note, sys::read_all(note_rd));
  if (note == "s") {
    if (auto w = write_pid(relay); !w) {
      ::kill(relay, SIGKILL);  // untracked, it must not run on (its process goes with it)
      ::waitpid(relay, nullptr, 0);
      return fail(std::move(w.error()));
    }
    return 0;
  }
  // It never ran: the relay's gone, or about to be.
  ::waitpid(relay, nullptr, 0);
  if (note.starts_with("x")) return std::atoi(note.c_str() + 1);
  if (note.starts_with("e")) return fail_msg("{}", note.substr(1));
  return fail_msg("vm: exec: the relay ended before the process started");
}

Result<int> brig_in_guest(const std::string& state_dir, const std::vector<std::string>& args,
                          std::string_view input, std::string* err) {
  return converse(state_dir, {{"brig", args}, {"detach", false}}, false, -1, STDOUT_FILENO, -1, "", false, input,
                  err);
}

}  // namespace brig::runtime::vm
