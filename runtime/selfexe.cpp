// See selfexe.hpp. The copy costs one memfd and one exec of brig itself, so it
// is only made where a container process could use it.
#include "runtime/selfexe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "runtime/core/fd.hpp"
#include "runtime/core/sys.hpp"

extern char** environ;

namespace brig::runtime {
namespace {

constexpr const char* kMemfdName = "brig-sealed";

bool has_ptrace(const std::optional<std::vector<std::string>>& set) {
  return set && std::any_of(set->begin(), set->end(), [](const std::string& c) {
    return c == "CAP_SYS_PTRACE" || c == "SYS_PTRACE";
  });
}

}  // namespace

bool may_ptrace(const spec::Process& proc) {
  if (!proc.capabilities) return false;
  const auto& c = *proc.capabilities;
  return has_ptrace(c.bounding) || has_ptrace(c.effective) || has_ptrace(c.permitted) ||
         has_ptrace(c.inheritable) || has_ptrace(c.ambient);
}

bool needs_sealed_exe(const spec::Config& cfg, const spec::Process* extra, bool ptrace_seen) {
  if (cfg.linux) {
    for (const auto& n : cfg.linux->namespaces)
      if (n.type == "user") return false;  // ptrace rights end at the user namespace
  }
  return ptrace_seen || (cfg.process && may_ptrace(*cfg.process)) || (extra && may_ptrace(*extra));
}

bool running_sealed() {
  std::array<char, 256> buf{};
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return false;
  std::string link(buf.data(), static_cast<size_t>(n));
  return link.starts_with(std::string("/memfd:") + kMemfdName);
}

Result<void> reexec_sealed() {
  if (running_sealed()) return {};
  TRY(Fd self, sys::open("/proc/self/exe", O_RDONLY));
  struct stat st;
  if (::fstat(self.get(), &st) < 0) return fail_errno("self-exe protection: stat /proc/self/exe");
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_EXEC
  int mfd = ::memfd_create(kMemfdName, flags | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = ::memfd_create(kMemfdName, flags);
#else
  int mfd = ::memfd_create(kMemfdName, flags);
#endif
  if (mfd < 0) return fail_errno("self-exe protection: memfd_create");
  Fd copy(mfd);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(copy.get(), self.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n < 0) return fail_errno("self-exe protection: copy /proc/self/exe");
    if (n == 0) return fail_msg("self-exe protection: copy /proc/self/exe: short read");
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    return fail_errno("self-exe protection: seal memfd");

  TRY(std::string cmdline, sys::read_file("/proc/self/cmdline"));
  std::vector<char*> argv;
  for (size_t i = 0; i < cmdline.size(); i += std::char_traits<char>::length(cmdline.data() + i) + 1)
    argv.push_back(cmdline.data() + i);
  argv.push_back(nullptr);
  ::execveat(copy.get(), "", argv.data(), environ, AT_EMPTY_PATH);
  return fail_errno("self-exe protection: execveat sealed copy");
}

}  // namespace brig::runtime
