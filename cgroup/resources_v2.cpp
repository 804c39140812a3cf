// linux.resources -> cgroup v2 files (one unified directory), converting v1
// values the way runc does.
#include <charconv>
#include <set>

#include "cgroup/resources.hpp"
#include "cgroup/resources_common.hpp"

namespace brig::cgroup {

using detail::fld;
using Check = Write::Check;

uint64_t shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_to_io_weight(uint64_t weight) {
  if (weight == 0) return 0;
  if (weight < 10) weight = 10;
  return 1 + (weight - 10) * 9999 / 990;
}

Result<std::string> v2_swap_max(int64_t swap, int64_t limit) {
  // Unlimited memory with swap unset: unlimited swap too (v1 compatibility).
  if (limit == -1 && swap == 0) return std::string("max");
  if (swap == -1) return std::string("max");
  if (swap == 0) return std::string();
  if (limit == 0 || limit == -1) return fail_msg("unable to set swap limit without memory limit");
  if (limit < 0) return fail_msg("invalid memory value: {}", limit);
  if (swap < limit) return fail_msg("memory+swap limit should be >= memory limit");
  return std::to_string(swap - limit);
}

// ^[a-z][a-z0-9_]*\.[a-z0-9_.]+$, by hand: a std::regex recursed once per
// character, and a key of some 100k characters overflowed the stack.
bool unified_key_form(std::string_view k) {
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; };
  if (k.empty() || k[0] < 'a' || k[0] > 'z') return false;
  size_t i = 1;
  while (i < k.size() && word(k[i])) ++i;
  if (i + 1 >= k.size() || k[i] != '.') return false;  // a '.' and at least one character after it
  for (++i; i < k.size(); ++i)
    if (!word(k[i]) && k[i] != '.') return false;
  return true;
}

Result<void> check_unified_key(const std::string& key) {
  if (key.find('/') != std::string::npos)
    return fail_msg("unified resource \"{}\" must be a file name (no slashes)", key);
  if (!unified_key_form(key))
    return fail_msg("unified resource \"{}\" must be in the form CONTROLLER.PARAMETER", key);
  static const std::set<std::string> reserved = {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
                                                 "cgroup.kill", "cgroup.type"};
  if (reserved.count(key)) return fail_msg("unified resource \"{}\" is managed by the runtime", key);
  return {};
}

namespace {

// numToStr of runc: 0 -> leave alone, -1 -> "max".
std::string num(int64_t v) {
  if (v == 0) return "";
  if (v < 0) return "max";
  return std::to_string(v);
}

Result<void> plan_memory(detail::Plan& pl, const spec::Memory& m) {
  int64_t limit = m.limit.value_or(0), swap = m.swap.value_or(0);
  auto swap_max = v2_swap_max(swap, limit);
  if (!swap_max) return fail(std::move(swap_max.error()).context(fld("memory.swap")));
  std::string low = num(m.reservation.value_or(0));
  if (swap_max->empty() && num(limit).empty() && low.empty()) return {};  // swappiness & co: no v2 file (runc ignores)
  TRY_VOID(pl.need("memory", fld("memory")));
  if (m.checkBeforeUpdate.value_or(false) && limit > 0) {
    auto cur = pl.probe.read("memory", "memory.current");
    int64_t usage = 0;
    if (cur && std::from_chars(cur->data(), cur->data() + cur->size(), usage).ec == std::errc() && limit < usage)
      return fail_msg("{}: rejecting memory limit {} below current usage {}", fld("memory.limit"), limit, usage);
  }
  if (!swap_max->empty()) {
    // No swap accounting: "max" and "0" change nothing and are let go, as runc does.
    if (pl.probe.has_file("memory", "memory.swap.max") || (*swap_max != "max" && *swap_max != "0"))
      TRY_VOID(pl.add("memory", "memory.swap.max", *swap_max, fld("memory.swap")));
  }
  if (auto v = num(limit); !v.empty())
    TRY_VOID(pl.add("memory", "memory.max", v, fld("memory.limit"), Check::memory_limit));
  if (!low.empty()) TRY_VOID(pl.add("memory", "memory.low", low, fld("memory.reservation")));
  return {};
}

Result<void> plan_cpu(detail::Plan& pl, const spec::Cpu& c) {
  if (c.realtimePeriod.value_or(0) != 0 || c.realtimeRuntime.value_or(0) != 0)
    return fail_msg("{}: realtime scheduling limits are not supported on cgroup v2",
                    fld(c.realtimeRuntime.value_or(0) != 0 ? "cpu.realtimeRuntime" : "cpu.realtimePeriod"));
  if (c.shares.value_or(0) != 0)
    TRY_VOID(pl.add("cpu", "cpu.weight", std::to_string(shares_to_weight(*c.shares)), fld("cpu.shares")));
  if (c.idle) TRY_VOID(pl.add("cpu", "cpu.idle", std::to_string(*c.idle), fld("cpu.idle")));
  int64_t quota = c.quota.value_or(0);
  uint64_t period = c.period.value_or(0);
  if (quota != 0 || period != 0) {
    std::string v = quota > 0 ? std::to_string(quota) : "max";
    if (period != 0) v += " " + std::to_string(period);
    TRY_VOID(pl.add("cpu", "cpu.max", v, fld(quota != 0 ? "cpu.quota" : "cpu.period")));
  }
  if (c.burst) TRY_VOID(pl.add("cpu", "cpu.max.burst", std::to_string(*c.burst), fld("cpu.burst")));
  return {};
}

Result<void> plan_io(detail::Plan& pl, const spec::BlockIO& b) {
  bool bfq = pl.probe.has_file("io", "io.bfq.weight");
  if (b.weight.value_or(0) != 0) {
    if (bfq)
      TRY_VOID(pl.add("io", "io.bfq.weight", std::to_string(*b.weight), fld("blockIO.weight")));
    else
      TRY_VOID(pl.add("io", "io.weight", std::to_string(blkio_to_io_weight(*b.weight)), fld("blockIO.weight")));
  }
  for (size_t i = 0; i < b.weightDevice.size(); ++i) {
    const auto& w = b.weightDevice[i];
    if (w.weight.value_or(0) == 0) continue;  // leafWeight has no v2 file (runc ignores it)
    std::string dev = detail::dev_num(w.major, w.minor);
    std::string f = fld("blockIO.weightDevice", i, "weight");
    if (bfq)
      TRY_VOID(pl.add("io", "io.bfq.weight", fmt::format("{} {}", dev, *w.weight), f));
    else
      TRY_VOID(pl.add("io", "io.weight", fmt::format("{} {}", dev, blkio_to_io_weight(*w.weight)), f));
  }
  struct T {
    const std::vector<spec::ThrottleDevice>* list;
    const char* name;
    const char* key;
  };
  for (const T& t : {T{&b.throttleReadBpsDevice, "blockIO.throttleReadBpsDevice", "rbps"},
                     T{&b.throttleWriteBpsDevice, "blockIO.throttleWriteBpsDevice", "wbps"},
                     T{&b.throttleReadIOPSDevice, "blockIO.throttleReadIOPSDevice", "riops"},
                     T{&b.throttleWriteIOPSDevice, "blockIO.throttleWriteIOPSDevice", "wiops"}})
    for (size_t i = 0; i < t.list->size(); ++i) {
      const auto& d = (*t.list)[i];
      // v1 takes 0 as "no limit"; v2 spells that "max".
      std::string rate = d.rate == 0 ? "max" : std::to_string(d.rate);
      TRY_VOID(pl.add("io", "io.max", fmt::format("{} {}={}", detail::dev_num(d.major, d.minor), t.key, rate),
                      fld(t.name, i, "rate")));
    }
  return {};
}

}  // namespace

Result<std::vector<Write>> plan_v2(const spec::Resources& r, const Probe& p) {
  detail::Plan pl{p, {}};
  pl.v2 = true;
  if (r.network && (r.network->classID || !r.network->priorities.empty()))
    return fail_msg("{}: net_cls and net_prio (classID, priorities) have no cgroup v2 equivalent",
                    fld("network"));
  if (r.cpu) {
    if (r.cpu->cpus && !r.cpu->cpus->empty()) TRY_VOID(pl.add("cpuset", "cpuset.cpus", *r.cpu->cpus, fld("cpu.cpus")));
    if (r.cpu->mems && !r.cpu->mems->empty()) TRY_VOID(pl.add("cpuset", "cpuset.mems", *r.cpu->mems, fld("cpu.mems")));
  }
  if (r.memory) TRY_VOID(plan_memory(pl, *r.memory));
  if (r.cpu) TRY_VOID(plan_cpu(pl, *r.cpu));
  if (r.pids) {
    if (auto v = num(r.pids->limit); !v.empty()) TRY_VOID(pl.add("pids", "pids.max", v, fld("pids.limit")));
  }
  if (r.blockIO) TRY_VOID(plan_io(pl, *r.blockIO));
  for (size_t i = 0; i < r.hugepageLimits.size(); ++i) {
    const auto& h = r.hugepageLimits[i];
    std::string f = fld("hugepageLimits", i, "limit");
    TRY_VOID(pl.add("hugetlb", fmt::format("hugetlb.{}.max", h.pageSize), std::to_string(h.limit), f));
    std::string rsvd = fmt::format("hugetlb.{}.rsvd.max", h.pageSize);
    if (p.has_file("hugetlb", rsvd)) TRY_VOID(pl.add("hugetlb", rsvd, std::to_string(h.limit), f));
  }
  for (const auto& [dev, e] : r.rdma) {
    std::string v = dev;
    if (e.hcaHandles) v += fmt::format(" hca_handle={}", *e.hcaHandles);
    if (e.hcaObjects) v += fmt::format(" hca_object={}", *e.hcaObjects);
    TRY_VOID(pl.add("rdma", "rdma.max", v, fmt::format("{}.rdma.{}", detail::kRes, dev)));
  }
  // unified last: it has the final word over the converted values.
  for (const auto& [k, v] : r.unified) {
    std::string f = fmt::format("{}.unified.{}", detail::kRes, k);
    auto ok = check_unified_key(k);
    if (!ok) return fail(std::move(ok.error()).context(f));
    std::string ctrl = k.substr(0, k.find('.'));
    if (ctrl != "cgroup" && !p.mounted(ctrl))
      return fail_msg("{}: unified resource \"{}\" can't be set: controller \"{}\" not available", f, k, ctrl);
    if (!p.has_file(ctrl, k)) return fail_msg("{}: {}: not supported by this kernel", f, k);
    pl.out.push_back(Write{ctrl, k, v, f});
  }
  return std::move(pl.out);
}

}  // namespace brig::cgroup
