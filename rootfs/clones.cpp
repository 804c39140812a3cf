#include "rootfs/clones.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "runtime/core/fd.hpp"

namespace brig::rootfs {

Result<void> clone_into(const std::string& dir, const std::vector<Clone>& clones) {
  if (::unshare(CLONE_NEWNS) < 0) return fail_errno("unshare the mount namespace");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) return fail_errno("make / a slave");
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=700") < 0)
    return fail_errno("mount tmpfs on {}", dir);
  for (const auto& c : clones) {
    std::string at = dir + "/" + c.name;
    if ((c.dir ? ::mkdir(at.c_str(), 0700) : ::mknodat(AT_FDCWD, at.c_str(), S_IFREG | 0600, 0)) < 0)
      return fail_errno("create {}", at);
    int t = ::open_tree(AT_FDCWD, c.source.c_str(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (c.recursive ? AT_RECURSIVE : 0));
    if (t < 0) return fail_errno("{}: bind {}", c.origin, c.source);
    Fd tree(t);
    for (bool rec : {false, true}) {
      if (!(rec ? c.rreadonly : c.readonly)) continue;
      struct mount_attr a {};
      a.attr_set = MOUNT_ATTR_RDONLY;
      if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
        return fail_errno("{}: bind {} read-only", c.origin, c.source);
    }
    if (::move_mount(tree.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return fail_errno("{}: bind {}", c.origin, c.source);
  }
  if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) < 0)
    return fail_errno("make {} read-only", dir);
  return {};
}

}  // namespace brig::rootfs
