// See selfexe.hpp.
#include "runtime/selfexe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/core/fd.hpp"
#include "runtime/core/sys.hpp"

extern char** environ;

namespace brig::runtime {
namespace {

constexpr const char* kMemfdName = "brig-sealed";
// Set across the re-exec: a second unprotected start is an error, not a loop.
constexpr const char* kMarker = "_BRIG_EXE_REEXEC";

bool running_sealed_memfd() {
  std::array<char, 256> buf{};
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return false;
  std::string link(buf.data(), static_cast<size_t>(n));
  return link.starts_with(std::string("/memfd:") + kMemfdName);
}

// Our own binary, as a detached read-only bind mount (an O_PATH fd).
Result<Fd> readonly_view() {
  int t = ::open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (t < 0) return fail_errno("open_tree /proc/self/exe");
  Fd tree(t);
  struct mount_attr a {};
  a.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &a, sizeof a) < 0)
    return fail_errno("mount_setattr read-only /proc/self/exe");
  return tree;
}

// Our own binary, copied into a memfd sealed against every write.
Result<Fd> sealed_copy() {
  TRY(Fd self, sys::open("/proc/self/exe", O_RDONLY));
  struct stat st;
  if (::fstat(self.get(), &st) < 0) return fail_errno("stat /proc/self/exe");
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_EXEC
  int mfd = ::memfd_create(kMemfdName, flags | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = ::memfd_create(kMemfdName, flags);
#else
  int mfd = ::memfd_create(kMemfdName, flags);
#endif
  if (mfd < 0) return fail_errno("memfd_create");
  Fd copy(mfd);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(copy.get(), self.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n < 0) return fail_errno("copy /proc/self/exe");
    if (n == 0) return fail_msg("copy /proc/self/exe: short read");
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    return fail_errno("seal memfd");
  return copy;
}

}  // namespace

bool needs_protected_exe(const spec::Config& cfg) {
  if (!cfg.linux) return true;
  for (const auto& n : cfg.linux->namespaces) {
    if (n.type != "user") continue;
    if (!n.path) return false;  // a new user namespace
    // Joined: safe unless it is our own (the host's) user namespace.
    struct stat joined, own;
    if (::stat(n.path->c_str(), &joined) < 0 || ::stat("/proc/self/ns/user", &own) < 0) return true;
    return joined.st_dev == own.st_dev && joined.st_ino == own.st_ino;
  }
  return true;
}

bool exe_protected() {
  struct statvfs sv;
  if (::statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY)) return true;
  return running_sealed_memfd();
}

Result<void> reexec_protected() {
  bool again = std::getenv(kMarker) != nullptr;
  ::unsetenv(kMarker);  // never passed on (hooks, the container)
  if (exe_protected()) return {};
  if (again) return fail_msg("self-exe protection: still writable after the re-exec");

  auto view = readonly_view();
  if (!view) {
    auto copy = sealed_copy();
    if (!copy) return fail(std::move(copy.error()).context("self-exe protection"));
    view = std::move(copy);
  }
  TRY(std::string cmdline, sys::read_file("/proc/self/cmdline"));
  std::vector<char*> argv;
  for (size_t i = 0; i < cmdline.size(); i += std::char_traits<char>::length(cmdline.data() + i) + 1)
    argv.push_back(cmdline.data() + i);
  argv.push_back(nullptr);
  ::setenv(kMarker, "1", 1);
  ::execveat(view->get(), "", argv.data(), environ, AT_EMPTY_PATH);
  int e = errno;
  ::unsetenv(kMarker);
  return fail_err(e, "self-exe protection: execveat");
}

}  // namespace brig::runtime
