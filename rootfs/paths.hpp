// Paths inside the container root, resolved inside it: openat2 with
// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so no symlink planted in the
// rootfs can lead a mount, mknod, mkdir or chmod onto the host.
#pragma once

#include <string>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

namespace brig::rootfs {

// Opens `path` (absolute inside the root) relative to `root`.
Result<Fd> open_in_root(BorrowedFd root, const std::string& path, int flags);
// Same, but no symlink at all may be on the way (ELOOP if one is).
Result<Fd> open_in_root_nofollow(BorrowedFd root, const std::string& path, int flags);
// Makes every missing directory of `path` inside the root; returns an O_PATH
// fd of the last one.
Result<Fd> mkdir_all_in_root(BorrowedFd root, const std::string& path, mode_t mode = 0755);
// Makes the target of a mount if missing: a directory, or an empty file when
// `file` is true. Returns an O_PATH fd of it. `made`, if given, is set when
// this call created the last name in its resolved parent and the fd is that
// new entry (opened there without following a symlink): then it is neither
// the root nor on procfs, which does not let anything be created in it.
Result<Fd> ensure_target(BorrowedFd root, const std::string& path, bool file, bool* made = nullptr);
// The directory a missing target is made in, kept by the caller from one
// ensure_target to the next: `fd` is the target's parent as resolved inside
// the root (`path`), and the caller keeps it only while nothing can have
// changed what that path resolves to.
struct ParentDir {
  std::string path;
  Fd fd;
};
// ensure_target that makes a missing target in `parent` when it is the
// target's parent (one lookup and a close fewer), and otherwise leaves in it
// the parent it resolved when it made the target (cleared when it made
// nothing).
Result<Fd> ensure_target(BorrowedFd root, const std::string& path, bool file, bool* made, ParentDir& parent);

// Splits "/a/b/c" into "/a/b" and "c".
std::pair<std::string, std::string> split_parent(const std::string& path);

}  // namespace brig::rootfs
