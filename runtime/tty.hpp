// Terminals. The pty is made inside the container (its own devpts), the
// slave becomes init's stdio, controlling terminal and /dev/console, and the
// master goes out over a unix socket: the caller's --console-socket, or a
// socketpair whose other end `run` holds to proxy the caller's terminal.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <optional>
#include <string>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// Connects to a --console-socket path.
Result<Fd> connect_console_socket(const std::string& path);

// A new pty pair from /dev/ptmx (unlocked), with the slave's name.
struct Pty {
  Fd master, slave;
  std::string name;  // "/dev/pts/N"
};
Result<Pty> open_pty();
// Raw mode on a terminal until the guard goes (a no-op for a non-tty).
class RawMode {
 public:
  explicit RawMode(int fd);
  ~RawMode();
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int fd_ = -1;
  struct ::termios saved_ {};
};
// Copies the window size of one terminal to another.
void copy_size(int from, int to);

// In init, after the pivot: makes the pty, sets it up as stdio and
// /dev/console, sends the master over `sock`.
Result<void> setup_console(BorrowedFd sock, const spec::Process& proc, bool mount_console);

// Sends / receives one fd with SCM_RIGHTS.
Result<void> send_fd(BorrowedFd sock, BorrowedFd fd, const std::string& name);
Result<Fd> receive_fd(BorrowedFd sock);

// `run` in the foreground: waits for `child` (init) to exit while
// forwarding the signals in `fwd` (blocked by the caller) to it, reaping
// other children (we are the subreaper), and, with a pty master, copying
// between the caller's stdio and the pty (the caller's tty raw meanwhile,
// resizes forwarded). Returns the wait status of `child`.
Result<int> wait_foreground(pid_t child, BorrowedFd pidfd, const sigset_t& fwd, const Fd* master);

}  // namespace brig::runtime
