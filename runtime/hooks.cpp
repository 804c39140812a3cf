#include "runtime/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/core/sys.hpp"

namespace brig::runtime {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<void> run_hook(const spec::Hook& hook, const std::string& state_json) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0) return fail_errno("pipe");
  Fd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) < 0) return fail_errno("pipe");
  Fd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) < 0) return fail_errno("pipe");
  Fd err_r(err[0]), err_w(err[1]);

  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : hook.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    sys::close_fds_except(3, {});
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    fmt::print(stderr, "exec {}: {}", hook.path, Error::errno_text(errno));
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  // The state is small (well under a pipe buffer); a hook that ignores its
  // stdin must not block us.
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  // A hook may exit (or close its stdin) before reading: EPIPE, not SIGPIPE.
  (void)sys::write_all_nosigpipe(in_w, state_json);
  in_w.reset();

  std::string so, se;
  int64_t deadline = hook.timeout ? sys::monotonic_ms() + *hook.timeout * 1000 : -1;
  bool timed_out = false;
  bool o_open = true, e_open = true;
  while (o_open || e_open) {
    struct pollfd p[2] = {{o_open ? out_r.get() : -1, POLLIN, 0}, {e_open ? err_r.get() : -1, POLLIN, 0}};
    int wait = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - sys::monotonic_ms()));
    int n = ::poll(p, 2, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      timed_out = true;
      break;
    }
    char buf[4096];
    for (int i = 0; i < 2; i++) {
      if (!p[i].revents) continue;
      ssize_t r = ::read(p[i].fd, buf, sizeof buf);
      if (r <= 0) {
        (i == 0 ? o_open : e_open) = false;
      } else if ((i == 0 ? so : se).size() < 65536) {
        (i == 0 ? so : se).append(buf, static_cast<size_t>(r));
      }
    }
  }
  int status = 0;
  if (timed_out) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string reason;
  if (timed_out)
    reason = fmt::format("timeout after {} seconds", *hook.timeout);
  else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    reason = fmt::format("exit status {}", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    reason = fmt::format("signal: {}", strsignal(WTERMSIG(status)));
  if (reason.empty()) return {};
  return fail_msg("{}, stdout: {}, stderr: {}", reason, trimmed(so), trimmed(se));
}

Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& phase,
                       const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); i++) {
    auto r = run_hook(hooks[i], state_json);
    if (!r) return fail(std::move(r.error()).context(fmt::format("error running {} hook #{}", phase, i)));
  }
  return {};
}

}  // namespace brig::runtime
