// Process attributes past the user and capabilities: scheduler, I/O
// priority, personality, CPU affinity, LSM labels.
#include "runtime/attributes.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "runtime/core/sys.hpp"

namespace brig::runtime {
namespace {

struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

int policy_of(const std::string& p) {
  static const std::pair<const char*, int> t[] = {{"SCHED_OTHER", 0}, {"SCHED_FIFO", 1}, {"SCHED_RR", 2},
                                                  {"SCHED_BATCH", 3}, {"SCHED_ISO", 4},  {"SCHED_IDLE", 5},
                                                  {"SCHED_DEADLINE", 6}};
  for (auto& [n, v] : t)
    if (p == n) return v;
  return -1;
}

uint64_t sched_flag_of(const std::string& f) {
  static const std::pair<const char*, uint64_t> t[] = {
      {"SCHED_FLAG_RESET_ON_FORK", 0x01}, {"SCHED_FLAG_RECLAIM", 0x02},     {"SCHED_FLAG_DL_OVERRUN", 0x04},
      {"SCHED_FLAG_KEEP_POLICY", 0x08},   {"SCHED_FLAG_KEEP_PARAMS", 0x10}, {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
      {"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40}};
  for (auto& [n, v] : t)
    if (f == n) return v;
  return 0;
}

bool lsm_enabled(const char* which) {
  if (std::string(which) == "apparmor") {
    auto v = sys::read_file("/sys/module/apparmor/parameters/enabled");
    return v && v->starts_with("Y");
  }
  struct statfs s;
  return ::statfs("/sys/fs/selinux", &s) == 0 && s.f_type == SELINUX_MAGIC;
}

// Writes the label for the next exec to /proc/thread-self/attr/..., making
// sure the file really is procfs (not something mounted over it from inside:
// CVE-2025-52881 class).
Result<void> write_exec_attr(const std::string& rel, const std::string& value) {
  TRY(Fd fd, sys::open("/proc/thread-self/attr/" + rel, O_WRONLY | O_NOFOLLOW));
  struct statfs s;
  if (::fstatfs(fd.get(), &s) < 0) return fail_errno("statfs /proc/thread-self/attr/{}", rel);
  if (s.f_type != PROC_SUPER_MAGIC) return fail_msg("/proc/thread-self/attr/{}: not on procfs", rel);
  if (::write(fd.get(), value.data(), value.size()) < 0) return fail_errno("write /proc/thread-self/attr/{}", rel);
  return {};
}

}  // namespace

Result<std::vector<int>> parse_cpu_list(const std::string& list) {
  std::vector<int> cpus;
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find(',', i);
    if (j == std::string::npos) j = list.size();
    std::string part = list.substr(i, j - i);
    i = j + 1;
    auto dash = part.find('-');
    try {
      size_t used = 0;
      int a = std::stoi(part, &used);
      if (dash == std::string::npos) {
        if (used != part.size() || a < 0) throw std::invalid_argument(part);
        cpus.push_back(a);
        continue;
      }
      int b = std::stoi(part.substr(dash + 1), &used);
      if (used != part.size() - dash - 1 || a < 0 || b < a || b >= CPU_SETSIZE) throw std::invalid_argument(part);
      for (int c = a; c <= b; c++) cpus.push_back(c);
    } catch (const std::exception&) {
      return fail_msg("invalid CPU list \"{}\"", list);
    }
  }
  if (cpus.empty()) return fail_msg("invalid CPU list \"{}\"", list);
  return cpus;
}

Result<void> set_cpu_affinity(const std::string& list, const char* field) {
  auto cpus = parse_cpu_list(list);
  if (!cpus) return fail(std::move(cpus.error()).context(field));
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : *cpus) CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof set, &set) < 0) return fail_errno("{}: sched_setaffinity {}", field, list);
  return {};
}

Result<void> check_lsm(const spec::Process& p) {
  if (p.apparmorProfile && !p.apparmorProfile->empty() && !lsm_enabled("apparmor"))
    return fail_msg("process.apparmorProfile: apparmor profile is specified in config, but apparmor is not enabled on this system");
  if (p.selinuxLabel && !p.selinuxLabel->empty() && !lsm_enabled("selinux"))
    return fail_msg("selinux label is specified in config, but selinux is disabled or not supported");
  return {};
}

Result<void> apply_attributes(const spec::Process& p, const spec::Config* cfg) {
  if (p.scheduler) {
    const auto& s = *p.scheduler;
    int policy = policy_of(s.policy);
    if (policy < 0) return fail_msg("process.scheduler.policy: unknown policy \"{}\"", s.policy);
    SchedAttr a{};
    a.size = sizeof a;
    a.sched_policy = static_cast<uint32_t>(policy);
    for (const auto& f : s.flags) a.sched_flags |= sched_flag_of(f);
    a.sched_nice = s.nice.value_or(0);
    a.sched_priority = static_cast<uint32_t>(s.priority.value_or(0));
    a.sched_runtime = s.runtime.value_or(0);
    a.sched_deadline = s.deadline.value_or(0);
    a.sched_period = s.period.value_or(0);
    if (::syscall(SYS_sched_setattr, 0, &a, 0) < 0) return fail_errno("process.scheduler: sched_setattr {}", s.policy);
  }
  if (p.ioPriority) {
    const auto& io = *p.ioPriority;
    int cls = io.class_ == "IOPRIO_CLASS_RT" ? 1 : io.class_ == "IOPRIO_CLASS_BE" ? 2 : io.class_ == "IOPRIO_CLASS_IDLE" ? 3 : 0;
    if (!cls) return fail_msg("process.ioPriority.class: unknown class \"{}\"", io.class_);
    if (::syscall(SYS_ioprio_set, 1 /*IOPRIO_WHO_PROCESS*/, 0, (cls << 13) | io.priority) < 0)
      return fail_errno("process.ioPriority: ioprio_set {} {}", io.class_, io.priority);
  }
  if (cfg && cfg->linux && cfg->linux->personality) {
    const auto& per = *cfg->linux->personality;
    unsigned long domain = per.domain == "LINUX32" ? PER_LINUX32 : PER_LINUX;
    if (per.domain != "LINUX" && per.domain != "LINUX32")
      return fail_msg("linux.personality.domain: unknown domain \"{}\"", per.domain);
    if (!per.flags.empty()) return fail_msg("linux.personality.flags: no flags are supported");
    if (::personality(domain) < 0) return fail_errno("linux.personality: personality {}", per.domain);
  }
  return {};
}

Result<void> apply_exec_labels(const spec::Process& p) {
  if (p.apparmorProfile && !p.apparmorProfile->empty())
    TRY_CTX_VOID(write_exec_attr(sys::exists("/proc/thread-self/attr/apparmor") ? "apparmor/exec" : "exec",
                                 "exec " + *p.apparmorProfile),
                 "process.apparmorProfile");
  if (p.selinuxLabel && !p.selinuxLabel->empty())
    TRY_CTX_VOID(write_exec_attr("exec", *p.selinuxLabel), "process.selinuxLabel");
  return {};
}

}  // namespace brig::runtime
