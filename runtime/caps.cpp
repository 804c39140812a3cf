#include "runtime/caps.hpp"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstring>
#include <charconv>

#include "runtime/core/log.hpp"
#include "runtime/core/sys.hpp"

namespace brig::runtime {

int kernel_last_cap() {
  // Read once per process: the kernel's value does not change.
  static int n = [] {
    int v = CAP_LAST_CAP;
    if (auto t = sys::read_attribute("/proc/sys/kernel/cap_last_cap"))
      std::from_chars(t->data(), t->data() + t->size(), v);
    return v;
  }();
  return n;
}

Result<CapSets> resolve_caps(const spec::Capabilities& c, int last_cap) {
  CapSets out;
  auto one = [&](const char* set, const std::optional<std::vector<std::string>>& names,
                 std::optional<std::vector<int>>& dst) -> Result<void> {
    if (!names) return {};
    dst.emplace();
    for (size_t i = 0; i < names->size(); i++) {
      const std::string& n = (*names)[i];
      cap_value_t v;
      if (cap_from_name(n.c_str(), &v) < 0)
        return fail_msg("process.capabilities.{}[{}]: unknown capability \"{}\"", set, i, n);
      if (v > last_cap) {
        if (std::find(out.unknown_to_kernel.begin(), out.unknown_to_kernel.end(), n) == out.unknown_to_kernel.end())
          out.unknown_to_kernel.push_back(n);
        continue;
      }
      dst->push_back(v);
    }
    return {};
  };
  TRY_VOID(one("bounding", c.bounding, out.bounding));
  TRY_VOID(one("effective", c.effective, out.effective));
  TRY_VOID(one("inheritable", c.inheritable, out.inheritable));
  TRY_VOID(one("permitted", c.permitted, out.permitted));
  TRY_VOID(one("ambient", c.ambient, out.ambient));
  return out;
}

Result<void> caps_before_user(const CapSets& s, bool uid_changes) {
  int last = kernel_last_cap();
  const std::vector<int> empty;
  const auto& keep = s.bounding ? *s.bounding : empty;
  for (int v = 0; v <= last; v++) {
    if (std::find(keep.begin(), keep.end(), v) != keep.end()) continue;
    if (::prctl(PR_CAPBSET_DROP, v, 0, 0, 0) < 0 && errno != EINVAL)
      return fail_errno("drop capability {} from the bounding set", v);
  }
  // setuid clears the capabilities only where no uid is left 0: to uid 0
  // there is nothing to keep them across.
  if (uid_changes && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail_errno("set keepcaps");
  return {};
}

Result<void> caps_after_user(const CapSets& s, bool uid_changes) {
  if (uid_changes) ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  cap_t caps = cap_init();
  if (!caps) return fail_errno("cap_init");
  auto set = [&](cap_flag_t flag, const std::optional<std::vector<int>>& v) {
    if (!v || v->empty()) return 0;
    std::vector<cap_value_t> vals(v->begin(), v->end());
    return cap_set_flag(caps, flag, static_cast<int>(vals.size()), vals.data(), CAP_SET);
  };
  int r = set(CAP_EFFECTIVE, s.effective) | set(CAP_PERMITTED, s.permitted) | set(CAP_INHERITABLE, s.inheritable);
  if (r == 0 && cap_set_proc(caps) < 0) r = -1;
  int e = errno;
  cap_free(caps);
  if (r < 0) return fail_err(e, "apply capabilities");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return fail_errno("clear ambient capabilities");
  // An ambient cap must also be permitted and inheritable; runc warns and
  // goes on when it is not (its own default config asks for such ones).
  // Those two sets are the ones just set: a cap missing from either is not
  // asked of the kernel, which would refuse it (EPERM).
  auto in = [](const std::optional<std::vector<int>>& set, int v) {
    return set && std::find(set->begin(), set->end(), v) != set->end();
  };
  if (s.ambient)
    for (int v : *s.ambient) {
      int refused = 0;  // kept before cap_to_name's allocation can change errno
      if (!in(s.permitted, v) || !in(s.inheritable, v))
        refused = EPERM;
      else if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0) < 0)
        refused = errno;
      if (refused && log::options().debug) {
        char* name = cap_to_name(v);
        log::debug(fmt::format("can't raise ambient capability {}: {}", name, std::strerror(refused)));
        cap_free(name);
      }
    }
  return {};
}

}  // namespace brig::runtime
