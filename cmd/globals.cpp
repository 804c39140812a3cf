#include "cmd/globals.hpp"

#include <regex.h>
#include <strings.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>

#include "runtime/core/log.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cmd {
namespace {
runtime::Globals g_globals;
}

const std::vector<cli::Flag>& global_flags() {
  static const std::vector<cli::Flag> f = {
      {{"debug"}, false, "enable debug logging", ""},
      {{"log"}, true, "set the log file to write brig logs to (default is '/dev/stderr')", ""},
      {{"log-format"}, true, "set the log format ('text' (default), or 'json')", "\"text\""},
      {{"root"}, true, "root directory for storage of container state (this should be located in tmpfs)",
       "\"/run/brig\""},
      {{"criu"}, true, "path to the criu binary used for checkpoint and restore (not supported)", "\"criu\""},
      {{"systemd-cgroup"}, false,
       "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\"", ""},
      {{"cgroup-manager"}, true, "cgroup manager: 'cgroupfs', 'systemd' or 'disabled' (crun's flag)",
       "\"cgroupfs\""},
      {{"rootless"}, true, "ignore cgroup permission errors ('true', 'false', or 'auto')", "\"auto\""},
      {{"help", "h"}, false, "show help", ""},
      {{"version", "v"}, false, "print the version", ""},
  };
  return f;
}

Result<void> apply_globals(const cli::Parsed& p) {
  log::Options lo;
  lo.debug = p.flag("debug");
  lo.file = p.get("log");
  std::string fmt_ = p.get("log-format", "text");
  if (fmt_ == "json")
    lo.format = log::Format::json;
  else if (fmt_ != "text")
    return fail_msg("invalid log-format: {}", fmt_);
  log::configure(lo);
  // runc's rule: unprivileged, state goes under $XDG_RUNTIME_DIR.
  const char* xdg = ::getenv("XDG_RUNTIME_DIR");
  bool unprivileged = ::geteuid() != 0;
  g_globals.root = p.get("root", unprivileged && xdg && *xdg == '/' ? std::string(xdg) + "/brig" : "/run/brig");
  // runc's values: auto, or a Go boolean (1, t, T, TRUE, true, True; 0, f, ...).
  std::string rl = p.get("rootless", "auto");
  static const char* const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char* const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  if (std::find(std::begin(yes), std::end(yes), rl) != std::end(yes))
    g_globals.rootless = "true";
  else if (std::find(std::begin(no), std::end(no), rl) != std::end(no))
    g_globals.rootless = "false";
  else if (rl.empty() || ::strcasecmp(rl.c_str(), "auto") == 0)
    g_globals.rootless = "auto";
  else
    return fail_msg("invalid --rootless value \"{}\": true, false or auto", rl);
  std::string mgr = p.get("cgroup-manager", p.flag("systemd-cgroup") ? "systemd" : "cgroupfs");
  if (mgr != "cgroupfs" && mgr != "systemd" && mgr != "disabled")
    return fail_msg("unknown cgroup manager \"{}\" (cgroupfs, systemd or disabled)", mgr);
  g_globals.cgroup_manager = mgr;
  return {};
}

const runtime::Globals& globals() { return g_globals; }

Result<int> preserve_fds(const cli::Parsed& p, int extra) {
  std::string n = p.get("preserve-fds", "0");
  int v = 0;
  auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
  if (ec != std::errc() || ptr != n.data() + n.size() || v < 0)
    return fail_msg("invalid value \"{}\" for flag -preserve-fds", n);
  // No fd at or above the open files limit can be passed in, and reserving up
  // to it would fill brig's own fd table (found by fuzz_cli: EMFILE).
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && static_cast<rlim_t>(3) + extra + static_cast<rlim_t>(v) > rl.rlim_cur)
    return fail_msg("invalid value \"{}\" for flag -preserve-fds: above the open files limit ({})", n, rl.rlim_cur);
  sys::reserve_fds(3, 3 + extra + v);
  return v;
}

Result<std::vector<std::string>> match_ids(const std::string& regex, const std::vector<std::string>& ids) {
  regex_t re;
  if (int rc = ::regcomp(&re, regex.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
    char buf[256];
    ::regerror(rc, &re, buf, sizeof buf);
    return fail_msg("invalid regex \"{}\": {}", regex, buf);
  }
  std::vector<std::string> out;
  for (const auto& id : ids)
    if (::regexec(&re, id.c_str(), 0, nullptr, 0) == 0) out.push_back(id);
  ::regfree(&re);
  return out;
}

}  // namespace brig::cmd
