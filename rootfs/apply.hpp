// Applies a rootfs::Plan inside the container's new mount namespace. Every
// target is an fd resolved inside the root; mounts are attached by fd
// (fsopen/fsmount, open_tree, move_mount, mount_setattr), or, for a plain
// filesystem whose options mount(2) can say, by one mount(2) on the target's
// /proc/self/fd path (the host's /proc: the ops run before the pivot).
#pragma once

#include <string>
#include <vector>

#include "rootfs/plan.hpp"
#include "runtime/core/fd.hpp"

namespace brig::rootfs {

// For a container with its own user namespace: the kernel lets only the
// runtime's user namespace idmap a host mount, so the idmapped bind sources
// are made here, before the clone, as detached trees with their attributes
// set; each op records its tree's fd (inherited by init, which attaches it).
// The returned fds own the trees.
Result<std::vector<Fd>> detach_idmapped_binds(Plan& plan);
// Sets "/" propagation, makes the rootfs a mount point; returns an O_PATH fd of it.
Result<Fd> prepare_root(const Plan& plan, const std::string& rootfs);
// Runs every op of the plan against the root.
Result<void> apply_ops(const Plan& plan, BorrowedFd root);
// pivot_root (or, with no_pivot, MS_MOVE + chroot) into the root; leaves no
// trace of the old root.
Result<void> enter_root(BorrowedFd root, bool no_pivot);
// After the pivot: sysctls, read-only paths, masked paths, read-only root.
Result<void> finalize(const Plan& plan);

}  // namespace brig::rootfs
