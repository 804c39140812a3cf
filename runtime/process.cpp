#include "runtime/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "rootfs/paths.hpp"
#include "runtime/attributes.hpp"
#include "runtime/caps.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"
#include "runtime/sync.hpp"

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

// HOME of the container user from the container's /etc/passwd; "/" without
// one, one that cannot be opened or read, or without the user (as runc,
// which uses its defaults then). The file is the container's: it is opened
// without blocking (a FIFO reads as empty, not waited on for ever) and read
// to at most 16 MiB; one without end (/dev/zero) is an error, as it is for
// runc ("unable to find user 0: bufio.Scanner: token too long"), not read
// until memory runs out.
Result<std::string> home_of(uint32_t uid) {
  constexpr size_t kMax = 16 << 20;
  auto f = sys::open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!f) return std::string("/");
  auto passwd = sys::read_all(*f, kMax);
  if (!passwd) {
    if (passwd.error().err == EFBIG)
      return fail(std::move(passwd.error()).context(fmt::format("unable to find user {}: /etc/passwd", uid)));
    return std::string("/");
  }
  std::string id = std::to_string(uid);
  for (std::string_view line : text::lines(*passwd)) {
    auto fields = text::split(line, ':');
    if (fields.size() >= 6 && fields[2] == id) return std::string(fields[5]);
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

// Pipes and sockets on stdio (what engines and shells hand a container) are
// created by root outside: a process running as another user could not reopen
// them (/dev/stdout, /proc/self/fd/1), as runc lets it. They are given to its
// uid. Nothing else is: not the host's /dev/null (crun 1.8.1 chowned it), a
// terminal or a file of the caller's. Failing is fine (an unmapped owner in a
// user namespace): the process keeps the fds it has.
void give_stdio_to(uint32_t uid) {
  if (uid == 0) return;
  for (int fd = 0; fd < 3; fd++) {
    struct stat st;
    if (::fstat(fd, &st) < 0 || st.st_uid == uid) continue;
    if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) continue;
    (void)::fchown(fd, uid, static_cast<gid_t>(-1));
  }
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
  // An empty PATH names no directory (Go's filepath.SplitList, so runc).
  if (path.empty()) return fail_msg("exec: \"{}\": executable file not found in $PATH", name);
  for (std::string_view entry : text::split(path, ':')) {
    std::string dir(entry.empty() ? "." : entry);
    std::string p = dir + "/" + name;
    if (!is_executable_file(p, &err)) continue;
    // Found through a relative entry ("", ".", "bin"): refused, as runc's
    // Go (exec.ErrDot) refuses it, never run from wherever the cwd is.
    if (dir[0] != '/') return fail_msg("exec: \"{}\": cannot run executable found relative to current directory", name);
    return p;
  }
  return fail_msg("exec: \"{}\": executable file not found in $PATH", name);
}

Result<std::string> prepare_process(const spec::Process& proc, bool userns, std::vector<std::string>& env,
                                    const spec::Config* cfg) {
  if (proc.execCPUAffinity && proc.execCPUAffinity->initial)
    TRY_VOID(set_cpu_affinity(*proc.execCPUAffinity->initial, "process.execCPUAffinity.initial"));
  TRY_VOID(set_rlimits(proc));
  TRY_VOID(apply_attributes(proc, cfg));
  if (proc.noNewPrivileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail_errno("set no_new_privs");

  // The cwd is made if missing (as root, inside the root: we are pivoted or
  // in the container's mount namespace).
  if (!proc.cwd.empty() && sys::clean_path(proc.cwd) != "/") {  // the root is there
    TRY(Fd root, sys::open("/", O_PATH | O_DIRECTORY));
    TRY_CTX_VOID(rootfs::mkdir_all_in_root(root, proc.cwd), "create cwd {}", proc.cwd);
  }
  // HOME is looked up as root, as runc does: a container user who may not
  // read /etc/passwd still gets the entry's home.
  TRY(env, process_env(proc));

  // Without a capabilities section the process keeps none, as with runc.
  TRY(CapSets caps, resolve_caps(proc.capabilities.value_or(spec::Capabilities{}), kernel_last_cap()));
  if (!proc.terminal) give_stdio_to(proc.user.uid);  // a terminal's slave is chowned with the pty
  bool uid_changes = proc.user.uid != 0;
  TRY_VOID(caps_before_user(caps, uid_changes));
  TRY_VOID(set_user(proc.user, userns));
  TRY_VOID(caps_after_user(caps, uid_changes));
  ::umask(proc.user.umask.value_or(022));
  std::string cwd = proc.cwd.empty() ? "/" : proc.cwd;
  if (::chdir(cwd.c_str()) < 0) return fail_errno("chdir to cwd (\"{}\") set in config.json", cwd);
  TRY_VOID(apply_exec_labels(proc));
  if (proc.execCPUAffinity && proc.execCPUAffinity->final)
    TRY_VOID(set_cpu_affinity(*proc.execCPUAffinity->final, "process.execCPUAffinity.final"));
  return find_executable(proc.args[0], proc.env);
}

int listen_fds() {
  const char* n = ::getenv("LISTEN_FDS");
  const char* pid = ::getenv("LISTEN_PID");
  if (!n || !pid || std::to_string(::getpid()) != pid) return 0;
  int v = std::atoi(n);
  return v > 0 ? v : 0;
}

Result<std::vector<std::string>> process_env(const spec::Process& proc) {
  std::vector<std::string> env = proc.env;
  if (!env_has(env, "HOME")) {
    TRY(std::string home, home_of(proc.user.uid));
    env.push_back("HOME=" + home);
  }
  return env;
}

void exec_process(const std::string& exe, const std::vector<std::string>& args,
                  const std::vector<std::string>& env, int preserve_fds, int report_fd) {
  std::vector<int> keep;
  if (report_fd >= 0) keep.push_back(report_fd);
  sys::close_fds_except(3 + preserve_fds, keep);
  // The preserved fds came from our caller; they must survive the exec.
  for (int fd = 3; fd < 3 + preserve_fds; fd++) ::fcntl(fd, F_SETFD, 0);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(exe.c_str(), argv.data(), envp.data());
  std::string msg = fmt::format("exec {}: {}", exe, Error::errno_text(errno));
  if (report_fd < 0 || !send(report_fd, Msg::error, msg)) fmt::print(stderr, "{}\n", msg);
  ::_exit(127);
}

}  // namespace brig::runtime
