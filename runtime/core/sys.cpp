#include "runtime/core/sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <climits>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <vector>

namespace brig::sys {

Result<Fd> open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return fail_errno("open {}", path);
  return Fd(fd);
}

Result<Fd> openat(BorrowedFd dir, const std::string& path, int flags, mode_t mode) {
  int fd = ::openat(dir.get(), path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return fail_errno("open {}", path);
  return Fd(fd);
}

Result<Fd> openat2(BorrowedFd dir, const std::string& path, uint64_t flags, uint64_t resolve,
                   mode_t mode) {
  struct open_how how {};
  how.flags = flags | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EAGAIN);
  if (fd < 0) return fail_errno("open {}", path);
  return Fd(static_cast<int>(fd));
}

Result<std::string> read_all(BorrowedFd fd, size_t limit) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read");
    }
    if (n == 0) break;
    if (static_cast<size_t>(n) > limit - out.size())
      return fail_err(EFBIG, "read");  // "read: file too large"
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_file(const std::string& path) {
  TRY(Fd fd, open(path, O_RDONLY));
  auto r = read_all(fd);
  if (!r) return fail(std::move(r.error()).context(path));
  return r;
}

Result<std::string> read_attribute(const std::string& path) {
  TRY(Fd fd, open(path, O_RDONLY));
  char buf[8192];
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("read {}", path);
  std::string out(buf, static_cast<size_t>(n));
  if (static_cast<size_t>(n) < sizeof buf) return out;
  auto rest = read_all(fd);  // longer than one buffer: read on to the end
  if (!rest) return fail(std::move(rest.error()).context(path));
  out.append(*rest);
  return out;
}

Result<void> write_all(BorrowedFd fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> write_all_nosigpipe(BorrowedFd fd, std::string_view data) {
  sigset_t sigpipe, old;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  ::sigprocmask(SIG_BLOCK, &sigpipe, &old);
  auto r = write_all(fd, data);
  if (!r && r.error().err == EPIPE && !sigismember(&old, SIGPIPE)) {
    struct timespec zero {};
    while (::sigtimedwait(&sigpipe, nullptr, &zero) == SIGPIPE) {
    }
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return r;
}

Result<void> write_file(const std::string& path, std::string_view data) {
  TRY(Fd fd, open(path, O_WRONLY));
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return fail_errno("write {}", path);
  return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  {
    TRY(Fd fd, open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    auto w = write_all(fd, data);
    if (!w) {
      ::unlink(tmp.c_str());
      return fail(std::move(w.error()).context(tmp));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fail_err(e, fmt::format("rename {} to {}", tmp, path));
  }
  return {};
}

Result<void> mkdir_p(const std::string& path, mode_t mode) {
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    i = j + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) return fail_errno("mkdir {}", cur);
  }
  return {};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void close_fds_except(int from, std::span<const int> keep) {
  std::vector<int> k(keep.begin(), keep.end());
  std::sort(k.begin(), k.end());
  unsigned lo = static_cast<unsigned>(from);
  for (int f : k) {
    if (f < from) continue;
    if (static_cast<unsigned>(f) > lo) ::syscall(SYS_close_range, lo, static_cast<unsigned>(f - 1), 0);
    lo = static_cast<unsigned>(f) + 1;
  }
  ::syscall(SYS_close_range, lo, ~0U, 0);
}

void reserve_fds(int from, int to) {
  for (int fd = from; fd < to; fd++) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int n = ::open("/dev/null", O_RDWR);
    if (n < 0) return;
    if (n != fd) {
      ::dup2(n, fd);
      ::close(n);
    }
  }
}

Result<Fd> dup_above(BorrowedFd fd, int min_fd) {
  int n = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
  if (n < 0) return fail_errno("dup fd {}", fd.get());
  return Fd(n);
}

Result<Fd> connect_unix(const std::string& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail_errno("socket");
  Fd fd(s);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail_err(ENAMETOOLONG, fmt::format("connect to {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return fail_errno("connect to {}", path);
  return fd;
}

Result<size_t> send_with_fd(BorrowedFd sock, std::string_view data, BorrowedFd fd) {
  struct iovec iov {const_cast<char*>(data.data()), data.size()};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int f = fd.get();
  std::memcpy(CMSG_DATA(c), &f, sizeof f);
  ssize_t n;
  do {
    n = ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sendmsg");
  return static_cast<size_t>(n);
}

Result<Received> recv_with_fd(BorrowedFd sock, char* buf, size_t len) {
  struct iovec iov {buf, len};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(sock.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("recvmsg");
  Received r;
  r.size = static_cast<size_t>(n);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int f;
      std::memcpy(&f, CMSG_DATA(c), sizeof f);
      r.fd.reset(f);
    }
  }
  return r;
}

Result<Fd> pidfd_open(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return fail_errno("pidfd_open {}", pid);
  return Fd(static_cast<int>(fd));
}

Result<void> pidfd_send_signal(BorrowedFd pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) < 0)
    return fail_errno("send signal {}", sig);
  return {};
}

namespace {
// The state letter and the start time (fields 3 and 22) of /proc/PID/stat.
struct StatFields {
  char state = 0;
  uint64_t start_time = 0;
};
std::optional<StatFields> parse_stat(std::string_view s) {
  auto p = s.rfind(')');  // field 2, the name, may hold spaces and parentheses
  if (p == std::string_view::npos || p + 2 >= s.size()) return std::nullopt;
  StatFields f;
  f.state = s[p + 2];
  size_t i = p + 2;
  for (int field = 3; field < 22; ++field) {
    i = s.find(' ', i);
    if (i == std::string_view::npos) return std::nullopt;
    ++i;
  }
  auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), f.start_time);
  if (ec != std::errc() || end == s.data() + i) return std::nullopt;
  return f;
}

std::optional<StatFields> stat_fields(pid_t pid) {
  auto s = read_attribute(fmt::format("/proc/{}/stat", pid));
  if (!s) return std::nullopt;
  return parse_stat(*s);
}

// This process's pid and start time, from the last read_own_stat.
struct OwnStart {
  pid_t pid = 0;
  uint64_t start_time = 0;
};
OwnStart own_start;
}  // namespace

bool Ran::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string Ran::exit_text() const {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  // Go's names (what runc prints): glibc's with a small first letter, but for
  // "CPU time limit exceeded" and "I/O possible"; "signal N" past 31.
  int sig = WTERMSIG(status);
  if (sig < 1 || sig > 31) return fmt::format("signal: signal {}", sig);
  std::string name = ::strsignal(sig);
  if (name.size() > 1 && name[1] >= 'a' && name[1] <= 'z' && name[0] >= 'A' && name[0] <= 'Z') name[0] += 'a' - 'A';
  return "signal: " + name;
}

namespace {
// What a program wrote to the memfd `fd`, at most `limit` bytes of it.
Result<std::string> read_written(BorrowedFd fd, size_t limit) {
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return fail_errno("fstat");
  std::string s(std::min(static_cast<size_t>(st.st_size), limit), '\0');
  size_t got = 0;
  while (got < s.size()) {
    ssize_t n = ::pread(fd.get(), s.data() + got, s.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  s.resize(got);
  return s;
}

// Waits for `child` to end, or kills it at the deadline. False: it was killed.
Result<bool> await_or_kill(pid_t child, int64_t timeout_ms) {
  auto pidfd = pidfd_open(child);
  if (!pidfd) {
    ::kill(child, SIGKILL);
    return fail(std::move(pidfd.error()));
  }
  int64_t now = monotonic_ms();
  int64_t deadline = timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
  for (;;) {
    struct pollfd p = {pidfd->get(), POLLIN, 0};
    int64_t left = std::clamp<int64_t>(deadline - monotonic_ms(), 0, INT_MAX);
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n == 0 && deadline - monotonic_ms() <= 0) {
      ::kill(child, SIGKILL);  // not reaped yet: the pid is still this child's
      return false;
    }
    if (n < 0 && errno != EINTR) {
      int e = errno;
      ::kill(child, SIGKILL);
      return fail_err(e, "poll");
    }
  }
}
}  // namespace

Result<Ran> run_program(const Program& p) {
  const auto& args = p.argv;
  if (args.empty()) return fail_msg("run_program: no program");
  const std::string& file = p.path.empty() ? args[0] : p.path;
  bool capture_err = p.stderr_to == Stderr::capture;
  // Sealable: once the program has ended, a child it left behind cannot grow them.
  constexpr unsigned kOut = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  Fd in(::memfd_create("brig-in", MFD_CLOEXEC)), out(::memfd_create("brig-out", kOut)), err;
  if (capture_err) err = Fd(::memfd_create("brig-err", kOut));
  if (!in || !out || (capture_err && !err)) return fail_errno("{}: memfd_create", file);
  TRY_VOID(write_all(in, p.input));
  ::lseek(in.get(), 0, SEEK_SET);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  if (p.env) {
    for (const auto& e : *p.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out.get(), 1);
  if (capture_err) posix_spawn_file_actions_adddup2(&fa, err.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_init(&at);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
  pid_t child = 0;
  char** env = p.env ? envp.data() : environ;
  int rc = p.path.empty() ? ::posix_spawnp(&child, file.c_str(), &fa, &at, argv.data(), env)
                          : ::posix_spawn(&child, file.c_str(), &fa, &at, argv.data(), env);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail_err(rc, fmt::format("exec {}", file));
  Ran r;
  Result<bool> ended = true;
  if (p.timeout_ms) ended = await_or_kill(child, *p.timeout_ms);
  while (::waitpid(child, &r.status, 0) < 0)
    if (errno != EINTR) return fail_errno("wait for {}", file);
  if (!ended) return fail(std::move(ended.error()).context(fmt::format("wait for {}", file)));
  r.timed_out = !*ended;
  // What it wrote is all we read; a background child still holding them
  // gets EPERM instead of filling memory nobody reads.
  for (const Fd* f : {&out, &err})
    if (*f) ::fcntl(f->get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SEAL);
  TRY(r.out, read_written(out, p.output_limit));
  if (err) {
    TRY(r.err, read_written(err, p.output_limit));
  }
  return r;
}

Result<Ran> run_program(const std::vector<std::string>& args, std::string_view input, Stderr stderr_to) {
  return run_program(Program{.argv = args, .input = input, .stderr_to = stderr_to});
}

int64_t monotonic_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

Result<std::string> read_own_stat() {
  TRY(std::string s, read_attribute("/proc/self/stat"));
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (auto f = parse_stat(s); f && ec == std::errc() && end != s.data()) own_start = {pid, f->start_time};
  return s;
}

std::optional<uint64_t> own_start_time(pid_t self) {
  if (self > 0 && own_start.pid == self) return own_start.start_time;
  return process_start_time(self);
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  auto f = stat_fields(pid);
  if (!f) return std::nullopt;
  return f->start_time;
}

uint64_t pidfs_ino(BorrowedFd pidfd) {
  constexpr long kPidfsMagic = 0x50494446;  // PID_FS_MAGIC, not in bookworm's headers
  struct statfs fs;
  struct stat st;
  if (::fstatfs(pidfd.get(), &fs) < 0 || fs.f_type != kPidfsMagic) return 0;
  if (::fstat(pidfd.get(), &st) < 0) return 0;
  return st.st_ino;
}

bool process_is(pid_t pid, uint64_t start_time, uint64_t ino) {
  auto f = stat_fields(pid);
  if (!f || f->start_time != start_time || f->state == 'Z') return false;
  if (ino == 0) return true;
  auto fd = pidfd_open(pid);
  return fd && pidfs_ino(*fd) == ino;
}

namespace {
// "2006-01-02T15:04:05", UTC. Not gmtime_r and strftime: glibc sets up the
// time zone on their first call, reading /etc/localtime (seven syscalls) for
// a zone a UTC stamp never uses. std::chrono's calendar does the arithmetic.
std::string utc_seconds(time_t t) {
  using namespace std::chrono;
  sys_seconds s{seconds{t}};
  auto day = floor<days>(s);
  year_month_day ymd{day};
  hh_mm_ss hms{s - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count());
}
}  // namespace

std::string now_rfc3339_nano() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  // Go's RFC3339Nano (runc's format): trailing zeros of the fraction dropped,
  // no fraction at all when it is zero.
  std::string frac = fmt::format("{:09}", ts.tv_nsec);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string secs = utc_seconds(ts.tv_sec);
  return frac.empty() ? secs + "Z" : fmt::format("{}.{}Z", secs, frac);
}

std::string rfc3339_seconds() { return utc_seconds(::time(nullptr)) + "Z"; }

std::string user_name(uid_t uid) {
  struct passwd pw, *res = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
  return fmt::format("#{}", uid);
}

// std::filesystem::path::lexically_normal's result, made in one pass over
// the names (that class splits and re-joins the path: ~3k instructions a
// call, and a container start cleans dozens). The unit tests hold the two
// equal over every path of up to 10 characters from {a, ., /}.
std::string clean_path(const std::string& path) {
  // libstdc++ keeps a path of slashes alone as it is ("//" stays "//").
  if (path.find_first_not_of('/') == std::string::npos) return path;
  bool absolute = path[0] == '/';
  std::vector<std::string_view> names;
  bool trailing = false;  // the last name was ".", "..", or followed by '/'
  std::string_view rest(path);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (name.empty()) {
      trailing = true;
      continue;
    }
    trailing = name == "." || name == ".." || slash != std::string_view::npos;
    if (name == ".") continue;
    if (name == "..") {
      if (!names.empty() && names.back() != "..")
        names.pop_back();
      else if (!absolute)
        names.push_back(name);
      continue;
    }
    names.push_back(name);
  }
  if (names.empty()) return absolute ? "/" : ".";
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0 || absolute) out += '/';
    out += names[i];
  }
  if (trailing && names.back() != "..") out += '/';
  return out;
}

std::string abs_path(const std::string& path) {
  std::string p = path;
  if (p.empty() || p[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) p = std::string(cwd) + "/" + p;
  }
  p = clean_path(p);
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace brig::sys
