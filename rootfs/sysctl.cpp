#include "rootfs/sysctl.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/core/sys.hpp"

namespace brig::rootfs {
namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// The IPC namespace's own knobs (ipc/ipc_sysctl.c and ipc/mq_sysctl.c).
bool is_ipc_key(const std::string& k) {
  static const char* const keys[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                     "kernel.sem", "kernel.shmall", "kernel.shmmax",
                                     "kernel.shmmni", "kernel.shm_rmid_forced",
                                     "kernel.sem_next_id", "kernel.msg_next_id",
                                     "kernel.shm_next_id", "kernel.auto_msgmni"};
  return std::find(std::begin(keys), std::end(keys), k) != std::end(keys) || starts_with(k, "fs.mqueue.");
}

// The dotted form of a key, whichever separator it was written with.
std::string dotted(const std::string& key) {
  if (key.find('/') == std::string::npos) return key;
  std::string out = key;
  for (auto& c : out) c = c == '/' ? '.' : c == '.' ? '/' : c;
  return out;
}

}  // namespace

Result<std::string> sysctl_path(const std::string& key) {
  bool slash = key.find('/') != std::string::npos;
  char sep = slash ? '/' : '.';
  std::string path;
  size_t i = 0;
  while (true) {
    size_t j = key.find(sep, i);
    std::string part = key.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || part == "." || part == "..")
      return fail_msg("linux.sysctl: invalid key \"{}\"", key);
    if (!path.empty()) path += '/';
    path += part;
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return path;
}

Result<void> validate_sysctl(const std::string& key, const ns::Plan& ns, const spec::Config& cfg) {
  TRY_VOID(sysctl_path(key));
  std::string k = dotted(key);
  if (is_ipc_key(k)) {
    if (ns.has("ipc")) return {};
    return fail_msg("sysctl \"{}\" is not allowed in the hosts ipc namespace", key);
  }
  if (starts_with(k, "net.")) {
    if (ns.has("network")) return {};
    return fail_msg("sysctl \"{}\" not allowed in host network namespace", key);
  }
  if (ns.has("uts") && (k == "kernel.hostname" || k == "kernel.domainname")) {
    const auto& field = k == "kernel.hostname" ? cfg.hostname : cfg.domainname;
    if (field && !field->empty())
      return fail_msg("sysctl \"{}\" is not allowed as it conflicts with the OCI \"{}\" field", key,
                      k == "kernel.hostname" ? "hostname" : "domainname");
    return {};
  }
  return fail_msg("sysctl \"{}\" is not in a separate kernel namespace", key);
}

Result<std::vector<Sysctl>> plan_sysctls(const spec::Config& cfg, const ns::Plan& ns) {
  std::vector<Sysctl> out;
  if (!cfg.linux) return out;
  for (const auto& [key, value] : cfg.linux->sysctl) {
    TRY_VOID(validate_sysctl(key, ns, cfg));
    TRY(std::string path, sysctl_path(key));
    out.push_back({key, path, value});
  }
  return out;
}

Result<void> write_sysctls(const std::vector<Sysctl>& sysctls) {
  if (sysctls.empty()) return {};
  constexpr uint64_t kNoLinks = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  auto dir = sys::openat2(AT_FDCWD, "/proc/sys", O_PATH | O_DIRECTORY, kNoLinks);
  if (!dir) return fail(std::move(dir.error()).context("sysctl"));
  struct statfs sf;
  if (::fstatfs(dir->get(), &sf) < 0) return fail_errno("sysctl: statfs /proc/sys");
  if (sf.f_type != PROC_SUPER_MAGIC) return fail_msg("sysctl: /proc/sys is not on a proc filesystem");
  for (const auto& s : sysctls) {
    auto f = sys::openat2(dir->get(), s.path, O_WRONLY | O_TRUNC,
                          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    if (!f) return fail_err(f.error().err, fmt::format("open /proc/sys/{}", s.path));
    if (::write(f->get(), s.value.data(), s.value.size()) < 0)
      return fail_errno("write /proc/sys/{}", s.path);
  }
  return {};
}

}  // namespace brig::rootfs
