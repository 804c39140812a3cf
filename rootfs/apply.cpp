#include "rootfs/apply.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "rootfs/paths.hpp"
#include "runtime/core/sys.hpp"

namespace brig::rootfs {
namespace {

std::string describe(const Op& op) {
  switch (op.kind) {
    case Op::Kind::bind: return fmt::format("{}: bind {} on {}", op.origin, op.source, op.target);
    case Op::Kind::fs: return fmt::format("{}: mount {} on {}", op.origin, op.fstype, op.target);
    case Op::Kind::symlink: return fmt::format("{}: symlink {} -> {}", op.origin, op.target, op.source);
    case Op::Kind::device: return fmt::format("{}: create device {}", op.origin, op.target);
    case Op::Kind::setattr: return fmt::format("{}: set mount attributes of {}", op.origin, op.target);
  }
  return op.origin;
}

// The kernel's own words about a failed fsconfig, if it left any.
std::string fs_log(int fsfd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    buf[n] = 0;
    std::string m(buf, static_cast<size_t>(n));
    if (m.size() > 2 && m[1] == ' ') m = m.substr(2);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out;
}

Result<void> setattr(int fd, uint64_t set, uint64_t clr, bool recursive, uint64_t propagation = 0) {
  if (!set && !clr && !propagation) return {};
  struct mount_attr a {};
  a.attr_set = set;
  a.attr_clr = clr;
  a.propagation = propagation;
  unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (::mount_setattr(fd, "", flags, &a, sizeof a) < 0) return fail_errno("mount_setattr");
  return {};
}

Result<void> attach(int mfd, int target) {
  if (::move_mount(mfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return fail_errno("move_mount");
  return {};
}

Result<void> after_attach(const Op& op, int mfd) {
  TRY_VOID(setattr(mfd, op.flags.rattr_set, op.flags.rattr_clr, true));
  if (op.flags.propagation)
    TRY_VOID(setattr(mfd, 0, 0, op.flags.propagation_rec, op.flags.propagation));
  return {};
}

Result<void> mount_fs(const Op& op, BorrowedFd root) {
  TRY(Fd target, ensure_target(root, op.target, false));
  int fsfd = ::fsopen(op.fstype.c_str(), FSOPEN_CLOEXEC);
  if (fsfd < 0) return fail_errno("fsopen {}", op.fstype);
  Fd fs(fsfd);
  auto cfg = [&](unsigned cmd, const std::string& key, const std::string* val) -> Result<void> {
    if (::fsconfig(fs.get(), cmd, key.empty() ? nullptr : key.c_str(), val ? val->c_str() : nullptr, 0) < 0) {
      int e = errno;
      std::string detail = fs_log(fs.get());
      std::string what = key.empty() ? std::string("create") : (val ? key + "=" + *val : key);
      return fail_err(e, detail.empty() ? fmt::format("option {}", what)
                                        : fmt::format("option {} ({})", what, detail));
    }
    return {};
  };
  if (!op.source.empty()) {
    // Not every filesystem takes a source (proc ignores it; some refuse it).
    (void)cfg(FSCONFIG_SET_STRING, "source", &op.source);
  }
  for (const auto& f : op.flags.sb_flags)
    if (f == "sync" || f == "dirsync" || f == "mand" || f == "lazytime") TRY_VOID(cfg(FSCONFIG_SET_FLAG, f, nullptr));
  for (const auto& [k, v] : op.flags.data) {
    if (v.empty())
      TRY_VOID(cfg(FSCONFIG_SET_FLAG, k, nullptr));
    else
      TRY_VOID(cfg(FSCONFIG_SET_STRING, k, &v));
  }
  TRY_VOID(cfg(FSCONFIG_CMD_CREATE, "", nullptr));
  unsigned attrs = static_cast<unsigned>(op.flags.attr_set);
  int mfd = ::fsmount(fs.get(), FSMOUNT_CLOEXEC, attrs);
  if (mfd < 0) return fail_errno("fsmount");
  Fd m(mfd);
  TRY_VOID(attach(m.get(), target.get()));
  return after_attach(op, m.get());
}

Result<void> mount_bind(const Op& op, BorrowedFd root) {
  if (op.flags.idmap)
    return fail_msg("idmapped mounts are not supported yet");
  struct stat st;
  if (::stat(op.source.c_str(), &st) < 0) return fail_errno("stat {}", op.source);
  TRY(Fd target, ensure_target(root, op.target, !S_ISDIR(st.st_mode)));
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (op.flags.rbind ? AT_RECURSIVE : 0);
  int tfd = ::open_tree(AT_FDCWD, op.source.c_str(), flags);
  if (tfd < 0) return fail_errno("open_tree {}", op.source);
  Fd t(tfd);
  TRY_VOID(setattr(t.get(), op.flags.attr_set, op.flags.attr_clr, false));
  TRY_VOID(attach(t.get(), target.get()));
  return after_attach(op, t.get());
}

Result<void> make_device(const Op& op, BorrowedFd root) {
  auto [parent, name] = split_parent(op.target);
  TRY(Fd dir, mkdir_all_in_root(root, parent));
  mode_t type = op.dev_type == 'b' ? S_IFBLK : op.dev_type == 'p' ? S_IFIFO : S_IFCHR;
  dev_t dev = makedev(op.major, op.minor);
  if (::mknodat(dir.get(), name.c_str(), type | op.mode, dev) < 0) {
    if (errno != EEXIST) return fail_errno("mknod {}", op.target);
    if (::unlinkat(dir.get(), name.c_str(), 0) < 0) return fail_errno("remove {}", op.target);
    if (::mknodat(dir.get(), name.c_str(), type | op.mode, dev) < 0) return fail_errno("mknod {}", op.target);
  }
  if (::fchmodat(dir.get(), name.c_str(), op.mode, 0) < 0) return fail_errno("chmod {}", op.target);
  if (::fchownat(dir.get(), name.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return fail_errno("chown {}", op.target);
  return {};
}

Result<void> make_symlink(const Op& op, BorrowedFd root) {
  auto [parent, name] = split_parent(op.target);
  TRY(Fd dir, mkdir_all_in_root(root, parent));
  if (::symlinkat(op.source.c_str(), dir.get(), name.c_str()) < 0 && errno != EEXIST)
    return fail_errno("symlink {}", op.target);
  return {};
}

Result<void> apply_one(const Op& op, BorrowedFd root) {
  switch (op.kind) {
    case Op::Kind::bind: return mount_bind(op, root);
    case Op::Kind::fs: return mount_fs(op, root);
    case Op::Kind::symlink: return make_symlink(op, root);
    case Op::Kind::device: return make_device(op, root);
    case Op::Kind::setattr: {
      TRY(Fd t, open_in_root(root, op.target, O_PATH | O_DIRECTORY));
      return setattr(t.get(), op.flags.attr_set, op.flags.attr_clr, false);
    }
  }
  return {};
}

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// A masked file is covered by the container's /dev/null, but only if that
// really is the null device (a planted symlink or other node is refused).
Result<Fd> null_device_tree() {
  TRY(Fd n, sys::openat2(AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW, kInRoot));
  struct stat st;
  if (::fstat(n.get(), &st) < 0) return fail_errno("stat /dev/null");
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
    return fail_msg("/dev/null is not the null device");
  int t = ::open_tree(n.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (t < 0) return fail_errno("open_tree /dev/null");
  return Fd(t);
}

Result<void> mask(const std::string& path) {
  auto fd = sys::openat2(AT_FDCWD, path, O_PATH, kInRoot);
  if (!fd) {
    if (fd.error().err == ENOENT) return {};
    return fail(std::move(fd.error()));
  }
  struct stat st;
  if (::fstat(fd->get(), &st) < 0) return fail_errno("stat {}", path);
  if (S_ISDIR(st.st_mode)) {
    int fsfd = ::fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fsfd < 0) return fail_errno("fsopen tmpfs");
    Fd fs(fsfd);
    if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) return fail_errno("create tmpfs");
    int m = ::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
    if (m < 0) return fail_errno("fsmount tmpfs");
    Fd mf(m);
    return attach(mf.get(), fd->get());
  }
  TRY(Fd null, null_device_tree());
  return attach(null.get(), fd->get());
}

Result<void> make_readonly(const std::string& path) {
  auto fd = sys::openat2(AT_FDCWD, path, O_PATH, kInRoot);
  if (!fd) {
    if (fd.error().err == ENOENT) return {};
    return fail(std::move(fd.error()));
  }
  int t = ::open_tree(fd->get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (t < 0) return fail_errno("open_tree");
  Fd tree(t);
  TRY_VOID(setattr(tree.get(), MOUNT_ATTR_RDONLY, 0, true));
  return attach(tree.get(), fd->get());
}

}  // namespace

Result<Fd> prepare_root(const Plan& plan, const std::string& rootfs) {
  if (::mount(nullptr, "/", nullptr, plan.root_propagation, nullptr) < 0)
    return fail_errno("set propagation of /");
  int t = ::open_tree(AT_FDCWD, rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (t < 0) return fail_errno("bind rootfs {}", rootfs);
  Fd tree(t);
  if (::move_mount(tree.get(), "", AT_FDCWD, rootfs.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return fail_errno("bind rootfs {}", rootfs);
  return sys::open(rootfs, O_PATH | O_DIRECTORY);
}

Result<void> apply_ops(const Plan& plan, BorrowedFd root) {
  for (const auto& op : plan.ops) {
    auto r = apply_one(op, root);
    if (!r) return fail(std::move(r.error()).context(describe(op)));
  }
  return {};
}

Result<void> enter_root(BorrowedFd root, bool no_pivot) {
  if (::fchdir(root.get()) < 0) return fail_errno("chdir to rootfs");
  if (no_pivot) {
    if (::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0) return fail_errno("move rootfs to /");
    if (::chroot(".") < 0) return fail_errno("chroot");
  } else {
    if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_errno("pivot_root");
    // The old root now sits on top of the new one: cut it loose without
    // letting the unmount propagate anywhere.
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) return fail_errno("make old root rslave");
    if (::umount2(".", MNT_DETACH) < 0) return fail_errno("unmount old root");
  }
  if (::chdir("/") < 0) return fail_errno("chdir /");
  return {};
}

Result<void> finalize(const Plan& plan) {
  for (const auto& p : plan.readonly) TRY_CTX_VOID(make_readonly(p), "readonly path {}", p);
  for (const auto& p : plan.masked) TRY_CTX_VOID(mask(p), "masked path {}", p);
  if (plan.readonly_root) {
    struct mount_attr a {};
    a.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(AT_FDCWD, "/", 0, &a, sizeof a) < 0) return fail_errno("make root read-only");
  }
  return {};
}

}  // namespace brig::rootfs
