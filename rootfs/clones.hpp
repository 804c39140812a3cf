// Host paths cloned into one directory for a process that exports them
// (the microVM backend's volumes virtiofsd): the clones exist only in a
// mount namespace of that process's own and go with it.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.hpp"

namespace brig::rootfs {

struct Clone {
  std::string name;    // its entry in the directory
  std::string source;  // absolute host path: a directory or a regular file
  bool dir = true;
  bool recursive = false;  // submounts along (rbind)
  bool readonly = false;   // the clone's top mount read-only (ro)
  bool rreadonly = false;  // every mount of it read-only (rro)
  std::string origin;      // for errors: "mounts[3]"
};

// Unshares the caller's mount namespace (made an rslave of the one it came
// from: nothing propagates back), puts a small tmpfs on `dir`, an entry per
// clone in it, each source cloned (open_tree) onto its entry, and the tmpfs
// then read-only: whoever reads `dir` can write only into what a clone
// shares, never a file of its own into `dir`.
Result<void> clone_into(const std::string& dir, const std::vector<Clone>& clones);

}  // namespace brig::rootfs
