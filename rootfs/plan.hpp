// The container's filesystem as plain data: the list of operations (mounts,
// device nodes, symlinks, attribute changes) computed from config.json by pure
// code, then applied by rootfs/apply.cpp inside the new mount namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cgroup/manager.hpp"
#include "namespaces/namespaces.hpp"
#include "rootfs/sysctl.hpp"
#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::rootfs {

// What the options of one mount mean (config.md "Mounts" option table).
struct MountFlags {
  uint64_t attr_set = 0, attr_clr = 0;    // MOUNT_ATTR_* on the mount itself
  uint64_t rattr_set = 0, rattr_clr = 0;  // MOUNT_ATTR_* applied recursively (rro, rnosuid, ...)
  uint64_t propagation = 0;               // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE or 0
  bool propagation_rec = false;
  bool bind = false, rbind = false;
  bool remount = false;                   // change the mount already at the target
  bool tmpcopyup = false;                 // tmpfs: copy the directory's contents into it
  bool idmap = false, ridmap = false;
  std::vector<std::string> sb_flags;      // superblock flags: sync, dirsync, mand, ...
  std::vector<std::pair<std::string, std::string>> data;  // filesystem options (value "" = flag)
  bool readonly() const;   // "ro": the mount itself
  bool rreadonly() const;  // "rro": it and every submount
};
Result<MountFlags> parse_options(const std::vector<std::string>& options);

struct Op {
  // setattr: change an existing mount (the "remount" option, the cgroup tree
  // made read-only): attributes, propagation, and filesystem data if any.
  enum class Kind { bind, fs, symlink, device, setattr };
  Kind kind = Kind::fs;
  std::string source;   // bind: host path; fs: source name; symlink: link text
  std::string target;   // absolute path inside the container
  std::string fstype;
  MountFlags flags;
  std::vector<spec::IdMapping> uidMappings, gidMappings;  // idmapped mounts
  std::string label;    // linux.mountLabel, for filesystems that take a context= (SELinux only)
  // device
  char dev_type = 'c';
  uint32_t major = 0, minor = 0;
  uint32_t mode = 0666;
  uint32_t uid = 0, gid = 0;
  // Where this op came from, for error messages ("mounts[3]", "linux.devices[0]").
  std::string origin;
  // bind: a detached tree the runtime already made (idmapped, attributes
  // set) in its own namespaces, for init to attach; -1 when init makes it.
  int tree_fd = -1;
  // bind: the source is a directory brig made (the container's cgroup), so
  // a missing target is made a directory without a stat of the source.
  bool source_dir = false;
};

struct Context {
  std::string bundle;                          // absolute bundle dir
  std::vector<cgroup::Hierarchy> cgroups;      // the host's hierarchies
  std::string cgroup_path;                     // the container's cgroup (relative path)
  // When set (a container without a cgroup of its own, rootless): the
  // directory to show for each of cgroups, instead of its cgroup_path there.
  std::vector<std::string> cgroup_dirs;
  bool cgroupns = false;                       // container has its own cgroup namespace
  bool userns = false;                         // devices are bind-mounted, not made
  ns::Plan ns;                                 // the container's namespaces (sysctl checks)
};

struct Plan {
  std::vector<Op> ops;                  // in order, before pivot
  // linux.rootfsPropagation (MS_* [| MS_REC]) for "/" once entered; 0 when
  // unset: "/" stays the rslave tree it was made before the mounts.
  uint64_t root_propagation = 0;
  bool readonly_root = false;
  std::vector<std::string> masked;      // after pivot
  std::vector<std::string> readonly;    // after pivot
  std::vector<Sysctl> sysctl;           // after pivot, before the read-only paths
};

Result<Plan> plan(const spec::Config& cfg, const Context& ctx);

// The devices every container gets (null, zero, full, random, urandom, tty).
std::vector<spec::Device> default_devices();

}  // namespace brig::rootfs
