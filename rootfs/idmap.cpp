#include "rootfs/idmap.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>


#include "namespaces/namespaces.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"

namespace brig::rootfs {
namespace {

// The helper's pid as the /proc we see numbers it: init may sit in a new pid
// namespace while /proc is still the host's, so the pid fork() returned is not
// the one /proc knows. A pidfd's fdinfo gives the pid in /proc's namespace.
Result<pid_t> pid_in_proc(BorrowedFd pidfd) {
  TRY(std::string info, sys::read_file(fmt::format("/proc/self/fdinfo/{}", pidfd.get())));
  for (std::string_view line : text::lines(info))
    if (line.starts_with("Pid:")) {
      long p = std::strtol(std::string(line.substr(4)).c_str(), nullptr, 10);
      if (p > 0) return static_cast<pid_t>(p);
      break;
    }
  return fail_msg("idmap helper is not visible in /proc");
}

}  // namespace

Result<Fd> idmap_userns(const std::vector<spec::IdMapping>& uids, const std::vector<spec::IdMapping>& gids) {
  int ready[2], hold[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) return fail_errno("idmap: pipe");
  Fd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(hold, O_CLOEXEC) < 0) return fail_errno("idmap: pipe");
  Fd hold_r(hold[0]), hold_w(hold[1]);

  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("idmap: fork");
  if (pid == 0) {
    // The helper: a new user namespace, then wait to be killed (or for the
    // parent to go away: the hold pipe reads EOF).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ready_r.reset();
    hold_w.reset();
    char c = ::unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    (void)!::write(ready_w.get(), &c, 1);
    ready_w.reset();
    (void)!::read(hold_r.get(), &c, 1);
    ::_exit(0);
  }
  ready_w.reset();
  hold_r.reset();
  auto reap = [&] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  };
  auto pidfd = sys::pidfd_open(pid);
  char c = 0;
  if (::read(ready_r.get(), &c, 1) != 1 || c != 'y') {
    reap();
    return fail_msg("idmap: the helper could not create a user namespace");
  }
  auto out = [&]() -> Result<Fd> {
    if (!pidfd) return fail(std::move(pidfd.error()));
    TRY(pid_t hp, pid_in_proc(*pidfd));
    TRY_VOID(ns::write_id_maps(hp, uids, gids, false));
    return sys::open(fmt::format("/proc/{}/ns/user", hp), O_RDONLY);
  }();
  reap();
  if (!out) return fail(std::move(out.error()).context("idmap"));
  return out;
}

}  // namespace brig::rootfs
