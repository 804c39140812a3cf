#include "rootfs/apply.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "rootfs/idmap.hpp"
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

// Files inside /proc a non-proc mount may cover (lxcfs and the like), as runc allows.
bool proc_file_allowed(const std::string& t) {
  static const char* const ok[] = {"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                                   "/proc/swaps",   "/proc/uptime",    "/proc/loadavg", "/proc/slabinfo",
                                   "/proc/net/dev", "/proc/sys/kernel/ns_last_pid"};
  for (const char* x : ok)
    if (t == x) return true;
  return false;
}

// The root the ops apply to, looked at once for all of them: its identity
// (no target may resolve to it), and the directory that consecutive device
// and symlink ops share (normally /dev), resolved once for the run of them.
// A mount may cover that directory, so every mount op forgets it.
struct Root {
  BorrowedFd fd;
  struct stat st {};
  // The directory the last device, symlink or made mount target went in
  // (see mount_target for how long it is kept).
  ParentDir dir;

  bool is(int fd) const {
    struct stat x;
    return ::fstat(fd, &x) == 0 && x.st_dev == st.st_dev && x.st_ino == st.st_ino;
  }
  // The parent directory of a device or symlink, made if missing.
  Result<BorrowedFd> parent(const std::string& path) {
    if (!dir.fd || dir.path != path) {
      dir = ParentDir{};
      TRY(dir.fd, mkdir_all_in_root(fd, path));
      dir.path = path;
    }
    return BorrowedFd(dir.fd.get());
  }
};

// The target of a mount, resolved (and made if missing) inside the root, with
// the checks no symlink may get around: never the root itself, never a file
// of the container's /proc (but the few allowed ones), and proc or sysfs only
// on an ordinary directory reached without a symlink.
//
// A mount can change what any path through its target resolves to, so the
// parent kept in root.dir is dropped, except where the target is one this
// call made in it: an empty directory (or file) made just now is on no path
// but through its own "." and "..", which resolve the same with a mount on
// it (the ".." of a mount's root is its mountpoint's parent). So the
// cgroup binds under /sys/fs/cgroup (one per v1 hierarchy), or /dev's pts,
// shm and mqueue, make their targets in one parent looked up once.
Result<Fd> mount_target(const Op& op, Root& root, bool file) {
  bool is_proc = op.kind == Op::Kind::fs && op.fstype == "proc";
  bool special = is_proc || (op.kind == Op::Kind::fs && op.fstype == "sysfs");
  Fd t;
  bool made = false, direct = false;
  if (special) {
    // proc and sysfs go on a directory reached without a symlink: where the
    // target is one, that is the only lookup (else the way below, which
    // makes a missing target and names what is wrong).
    if (auto d = open_in_root_nofollow(root.fd, op.target, O_PATH | O_DIRECTORY)) {
      t = std::move(*d);
      direct = true;
    }
  }
  if (!direct) {
    TRY(t, ensure_target(root.fd, op.target, file, &made, root.dir));
  }
  if (!made) root.dir = ParentDir{};
  // A target this call made is neither the root nor on procfs (see
  // ensure_target): two calls fewer for each missing one.
  if (!made && root.is(t.get())) return fail_msg("destination {} resolves to the container's root", op.target);
  if (made && !special) return t;
  if (special && !direct) {
    // The same target, reached again without a symlink, as a directory.
    auto d = open_in_root_nofollow(root.fd, op.target, O_PATH | O_DIRECTORY);
    if (!d) return fail_msg("filesystem \"{}\" must be mounted on ordinary directory", op.fstype);
    t = std::move(*d);
  }
  if (is_proc) return t;  // proc may go anywhere (in another proc too)
  struct statfs sf;
  if (::fstatfs(t.get(), &sf) < 0) return fail_errno("statfs {}", op.target);
  if (sf.f_type == PROC_SUPER_MAGIC && !proc_file_allowed(op.target))
    return fail_msg("\"{}\" cannot be mounted because it is inside /proc", op.target);
  return t;
}

bool selinux_enabled() {
  struct statfs sf;
  return ::statfs("/sys/fs/selinux", &sf) == 0 && sf.f_type == SELINUX_MAGIC;
}

// tmpcopyup: what the directory under a new tmpfs held is copied into it
// (files, directories, symlinks as links, nodes, with owner and mode). Both
// sides are walked by fd, one name at a time, never following a symlink.
Result<void> copy_tree(int from, int to, const std::string& where) {
  int dfd = ::openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail_errno("open {}", where);
  DIR* d = ::fdopendir(dfd);
  if (!d) {
    ::close(dfd);
    return fail_errno("read {}", where);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(d, ::closedir);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = where + "/" + name;
    struct stat st;
    if (::fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return fail_errno("stat {}", path);
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(to, name.c_str(), st.st_mode & 07777) < 0) return fail_errno("copy {}", path);
      int a = ::openat(from, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (a < 0) return fail_errno("open {}", path);
      Fd af(a);
      int b = ::openat(to, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (b < 0) return fail_errno("open copy of {}", path);
      Fd bf(b);
      TRY_VOID(copy_tree(af.get(), bf.get(), path));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(from, name.c_str(), target.data(), target.size());
      if (n < 0) return fail_errno("readlink {}", path);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), to, name.c_str()) < 0) return fail_errno("copy {}", path);
    } else if (S_ISREG(st.st_mode)) {
      int a = ::openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (a < 0) return fail_errno("open {}", path);
      Fd af(a);
      int b = ::openat(to, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
      if (b < 0) return fail_errno("copy {}", path);
      Fd bf(b);
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(af.get(), buf, sizeof buf);
        if (n < 0) return fail_errno("read {}", path);
        if (n == 0) break;
        TRY_VOID(sys::write_all(bf, std::string_view(buf, static_cast<size_t>(n))));
      }
    } else {
      if (::mknodat(to, name.c_str(), st.st_mode, st.st_rdev) < 0) return fail_errno("copy {}", path);
    }
    if (::fchownat(to, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno("chown copy of {}", path);
    if (!S_ISLNK(st.st_mode) && ::fchmodat(to, name.c_str(), st.st_mode & 07777, 0) < 0)
      return fail_errno("chmod copy of {}", path);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    (void)::utimensat(to, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  }
  return {};
}

// mount(2) on the checked target, through /proc/self/fd, where one call says
// what fsopen + fsconfig per option + fsmount + move_mount say: no recursive
// attributes, propagation, tmpcopyup or label, and options a comma-joined
// string can carry. Five to eight calls fewer a mount (~2 us each on this
// VM, contrib/bench/README.md). False where it does not apply or the kernel
// refuses: the caller then takes the fd path, whose error names the option
// the filesystem refused (the fs context's log), and which leaves nothing
// of this attempt behind: a failed mount(2) mounts nothing.
bool mounted_in_one_call(const Op& op, int target) {
  const MountFlags& f = op.flags;
  if (f.tmpcopyup || f.rattr_set || f.rattr_clr || f.propagation || !op.label.empty()) return false;
  struct Bit {
    uint64_t attr;
    unsigned long ms;
  };
  static constexpr Bit bits[] = {{MOUNT_ATTR_RDONLY, MS_RDONLY},       {MOUNT_ATTR_NOSUID, MS_NOSUID},
                                 {MOUNT_ATTR_NODEV, MS_NODEV},         {MOUNT_ATTR_NOEXEC, MS_NOEXEC},
                                 {MOUNT_ATTR_NOATIME, MS_NOATIME},     {MOUNT_ATTR_STRICTATIME, MS_STRICTATIME},
                                 {MOUNT_ATTR_NODIRATIME, MS_NODIRATIME}, {MOUNT_ATTR_NOSYMFOLLOW, MS_NOSYMFOLLOW}};
  uint64_t left = f.attr_set;
  unsigned long ms = 0;
  for (const Bit& b : bits)
    if (left & b.attr) {
      ms |= b.ms;
      left &= ~b.attr;
    }
  if (left) return false;
  for (const auto& o : f.sb_flags) {
    if (o == "sync") ms |= MS_SYNCHRONOUS;
    else if (o == "dirsync") ms |= MS_DIRSYNC;
    else if (o == "mand") ms |= MS_MANDLOCK;
    else if (o == "lazytime") ms |= MS_LAZYTIME;
  }
  std::string data;
  for (const auto& [k, v] : f.data) {
    if (k.find(',') != std::string::npos || v.find(',') != std::string::npos) return false;
    if (!data.empty()) data += ',';
    data += k;
    if (!v.empty()) data += '=' + v;
  }
  char at[32];
  std::snprintf(at, sizeof at, "/proc/self/fd/%d", target);
  return ::mount(op.source.empty() ? nullptr : op.source.c_str(), at, op.fstype.c_str(), ms,
                 data.empty() ? nullptr : data.c_str()) == 0;
}

Result<void> mount_fs(const Op& op, Root& root) {
  TRY(Fd target, mount_target(op, root, false));
  if (mounted_in_one_call(op, target.get())) return {};
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
  // linux.mountLabel: only with SELinux enabled, as runc (ignored otherwise).
  if (!op.label.empty() && selinux_enabled()) TRY_VOID(cfg(FSCONFIG_SET_STRING, "context", &op.label));
  TRY_VOID(cfg(FSCONFIG_CMD_CREATE, "", nullptr));
  unsigned attrs = static_cast<unsigned>(op.flags.attr_set);
  int mfd = ::fsmount(fs.get(), FSMOUNT_CLOEXEC, attrs & ~MOUNT_ATTR_RDONLY);
  if (mfd < 0) return fail_errno("fsmount");
  Fd m(mfd);
  if (op.flags.tmpcopyup) {
    auto dir = open_in_root(root.fd, op.target, O_RDONLY | O_DIRECTORY);
    if (!dir) return fail(std::move(dir.error()).context("tmpcopyup"));
    TRY_CTX_VOID(copy_tree(dir->get(), m.get(), op.target), "tmpcopyup");
  }
  if (attrs & MOUNT_ATTR_RDONLY) TRY_VOID(setattr(m.get(), MOUNT_ATTR_RDONLY, 0, false));
  TRY_VOID(attach(m.get(), target.get()));
  return after_attach(op, m.get());
}

// A detached copy of a bind mount's source, idmapped if asked, with the
// mount's own attributes set.
Result<Fd> bind_tree(const Op& op) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (op.flags.rbind ? AT_RECURSIVE : 0);
  int tfd = ::open_tree(AT_FDCWD, op.source.c_str(), flags);
  if (tfd < 0) return fail_errno("open_tree {}", op.source);
  Fd t(tfd);
  if (op.flags.idmap) {
    // Only a detached mount can be idmapped: before the attach.
    TRY(Fd userns, idmap_userns(op.uidMappings, op.gidMappings));
    struct mount_attr a {};
    a.attr_set = MOUNT_ATTR_IDMAP;
    a.userns_fd = static_cast<uint64_t>(userns.get());
    unsigned f = AT_EMPTY_PATH | (op.flags.ridmap ? AT_RECURSIVE : 0);
    if (::mount_setattr(t.get(), "", f, &a, sizeof a) < 0) return fail_errno("idmap {}", op.source);
  }
  TRY_VOID(setattr(t.get(), op.flags.attr_set, op.flags.attr_clr, false));
  return t;
}

Result<void> mount_bind(const Op& op, Root& root) {
  Fd made;
  if (op.tree_fd < 0) {
    TRY(made, bind_tree(op));
  }
  int t = op.tree_fd >= 0 ? op.tree_fd : made.get();
  struct stat st {};
  st.st_mode = S_IFDIR;
  if (!op.source_dir && ::fstat(t, &st) < 0) return fail_errno("stat {}", op.source);
  TRY(Fd target, mount_target(op, root, !S_ISDIR(st.st_mode)));
  TRY_VOID(attach(t, target.get()));
  return after_attach(op, t);
}

Result<void> make_device(const Op& op, Root& root) {
  auto [parent, name] = split_parent(op.target);
  TRY(BorrowedFd dir, root.parent(parent));
  mode_t type = op.dev_type == 'b' ? S_IFBLK : op.dev_type == 'p' ? S_IFIFO : S_IFCHR;
  dev_t dev = makedev(op.major, op.minor);
  if (::mknodat(dir.get(), name.c_str(), type | op.mode, dev) < 0) {
    if (errno != EEXIST) return fail_errno("mknod {}", op.target);
    if (::unlinkat(dir.get(), name.c_str(), 0) < 0) return fail_errno("remove {}", op.target);
    if (::mknodat(dir.get(), name.c_str(), type | op.mode, dev) < 0) return fail_errno("mknod {}", op.target);
  }
  // Made with the mode asked for (init's umask is 0) and owned by whoever
  // made it, unless the directory is set-group-ID or has a default ACL: the
  // node as made is looked at, and chmod and chown are made only where it
  // differs (one call for a node that came out right, not two).
  struct stat made {};
  if (::fstatat(dir.get(), name.c_str(), &made, AT_SYMLINK_NOFOLLOW) == 0 &&
      (made.st_mode & S_IFMT) == type && (made.st_mode & 07777) == (op.mode & 07777) && made.st_uid == op.uid &&
      made.st_gid == op.gid)
    return {};
  if (::fchmodat(dir.get(), name.c_str(), op.mode, 0) < 0) return fail_errno("chmod {}", op.target);
  if (::fchownat(dir.get(), name.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return fail_errno("chown {}", op.target);
  return {};
}

Result<void> make_symlink(const Op& op, Root& root) {
  auto [parent, name] = split_parent(op.target);
  TRY(BorrowedFd dir, root.parent(parent));
  if (::symlinkat(op.source.c_str(), dir.get(), name.c_str()) < 0 && errno != EEXIST)
    return fail_errno("symlink {}", op.target);
  return {};
}

// "remount" (and the cgroup tree made read-only): the mount already at the
// target gets the attributes, propagation and filesystem options of the op.
Result<void> remount(const Op& op, Root& root) {
  root.dir = ParentDir{};
  TRY(Fd t, open_in_root(root.fd, op.target, O_PATH));
  struct statx sx {};
  if (::statx(t.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0) return fail_errno("statx {}", op.target);
  if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    return fail_msg("remount {}: not a mount point", op.target);
  if (!op.flags.data.empty() || !op.flags.sb_flags.empty()) {
    int fs = ::fspick(t.get(), "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
    if (fs < 0) return fail_errno("fspick {}", op.target);
    Fd f(fs);
    for (const auto& [k, v] : op.flags.data) {
      int r = v.empty() ? ::fsconfig(f.get(), FSCONFIG_SET_FLAG, k.c_str(), nullptr, 0)
                        : ::fsconfig(f.get(), FSCONFIG_SET_STRING, k.c_str(), v.c_str(), 0);
      if (r < 0) return fail_errno("option {}", v.empty() ? k : k + "=" + v);
    }
    for (const auto& k : op.flags.sb_flags)
      if (::fsconfig(f.get(), FSCONFIG_SET_FLAG, k.c_str(), nullptr, 0) < 0) return fail_errno("option {}", k);
    if (::fsconfig(f.get(), FSCONFIG_CMD_RECONFIGURE, nullptr, nullptr, 0) < 0)
      return fail_errno("reconfigure {}", op.target);
  }
  TRY_VOID(setattr(t.get(), op.flags.attr_set, op.flags.attr_clr, false));
  return after_attach(op, t.get());
}

}  // namespace

Result<std::vector<Fd>> detach_idmapped_binds(Plan& plan) {
  std::vector<Fd> trees;
  for (auto& op : plan.ops) {
    if (op.kind != Op::Kind::bind || !op.flags.idmap) continue;
    auto t = bind_tree(op);
    if (!t) return fail(std::move(t.error()).context(describe(op)));
    op.tree_fd = t->get();
    trees.push_back(std::move(*t));
  }
  return trees;
}

namespace {

Result<void> apply_one(const Op& op, Root& root) {
  switch (op.kind) {
    case Op::Kind::bind: return mount_bind(op, root);
    case Op::Kind::fs: return mount_fs(op, root);
    case Op::Kind::symlink: return make_symlink(op, root);
    case Op::Kind::device: return make_device(op, root);
    case Op::Kind::setattr: return remount(op, root);
  }
  return {};
}

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// A masked file is covered by the container's /dev/null, but only if that
// really is the null device (a planted symlink or other node is refused).
// Looked up and checked once for all masked files (`null` caches it).
Result<Fd> null_device_tree(Fd& null) {
  if (!null) {
    TRY(Fd n, sys::openat2(AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW, kInRoot));
    struct stat st;
    if (::fstat(n.get(), &st) < 0) return fail_errno("stat /dev/null");
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
      return fail_msg("/dev/null is not the null device");
    null = std::move(n);
  }
  int t = ::open_tree(null.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (t < 0) return fail_errno("open_tree /dev/null");
  return Fd(t);
}

Result<void> mask(const std::string& path, Fd& null) {
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
  TRY(Fd tree, null_device_tree(null));
  return attach(tree.get(), fd->get());
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
  // Until the root is entered "/" is a slave (or private) tree: a shared one
  // would carry the rootfs bind back to the host, and pivot_root refuses
  // shared mounts. rootfsPropagation itself is applied at the end (finalize).
  uint64_t first = (plan.root_propagation & (MS_PRIVATE | MS_UNBINDABLE)) ? MS_PRIVATE : MS_SLAVE;
  if (::mount(nullptr, "/", nullptr, first | MS_REC, nullptr) < 0) return fail_errno("set propagation of /");
  int t = ::open_tree(AT_FDCWD, rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (t < 0) return fail_errno("bind rootfs {}", rootfs);
  Fd tree(t);
  if (::move_mount(tree.get(), "", AT_FDCWD, rootfs.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return fail_errno("bind rootfs {}", rootfs);
  return sys::open(rootfs, O_PATH | O_DIRECTORY);
}

Result<void> apply_ops(const Plan& plan, BorrowedFd root_fd) {
  Root root{root_fd};
  if (::fstat(root_fd.get(), &root.st) < 0) return fail_errno("stat the rootfs");
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
    // The old root, held by fd: after the pivot "." names the new root to
    // mount(2) (only umount follows the mount stacked on it), and making the
    // new root's tree rslave would undo the propagation the config asked for.
    TRY(Fd old_root, sys::open("/", O_PATH | O_DIRECTORY));
    if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_errno("pivot_root");
    // The old root now sits on top of the new one: cut it loose without
    // letting the unmount propagate anywhere.
    TRY_CTX_VOID(setattr(old_root.get(), 0, 0, true, MS_SLAVE), "make old root rslave");
    if (::umount2(".", MNT_DETACH) < 0) return fail_errno("unmount old root");
  }
  if (::chdir("/") < 0) return fail_errno("chdir /");
  return {};
}

Result<void> finalize(const Plan& plan) {
  // Sysctls go through the container's /proc/sys before it is made read-only.
  TRY_VOID(write_sysctls(plan.sysctl));
  for (const auto& p : plan.readonly) TRY_CTX_VOID(make_readonly(p), "readonly path {}", p);
  Fd null;
  for (const auto& p : plan.masked) TRY_CTX_VOID(mask(p, null), "masked path {}", p);
  if (plan.readonly_root) {
    struct mount_attr a {};
    a.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(AT_FDCWD, "/", 0, &a, sizeof a) < 0) return fail_errno("make root read-only");
  }
  // Last: an unbindable tree could not have been cloned for the steps above.
  if (plan.root_propagation && ::mount(nullptr, "/", nullptr, plan.root_propagation, nullptr) < 0)
    return fail_errno("set rootfsPropagation of /");
  return {};
}

}  // namespace brig::rootfs
