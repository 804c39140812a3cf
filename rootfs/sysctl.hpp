// linux.sysctl: which keys a container may set (only those of a namespace the
// container owns), computed by pure code; then written through the
// container's own /proc/sys after the pivot.
#pragma once

#include <string>
#include <vector>

#include "namespaces/namespaces.hpp"
#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::rootfs {

struct Sysctl {
  std::string key;    // as written in config.json
  std::string path;   // relative to /proc/sys: "net/ipv4/ip_forward"
  std::string value;
};

// The file under /proc/sys for a key in sysctl(8) notation ("net.ipv4.ip_forward",
// or with '/' as the separator, in which case '.' stands for itself:
// "net/ipv4/conf/eth0.100/rp_filter"). Refuses empty, "." and ".." parts.
Result<std::string> sysctl_path(const std::string& key);

// Whether the container may set `key`: IPC keys (kernel.msg*, kernel.sem,
// kernel.shm*, fs.mqueue.*) need an ipc namespace, net.* a network namespace,
// kernel.hostname / kernel.domainname a uts namespace (and no conflicting
// hostname / domainname field). Everything else is refused. Errors use runc's
// wording and name the key.
Result<void> validate_sysctl(const std::string& key, const ns::Plan& ns, const spec::Config& cfg);

// Validates every key of linux.sysctl, in order.
Result<std::vector<Sysctl>> plan_sysctls(const spec::Config& cfg, const ns::Plan& ns);

// After the pivot: writes each value to /proc/sys/<path>, resolved inside the
// root without following any symlink, on a procfs only.
Result<void> write_sysctls(const std::vector<Sysctl>& sysctls);

}  // namespace brig::rootfs
