// The config.json `brig spec` writes: the same document as runc 1.1.5's
// `runc spec` / `runc spec --rootless` (same keys, order and values), with
// ociVersion 1.3.0.
#include "spec/config.hpp"

namespace brig::spec {

using oj = nlohmann::ordered_json;

namespace {

oj mount(const char* dest, const char* type, const char* source, std::vector<std::string> opts = {}) {
  oj m = {{"destination", dest}, {"type", type}, {"source", source}};
  if (!opts.empty()) m["options"] = opts;
  return m;
}

}  // namespace

nlohmann::ordered_json default_config_ordered(bool rootless, uint32_t host_uid, uint32_t host_gid) {
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  oj process = {
      {"terminal", true},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", {"sh"}},
      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
      {"cwd", "/"},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
      {"rlimits", oj::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
      {"noNewPrivileges", true},
  };

  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"};
  if (!rootless) devpts.push_back("gid=5");
  oj mounts = oj::array({
      mount("/proc", "proc", "proc"),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts", devpts),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      rootless ? mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"})
               : mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });

  oj linux = oj::object();
  if (rootless) {
    linux["uidMappings"] = oj::array({{{"containerID", 0}, {"hostID", host_uid}, {"size", 1}}});
    linux["gidMappings"] = oj::array({{{"containerID", 0}, {"hostID", host_gid}, {"size", 1}}});
  } else {
    linux["resources"] = {{"devices", oj::array({{{"allow", false}, {"access", "rwm"}}})}};
  }
  oj ns = oj::array();
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "user"}) {
    std::string_view type = t;
    if (rootless ? type == "network" : type == "user") continue;
    ns.push_back({{"type", t}});
  }
  linux["namespaces"] = ns;
  linux["maskedPaths"] = {"/proc/acpi",       "/proc/asound",      "/proc/kcore",       "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                          "/sys/firmware",    "/proc/scsi"};
  linux["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};

  return oj{
      {"ociVersion", kOciVersion},
      {"process", process},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "brig"},  // runc writes "runc", crun "crun"
      {"mounts", mounts},
      {"linux", linux},
  };
}

nlohmann::json default_config(bool rootless, uint32_t host_uid, uint32_t host_gid) {
  return nlohmann::json::parse(default_config_ordered(rootless, host_uid, host_gid).dump());
}

}  // namespace brig::spec
