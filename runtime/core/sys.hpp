// Thin, checked wrappers around the system calls brig uses everywhere.
// Each returns Result<> with an error naming the call and the path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

namespace brig::sys {

Result<Fd> open(const std::string& path, int flags, mode_t mode = 0);
Result<Fd> openat(BorrowedFd dir, const std::string& path, int flags, mode_t mode = 0);
// openat2 with RESOLVE_* flags; `resolve` as in struct open_how.
Result<Fd> openat2(BorrowedFd dir, const std::string& path, uint64_t flags, uint64_t resolve,
                   mode_t mode = 0);

// Everything to EOF; more than `limit` bytes is an error (EFBIG), for a file
// whose size someone else controls.
Result<std::string> read_all(BorrowedFd fd, size_t limit = SIZE_MAX);
Result<std::string> read_file(const std::string& path);
// A kernel file of one value (a cgroup knob, a sysctl, /proc/PID/stat or
// status; never cgroup.procs, tasks, mountinfo or maps, whose reads stop at
// a record boundary): the kernel hands over its whole text in the first
// read when the buffer is larger, so a read that does not fill the buffer
// is the end, and the second read that would only say so is not made.
Result<std::string> read_attribute(const std::string& path);
Result<void> write_all(BorrowedFd fd, std::string_view data);
// write_all to a pipe or fifo whose reader may be gone: that fails with EPIPE
// and never kills brig with SIGPIPE (the signal is blocked for the write and
// a pending one taken back).
Result<void> write_all_nosigpipe(BorrowedFd fd, std::string_view data);
// Writes `data` to an existing file (cgroup, /proc knobs): open O_WRONLY, one write.
Result<void> write_file(const std::string& path, std::string_view data);
// Writes a new file atomically: temp file in the same dir, fsync-free rename.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600);

Result<void> mkdir_p(const std::string& path, mode_t mode = 0755);
bool exists(const std::string& path);

// close every fd >= `from` except those listed (close_range over the gaps).
void close_fds_except(int from, std::span<const int> keep);
// Fills every closed fd in [from, to) with /dev/null, so that fds brig opens
// later never land in slots that belong to the caller (stdio, preserved fds).
void reserve_fds(int from, int to);
// Duplicates fd to a number >= min_fd, O_CLOEXEC.
Result<Fd> dup_above(BorrowedFd fd, int min_fd);

// Unix sockets: connect to a path; send data with one fd (SCM_RIGHTS) riding
// on it (returns the bytes sent); receive into `buf`, with the fd if one came.
Result<Fd> connect_unix(const std::string& path);
Result<size_t> send_with_fd(BorrowedFd sock, std::string_view data, BorrowedFd fd);
struct Received {
  size_t size = 0;
  Fd fd;
};
Result<Received> recv_with_fd(BorrowedFd sock, char* buf, size_t len);

// pidfd helpers.
Result<Fd> pidfd_open(pid_t pid);
Result<void> pidfd_send_signal(BorrowedFd pidfd, int sig);

// Field 22 of /proc/PID/stat (start time in clock ticks): identifies a process
// across pid reuse. nullopt when the process does not exist (or is a zombie
// that was already reaped). Two processes started in the same tick (10 ms)
// share it: see pidfs_ino.
std::optional<uint64_t> process_start_time(pid_t pid);
// /proc/self/stat, whose start time is then remembered (with the pid in it)
// for own_start_time.
Result<std::string> read_own_stat();
// process_start_time of this process, `self` being its getpid(): what the
// last read_own_stat in this process saw, or read now.
std::optional<uint64_t> own_start_time(pid_t self);
// The inode number of a pidfd on a kernel with pidfs (6.9+): unique to one
// process for the boot, so it tells apart what the start time cannot. 0
// without pidfs (a pidfd is then an anonymous inode every pidfd shares).
uint64_t pidfs_ino(BorrowedFd pidfd);
// Whether pid is still the process that started at start_time, and not a
// zombie: one read of /proc/PID/stat; with a pidfs inode (not 0), also a
// pidfd of pid that has it.
bool process_is(pid_t pid, uint64_t start_time, uint64_t ino = 0);

// A helper program run to its end: stdin is `input`, stdout and stderr are
// captured (in memfds: nothing to poll, no pipe to fill up, no wait for a
// background child that keeps them open) unless its stderr is to be ours,
// the signal mask is empty and no other fd of ours reaches it. Fails when it
// cannot be started ("exec NAME: " and the errno of the exec) or its output
// cannot be had; a non-zero exit is the caller's to judge.
struct Ran {
  int status = 0;  // as from waitpid
  bool timed_out = false;  // killed (SIGKILL) at Program::timeout_ms
  std::string out, err;
  bool ok() const;
  // "exit status N" or "signal: killed" (as runc reports a hook's end).
  std::string exit_text() const;
};
enum class Stderr { capture, ours };
struct Program {
  std::vector<std::string> argv;
  // The file executed, as given. Empty: argv[0], looked up on PATH unless it has a '/'.
  std::string path;
  std::optional<std::vector<std::string>> env;  // ours when absent
  std::string_view input;
  Stderr stderr_to = Stderr::capture;
  std::optional<int64_t> timeout_ms;  // then killed with SIGKILL, and Ran::timed_out
  size_t output_limit = SIZE_MAX;     // bytes kept of stdout and of stderr each
};
Result<Ran> run_program(const Program& p);
Result<Ran> run_program(const std::vector<std::string>& argv, std::string_view input = {},
                        Stderr stderr_to = Stderr::capture);

// CLOCK_MONOTONIC in milliseconds: for timeouts and intervals.
int64_t monotonic_ms();

// RFC 3339 UTC with nanoseconds, as runc writes "created".
std::string now_rfc3339_nano();
std::string rfc3339_seconds();  // "2026-11-21T21:48:09Z", for log lines

// User name for a uid from the host's passwd database (runc's "owner").
std::string user_name(uid_t uid);

std::string abs_path(const std::string& path);  // absolute, lexically cleaned
std::string clean_path(const std::string& path);  // lexical clean ("a//b/../c" -> "a/c")

}  // namespace brig::sys
