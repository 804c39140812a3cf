#include "runtime/init.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "rootfs/apply.hpp"
#include "rootfs/paths.hpp"
#include "runtime/caps.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/sync.hpp"
#include "runtime/tty.hpp"

namespace brig::runtime {

int rlimit_resource(const std::string& name) {
  static const std::pair<const char*, int> table[] = {
      {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
  };
  for (auto& [n, r] : table)
    if (name == n) return r;
  return -1;
}

namespace {

std::string env_get(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return {};
}
bool env_has(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) return true;
  return false;
}

bool is_executable_file(const std::string& p, int* err) {
  struct stat st;
  if (::stat(p.c_str(), &st) < 0) {
    *err = errno;
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    *err = EISDIR;
    return false;
  }
  if (::access(p.c_str(), X_OK) < 0) {
    *err = errno;
    return false;
  }
  return true;
}

// HOME of the container user from the container's /etc/passwd, "/" otherwise.
std::string home_of(uint32_t uid) {
  std::ifstream in("/etc/passwd");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ':')) f.push_back(x);
    if (f.size() >= 6 && f[2] == std::to_string(uid)) return f[5];
  }
  return "/";
}

Result<void> set_rlimits(const spec::Process& p) {
  for (size_t i = 0; i < p.rlimits.size(); i++) {
    const auto& r = p.rlimits[i];
    int res = rlimit_resource(r.type);
    if (res < 0) return fail_msg("process.rlimits[{}].type: unknown rlimit \"{}\"", i, r.type);
    struct rlimit rl {r.soft, r.hard};
    if (::setrlimit(res, &rl) < 0)
      return fail_errno("setrlimit {} (soft {}, hard {})", r.type, r.soft, r.hard);
  }
  return {};
}

Result<void> set_user(const spec::User& u, bool userns) {
  std::vector<gid_t> groups(u.additionalGids.begin(), u.additionalGids.end());
  if (::setgroups(groups.size(), groups.data()) < 0) {
    // A user namespace with setgroups denied can only keep no groups.
    if (!(userns && groups.empty() && errno == EPERM)) return fail_errno("setgroups");
  }
  if (::setresgid(u.gid, u.gid, u.gid) < 0) return fail_errno("setgid {}", u.gid);
  if (::setresuid(u.uid, u.uid, u.uid) < 0) return fail_errno("setuid {}", u.uid);
  return {};
}

// Blocks until `start` writes to the exec fifo.
Result<void> wait_for_start(int fifo) {
  for (;;) {
    struct pollfd p {fifo, POLLIN, 0};
    int n = ::poll(&p, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("wait for start");
    }
    char c;
    ssize_t r = ::read(fifo, &c, 1);
    if (r == 1) return {};
    if (r < 0 && errno != EAGAIN && errno != EINTR) return fail_errno("read exec fifo");
    // A writer came and went without a byte: wait for the next one.
    struct timespec ts {0, 10'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

void reset_signals() {
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
}

Result<void> setup(const InitContext& c, std::string& exe) {
  const spec::Config& cfg = *c.cfg;
  const spec::Process& proc = *cfg.process;

  TRY(auto go, receive(c.sync_fd));
  if (go.type != Msg::go) return fail_msg("sync: unexpected message from parent");

  if (c.ns->new_user()) {
    if (::setresgid(0, 0, 0) < 0) return fail_errno("setgid 0 in user namespace");
    if (::setresuid(0, 0, 0) < 0) return fail_errno("setuid 0 in user namespace");
  }
  TRY_VOID(ns::enter(*c.joins, /*skip_pid_time=*/true));
  if (c.ns->creates("cgroup") && ::unshare(CLONE_NEWCGROUP) < 0) return fail_errno("unshare cgroup namespace");
  if (::setsid() < 0) return fail_errno("setsid");

  ::umask(0);
  if (c.ns->has("mount")) {
    TRY(Fd root, rootfs::prepare_root(*c.fs, c.rootfs));
    TRY_VOID(rootfs::apply_ops(*c.fs, root));
    TRY_VOID(rootfs::enter_root(root, c.no_pivot));
    TRY_VOID(rootfs::finalize(*c.fs));
  }
  if (c.console_fd >= 0) {
    TRY_VOID(setup_console(c.console_fd, proc, c.ns->has("mount")));
    ::close(c.console_fd);
  }

  if (cfg.hostname && !cfg.hostname->empty()) {
    if (!c.ns->has("uts")) return fail_msg("unable to set hostname without a private UTS namespace");
    if (::sethostname(cfg.hostname->data(), cfg.hostname->size()) < 0)
      return fail_errno("sethostname {}", *cfg.hostname);
  }
  if (cfg.domainname && !cfg.domainname->empty()) {
    if (!c.ns->has("uts")) return fail_msg("unable to set domainname without a private UTS namespace");
    if (::setdomainname(cfg.domainname->data(), cfg.domainname->size()) < 0)
      return fail_errno("setdomainname {}", *cfg.domainname);
  }

  TRY_VOID(set_rlimits(proc));
  if (proc.noNewPrivileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail_errno("set no_new_privs");

  // The cwd is made if missing (as root, inside the root: we are pivoted).
  if (!proc.cwd.empty()) {
    TRY(Fd root, sys::open("/", O_PATH | O_DIRECTORY));
    TRY_CTX_VOID(rootfs::mkdir_all_in_root(root, proc.cwd), "create cwd {}", proc.cwd);
  }

  // Without a capabilities section the process keeps none, as with runc.
  TRY(CapSets caps, resolve_caps(proc.capabilities.value_or(spec::Capabilities{}), kernel_last_cap()));
  TRY_VOID(caps_before_user(caps));
  TRY_VOID(set_user(proc.user, c.ns->has("user")));
  TRY_VOID(caps_after_user(caps));
  ::umask(proc.user.umask.value_or(022));
  std::string cwd = proc.cwd.empty() ? "/" : proc.cwd;
  if (::chdir(cwd.c_str()) < 0) return fail_errno("chdir to cwd (\"{}\") set in config.json", cwd);

  TRY(exe, find_executable(proc.args[0], proc.env));
  return {};
}

}  // namespace

Result<std::string> find_executable(const std::string& name, const std::vector<std::string>& env) {
  int err = 0;
  if (name.find('/') != std::string::npos) {
    if (is_executable_file(name, &err)) return name;
    return fail_msg("exec: \"{}\": stat {}: {}", name, name, Error::errno_text(err));
  }
  std::string path = env_has(env, "PATH") ? env_get(env, "PATH")
                                          : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(p, &err)) return p;
  }
  return fail_msg("exec: \"{}\": executable file not found in $PATH", name);
}

void init_main(const InitContext& c) {
  reset_signals();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Keep stdio, the preserved fds, and our own few; drop the rest (the
  // parent's lock on the state dir among them).
  std::vector<int> keep = {c.sync_fd, c.fifo_fd, c.console_fd};
  for (auto& j : *c.joins) keep.push_back(j.fd.get());
  sys::close_fds_except(3 + c.preserve_fds, keep);

  std::string exe;
  auto r = setup(c, exe);
  if (!r) {
    (void)send(c.sync_fd, Msg::error, r.error().msg);
    ::_exit(1);
  }
  std::vector<std::string> env = c.cfg->process->env;
  if (!env_has(env, "HOME")) env.push_back("HOME=" + home_of(c.cfg->process->user.uid));

  // From here on the parent may exit: do not die with it.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  (void)send(c.sync_fd, Msg::ready);
  ::close(c.sync_fd);

  auto w = wait_for_start(c.fifo_fd);
  if (!w) {
    fmt::print(stderr, "brig init: {}\n", w.error().msg);
    ::_exit(1);
  }
  sys::close_fds_except(3 + c.preserve_fds, {});

  std::vector<char*> argv, envp;
  for (auto& a : c.cfg->process->args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(exe.c_str(), argv.data(), envp.data());
  fmt::print(stderr, "exec {}: {}\n", exe, std::strerror(errno));
  ::_exit(127);
}

}  // namespace brig::runtime
