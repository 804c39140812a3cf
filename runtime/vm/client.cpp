// The host side of `brig start` and `brig exec` on a microVM container: they
// talk to the container's shim over its socket in the state dir, with the
// control channel's frames; the shim relays to and from the guest agent.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

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

Result<Fd> connect_shim(const std::string& state_dir) {
  TRY(Fd c, sys::connect_unix(state_dir + "/" + kShimSocket));
  TRY_CTX_VOID(sys::write_all(c, encode(Frame::started, "")), "vm: ask the shim");
  return c;
}

Result<void> await_start(BorrowedFd conn) {
  Decoder dec;
  for (;;) {
    TRY(auto m, next_frame(conn, dec));
    if (!m) return fail_msg("vm: the microVM stopped before the container process started");
    if (m->type != Frame::started) continue;
    if (m->data.empty()) return {};
    return fail_msg("vm: {}", m->data);
  }
}

Result<int> exec_in_guest(const std::string& state_dir, const nlohmann::json& process, bool detach) {
  TRY(Fd c, sys::connect_unix(state_dir + "/" + kShimSocket));
  nlohmann::json rq = {{"process", process}, {"detach", detach}};
  TRY_CTX_VOID(sys::write_all(c, encode(Frame::exec, tag(0, rq.dump()))), "vm: ask the shim");

  // In the foreground the caller's signals go to the process inside.
  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP}) sigaddset(&fwd, s);
  Fd sig;
  if (!detach) {
    ::sigprocmask(SIG_BLOCK, &fwd, nullptr);
    int s = ::signalfd(-1, &fwd, SFD_CLOEXEC);
    if (s < 0) return fail_errno("signalfd");
    sig = Fd(s);
  }
  bool in_open = !detach;
  if (detach) TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, ""))));
  Decoder dec;
  char buf[65536];
  for (;;) {
    struct pollfd p[3] = {{c.get(), POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}, {sig ? sig.get() : -1, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    if (p[1].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      std::string_view d = n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view();
      if (n <= 0) in_open = false;
      TRY_VOID(sys::write_all(c, encode(Frame::exec_in, tag(0, d))));
    }
    if (p[2].revents) {
      struct signalfd_siginfo si;
      if (::read(sig.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
        TRY_VOID(sys::write_all(c, encode(Frame::exec_signal, tag(0, std::to_string(si.ssi_signo)))));
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
      if (m->type == Frame::exec_out) (void)sys::write_all(STDOUT_FILENO, rest);
      else if (m->type == Frame::exec_err) (void)sys::write_all(STDERR_FILENO, rest);
      else if (m->type == Frame::exec_exit) return exit_code(std::atoi(std::string(rest).c_str()));
    }
  }
}

}  // namespace brig::runtime::vm
