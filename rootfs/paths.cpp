#include "rootfs/paths.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/core/sys.hpp"

namespace brig::rootfs {

namespace {
constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
std::string rel(const std::string& p) {
  size_t i = p.find_first_not_of('/');
  return i == std::string::npos ? "." : p.substr(i);
}
}  // namespace

std::pair<std::string, std::string> split_parent(const std::string& path) {
  auto i = path.rfind('/');
  if (i == std::string::npos) return {"/", path};
  return {i == 0 ? "/" : path.substr(0, i), path.substr(i + 1)};
}

Result<Fd> open_in_root(BorrowedFd root, const std::string& path, int flags) {
  return sys::openat2(root, rel(path), static_cast<uint64_t>(flags), kResolve);
}

Result<Fd> open_in_root_nofollow(BorrowedFd root, const std::string& path, int flags) {
  return sys::openat2(root, rel(path), static_cast<uint64_t>(flags), kResolve | RESOLVE_NO_SYMLINKS);
}

namespace {

// mkdir_all_in_root, told whether `path` itself was just seen missing (ENOENT
// from the caller's own openat2): then its first lookup is skipped. `made`,
// if given, says whether the last name is a directory this call created in
// its resolved parent and the fd is that new directory (see ensure_target).
Result<Fd> make_dirs(BorrowedFd root, const std::string& path, mode_t mode, bool known_missing,
                     bool* made = nullptr, Fd* parent_out = nullptr) {
  // The common cases, all there or only the last name missing: resolve the
  // path or its parent once instead of walking every level (same
  // resolution, same mkdirat as the walk below).
  if (!known_missing)
    if (auto fd = sys::openat2(root, rel(path), O_PATH | O_DIRECTORY, kResolve)) return fd;
  if (auto [parent, name] = split_parent(path); !name.empty() && name != "." && name != "..") {
    if (auto dir = sys::openat2(root, rel(parent), O_PATH | O_DIRECTORY, kResolve)) {
      if (::mkdirat(dir->get(), name.c_str(), mode) == 0) {
        // Ours: opened where it was made, one name, never a symlink.
        int fd = ::openat(dir->get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return fail_errno("open /{}", rel(path));
        if (made) *made = true;
        if (parent_out) *parent_out = std::move(*dir);
        return Fd(fd);
      }
      if (errno != EEXIST) return fail_errno("mkdir /{}", rel(path));
      if (auto there = sys::openat2(root, rel(path), O_PATH | O_DIRECTORY, kResolve)) return there;
    }
  }
  TRY(Fd cur, sys::openat2(root, ".", O_PATH | O_DIRECTORY, kResolve));
  std::string prefix;
  size_t i = 0;
  std::string r = rel(path);
  if (r == ".") return cur;
  while (i <= r.size()) {
    size_t j = r.find('/', i);
    if (j == std::string::npos) j = r.size();
    std::string comp = r.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    prefix += (prefix.empty() ? "" : "/") + comp;
    auto next = sys::openat2(root, prefix, O_PATH | O_DIRECTORY, kResolve);
    if (!next && next.error().err == ENOENT) {
      // `cur` was resolved inside the root and comp is one name: mkdirat
      // never follows a symlink in its last component.
      if (::mkdirat(cur.get(), comp.c_str(), mode) < 0 && errno != EEXIST)
        return fail_errno("mkdir {}", "/" + prefix);
      next = sys::openat2(root, prefix, O_PATH | O_DIRECTORY, kResolve);
    }
    if (!next) return fail(std::move(next.error()));
    cur = std::move(*next);
  }
  return cur;
}

}  // namespace

Result<Fd> mkdir_all_in_root(BorrowedFd root, const std::string& path, mode_t mode) {
  return make_dirs(root, path, mode, false);
}

namespace {

// The last name of a target seen missing, made in `dir` (the resolved
// parent): an empty directory, or an empty file. Opened where it was made,
// one name, never a symlink. Nullopt when someone else made it first (EEXIST).
Result<std::optional<Fd>> make_in(BorrowedFd dir, const std::string& name, const std::string& path, bool file) {
  if (!file) {
    if (::mkdirat(dir.get(), name.c_str(), 0755) < 0) {
      if (errno == EEXIST) return std::optional<Fd>();
      return fail_errno("mkdir {}", path);
    }
  } else {
    int f = ::openat(dir.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0) {
      if (errno == EEXIST) return std::optional<Fd>();
      return fail_errno("create {}", path);
    }
    ::close(f);
  }
  int p = ::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC | (file ? 0 : O_DIRECTORY));
  if (p < 0) return fail_errno("open {}", path);
  return std::optional<Fd>(Fd(p));
}

}  // namespace

Result<Fd> ensure_target(BorrowedFd root, const std::string& path, bool file, bool* made) {
  ParentDir none;
  return ensure_target(root, path, file, made, none);
}

Result<Fd> ensure_target(BorrowedFd root, const std::string& path, bool file, bool* made, ParentDir& parent) {
  if (made) *made = false;
  auto fd = open_in_root(root, path, O_PATH);
  if (fd) return fd;
  if (fd.error().err != ENOENT) return fd;
  auto [dir_path, name] = split_parent(path);
  if (parent.fd && parent.path == dir_path && !name.empty() && name != "." && name != "..") {
    TRY(auto t, make_in(parent.fd, name, path, file));
    if (t) {
      if (made) *made = true;
      return std::move(*t);
    }
    return open_in_root(root, path, O_PATH);
  }
  parent.fd = Fd();
  parent.path.clear();
  if (!file) {
    bool ours = false;
    TRY(Fd t, make_dirs(root, path, 0755, true, &ours, &parent.fd));
    if (made) *made = ours;
    if (parent.fd) parent.path = dir_path;
    return t;
  }
  TRY(Fd dir, mkdir_all_in_root(root, dir_path));
  TRY(auto t, make_in(dir, name, path, file));
  if (!t) return open_in_root(root, path, O_PATH);
  if (made) *made = true;
  parent = ParentDir{dir_path, std::move(dir)};
  return std::move(*t);
}

}  // namespace brig::rootfs
