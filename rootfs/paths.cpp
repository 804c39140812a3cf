#include "rootfs/paths.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
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
                     bool* made = nullptr) {
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

Result<Fd> ensure_target(BorrowedFd root, const std::string& path, bool file, bool* made) {
  if (made) *made = false;
  auto fd = open_in_root(root, path, O_PATH);
  if (fd) return fd;
  if (fd.error().err != ENOENT) return fd;
  if (!file) return make_dirs(root, path, 0755, true, made);
  auto [parent, name] = split_parent(path);
  TRY(Fd dir, mkdir_all_in_root(root, parent));
  int f = ::openat(dir.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f < 0 && errno != EEXIST) return fail_errno("create {}", path);
  if (f < 0) return open_in_root(root, path, O_PATH);
  ::close(f);
  // Ours, as above.
  int p = ::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (p < 0) return fail_errno("open {}", path);
  if (made) *made = true;
  return Fd(p);
}

}  // namespace brig::rootfs
