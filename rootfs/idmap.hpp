// Idmapped mounts: a user namespace that carries a mount's uidMappings and
// gidMappings, to hand to mount_setattr(MOUNT_ATTR_IDMAP).
#pragma once

#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"

namespace brig::rootfs {

// Forks a helper that unshares a user namespace and waits, writes its
// uid_map/gid_map, opens its /proc/PID/ns/user and ends it. Needs the host's
// /proc (call before the pivot) and CAP_SETUID/CAP_SETGID over the host ids.
Result<Fd> idmap_userns(const std::vector<spec::IdMapping>& uids, const std::vector<spec::IdMapping>& gids);

}  // namespace brig::rootfs
