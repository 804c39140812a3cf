#include "runtime/tty.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "rootfs/paths.hpp"
#include "runtime/core/sys.hpp"

namespace brig::runtime {

Result<Fd> connect_console_socket(const std::string& path) {
  auto fd = sys::connect_unix(path);
  if (!fd) return fail(std::move(fd.error()).context("console socket"));
  return fd;
}

Result<void> send_fd(BorrowedFd sock, BorrowedFd fd, const std::string& name) {
  auto r = sys::send_with_fd(sock, name, fd);
  if (!r) return fail(std::move(r.error()).context("send console fd"));
  return {};
}

Result<Fd> receive_fd(BorrowedFd sock) {
  char name[4096];
  auto r = sys::recv_with_fd(sock, name, sizeof name);
  if (!r) return fail(std::move(r.error()).context("receive console fd"));
  if (!r->fd) return fail_msg("receive console fd: no fd in message");
  return std::move(r->fd);
}

Result<Pty> open_pty() {
  int m = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return fail_errno("open /dev/ptmx");
  Pty p;
  p.master = Fd(m);
  int unlock = 0;
  if (::ioctl(p.master.get(), TIOCSPTLCK, &unlock) < 0) return fail_errno("unlock pty");
  int s = ::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) return fail_errno("open pty slave");
  p.slave = Fd(s);
  unsigned n = 0;
  if (::ioctl(p.master.get(), TIOCGPTN, &n) < 0) return fail_errno("pty number");
  p.name = fmt::format("/dev/pts/{}", n);
  return p;
}

RawMode::RawMode(int fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) < 0) return;
  struct termios t = saved_;
  ::cfmakeraw(&t);
  if (::tcsetattr(fd, TCSANOW, &t) == 0) fd_ = fd;
}

RawMode::~RawMode() {
  if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &saved_);
}

void copy_size(int from, int to) {
  struct winsize ws;
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

// The file the pty is bound over: /dev/console of the container, never what
// a link there points at. An image's /dev/console symlink (to a procfs file,
// say: CVE-2025-52565) is replaced by a plain file, which the container
// could have made itself; the mount goes on the fd opened here.
static Result<Fd> console_target() {
  TRY(Fd root, sys::open("/", O_PATH | O_DIRECTORY));
  TRY(Fd dev, rootfs::mkdir_all_in_root(root, "/dev"));
  struct stat st;
  if (::fstatat(dev.get(), "console", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
      ::unlinkat(dev.get(), "console", 0) < 0)
    return fail_errno("replace the /dev/console symlink");
  int f = ::openat(dev.get(), "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f < 0 && errno != EEXIST) return fail_errno("create /dev/console");
  if (f >= 0) ::close(f);
  int t = ::openat(dev.get(), "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (t < 0) return fail_errno("open /dev/console");
  Fd target(t);
  // swapped for a link since (a race from inside): never mount there
  if (::fstat(target.get(), &st) < 0 || S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))
    return fail_msg("/dev/console: not a file to bind the console over");
  return target;
}

Result<void> setup_console(BorrowedFd sock, const spec::Process& proc, bool mount_console) {
  TRY(Pty pty, open_pty());
  Fd& master = pty.master;
  Fd& slave = pty.slave;
  if (proc.consoleSize) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(proc.consoleSize->height);
    ws.ws_col = static_cast<unsigned short>(proc.consoleSize->width);
    if (::ioctl(slave.get(), TIOCSWINSZ, &ws) < 0) return fail_errno("set console size");
  }
  // The slave lives in the container's own devpts: owning it is the user's.
  if (::fchown(slave.get(), proc.user.uid, proc.user.gid) < 0) return fail_errno("chown pty slave");
  if (mount_console) {
    TRY(Fd target, console_target());
    int t = ::open_tree(slave.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (t < 0) return fail_errno("bind pty to /dev/console");
    Fd tree(t);
    if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
      return fail_errno("bind pty to /dev/console");
  }
  for (int i = 0; i < 3; i++)
    if (::dup2(slave.get(), i) < 0) return fail_errno("dup pty slave to fd {}", i);
  if (::ioctl(0, TIOCSCTTY, 0) < 0) return fail_errno("set controlling terminal");
  TRY_VOID(send_fd(sock, master, pty.name));
  return {};
}

namespace {
// Moves what is readable on `from` to `to`; false on EOF/EIO.
bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN);
  return static_cast<bool>(sys::write_all(to, std::string_view(buf, static_cast<size_t>(n))));
}
}  // namespace

Result<int> wait_foreground(pid_t child, BorrowedFd pidfd, const sigset_t& fwd, const Fd* master) {
  int m = master ? master->get() : -1;
  std::optional<RawMode> raw;
  bool tty_in = m >= 0 && ::isatty(STDIN_FILENO);
  if (tty_in) {
    raw.emplace(STDIN_FILENO);
    copy_size(STDIN_FILENO, m);
  }
  int sfd = ::signalfd(-1, &fwd, SFD_CLOEXEC);
  if (sfd < 0) return fail_errno("signalfd");
  Fd sig(sfd);

  bool in_open = m >= 0, out_open = m >= 0;
  std::optional<int> status;
  for (;;) {
    struct pollfd p[3] = {{sig.get(), POLLIN, 0},
                          {in_open ? STDIN_FILENO : -1, POLLIN, 0},
                          {out_open ? m : -1, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    if (p[1].revents) in_open = pump(STDIN_FILENO, m);
    if (p[2].revents) out_open = pump(m, STDOUT_FILENO);
    if (p[0].revents) {
      struct signalfd_siginfo si;
      if (::read(sig.get(), &si, sizeof si) != sizeof si) continue;
      int signo = static_cast<int>(si.ssi_signo);
      if (signo == SIGWINCH && tty_in) {
        copy_size(STDIN_FILENO, m);
      } else if (signo != SIGCHLD) {
        (void)sys::pidfd_send_signal(pidfd, signo);
      } else {
        for (;;) {
          int st;
          pid_t r = ::waitpid(-1, &st, WNOHANG);
          if (r <= 0) break;
          if (r == child) status = st;
        }
      }
    }
    if (status) {
      // The process ended: drain what it wrote to the terminal, then report.
      while (out_open) {
        struct pollfd q {m, POLLIN, 0};
        if (::poll(&q, 1, 50) <= 0) break;
        out_open = pump(m, STDOUT_FILENO);
      }
      return *status;
    }
  }
}

}  // namespace brig::runtime
