// linux.resources -> cgroup v1 files (one hierarchy per controller).
#include <algorithm>
#include <charconv>

#include "cgroup/resources.hpp"
#include "cgroup/resources_common.hpp"

namespace brig::cgroup {

using detail::fld;
using Check = Write::Check;

namespace {

std::optional<int64_t> parse_i64(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc()) {
    // memory.limit_in_bytes may read 9223372036854771712 etc.: fits; anything else is unknown.
    uint64_t u = 0;
    auto [p2, ec2] = std::from_chars(s->data(), s->data() + s->size(), u);
    if (ec2 != std::errc()) return std::nullopt;
    return static_cast<int64_t>(std::min<uint64_t>(u, INT64_MAX));
  }
  return v;
}

// "rwm" in canonical order, duplicates dropped; "" and absent mean rwm.
std::string norm_access(const std::optional<std::string>& a) {
  if (!a || a->empty()) return "rwm";
  std::string out;
  for (char c : std::string("rwm"))
    if (a->find(c) != std::string::npos) out += c;
  return out;
}

Result<void> plan_devices(detail::Plan& pl, const std::vector<spec::DeviceCgroup>& rules) {
  const std::string field = fld("devices");
  TRY_VOID(pl.need("devices", field));
  // One write per rule; a rule the same as the write before it in the same
  // file (runc's default config denies all again after the default deny)
  // would change nothing, and is not written twice.
  auto add = [&pl](const char* file, std::string rule, std::string f) -> Result<void> {
    if (!pl.out.empty() && pl.out.back().controller == "devices" && pl.out.back().file == file &&
        pl.out.back().value == rule)
      return {};
    return pl.add_known("devices", file, std::move(rule), std::move(f));
  };
  // Default deny first, then the rules in config order (runc's result).
  TRY_VOID(add("devices.deny", "a", field));
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& d = rules[i];
    std::string f = fmt::format("{}.devices[{}]", detail::kRes, i);
    const char* file = d.allow ? "devices.allow" : "devices.deny";
    std::string type = d.type.value_or("a");
    std::string access = norm_access(d.access);
    bool any_num = (d.major && *d.major >= 0) || (d.minor && *d.minor >= 0);
    if (type == "a" && !any_num && access == "rwm") {
      TRY_VOID(add(file, "a", f));  // the whole default flips
      continue;
    }
    // The kernel reads "a" as "everything, rwm"; a narrower "a" rule is the
    // same rule for char and block devices.
    std::vector<std::string> types = type == "a" ? std::vector<std::string>{"c", "b"} : std::vector{type};
    for (auto& t : types) {
      spec::DeviceCgroup one = d;
      one.type = t;
      one.access = access;
      TRY_VOID(add(file, device_rule_v1(one), f));
    }
  }
  return {};
}

Result<void> plan_memory(detail::Plan& pl, const spec::Memory& m) {
  int64_t limit = m.limit.value_or(0), swap = m.swap.value_or(0);
  const std::string memsw = "memory.memsw.limit_in_bytes";
  bool any = limit || swap || m.reservation.value_or(0) || m.kernelTCP.value_or(0) || m.swappiness ||
             m.disableOOMKiller || m.useHierarchy;
  if (!any) return {};  // kernel memory alone: ignored, as runc 1.x does
  TRY_VOID(pl.need("memory", fld("memory")));
  // Unlimited memory with swap unset: unlimited swap too (when swap is accounted).
  if (limit == -1 && swap == 0 && pl.probe.has_file("memory", memsw)) swap = -1;
  if (m.checkBeforeUpdate.value_or(false) && limit > 0) {
    auto usage = parse_i64(pl.probe.read("memory", "memory.usage_in_bytes"));
    if (usage && limit < *usage)
      return fail_msg("{}: rejecting memory limit {} below current usage {}", fld("memory.limit"), limit, *usage);
  }
  auto w_limit = [&] {
    return pl.add("memory", "memory.limit_in_bytes", std::to_string(limit), fld("memory.limit"), Check::memory_limit);
  };
  auto w_swap = [&] { return pl.add("memory", memsw, std::to_string(swap), fld("memory.swap")); };
  if (limit != 0 && swap != 0) {
    // memsw must stay >= limit at every step: raising both sets memsw first.
    auto cur = parse_i64(pl.probe.read("memory", "memory.limit_in_bytes"));
    if (swap == -1 || (cur && *cur < swap)) {
      TRY_VOID(w_swap());
      TRY_VOID(w_limit());
    } else {
      TRY_VOID(w_limit());
      TRY_VOID(w_swap());
    }
  } else {
    if (limit != 0) TRY_VOID(w_limit());
    if (swap != 0) TRY_VOID(w_swap());
  }
  if (m.reservation.value_or(0) != 0)
    TRY_VOID(pl.add("memory", "memory.soft_limit_in_bytes", std::to_string(*m.reservation), fld("memory.reservation")));
  if (m.kernelTCP.value_or(0) != 0)
    TRY_VOID(pl.add("memory", "memory.kmem.tcp.limit_in_bytes", std::to_string(*m.kernelTCP), fld("memory.kernelTCP")));
  if (m.disableOOMKiller)
    TRY_VOID(pl.add("memory", "memory.oom_control", *m.disableOOMKiller ? "1" : "0", fld("memory.disableOOMKiller")));
  if (m.swappiness) {
    if (*m.swappiness > 100)
      return fail_msg("{}: invalid memory swappiness value: {} (valid range is 0-100)", fld("memory.swappiness"),
                      *m.swappiness);
    TRY_VOID(pl.add("memory", "memory.swappiness", std::to_string(*m.swappiness), fld("memory.swappiness")));
  }
  if (m.useHierarchy)
    TRY_VOID(pl.add("memory", "memory.use_hierarchy", *m.useHierarchy ? "1" : "0", fld("memory.useHierarchy")));
  return {};
}

Result<void> plan_cpu(detail::Plan& pl, const spec::Cpu& c) {
  if (c.shares.value_or(0) != 0)
    TRY_VOID(pl.add("cpu", "cpu.shares", std::to_string(*c.shares), fld("cpu.shares"), Check::cpu_shares));
  int64_t quota = c.quota.value_or(0);
  if (c.period.value_or(0) != 0)
    // A shorter period can be refused until the new quota is in: retried after it.
    TRY_VOID(pl.add("cpu", "cpu.cfs_period_us", std::to_string(*c.period), fld("cpu.period"),
                    quota != 0 ? Check::retry_einval : Check::none));
  if (quota != 0) TRY_VOID(pl.add("cpu", "cpu.cfs_quota_us", std::to_string(quota), fld("cpu.quota")));
  if (c.burst) TRY_VOID(pl.add("cpu", "cpu.cfs_burst_us", std::to_string(*c.burst), fld("cpu.burst")));
  if (c.realtimePeriod.value_or(0) != 0)
    TRY_VOID(pl.add("cpu", "cpu.rt_period_us", std::to_string(*c.realtimePeriod), fld("cpu.realtimePeriod")));
  if (c.realtimeRuntime.value_or(0) != 0)
    TRY_VOID(pl.add("cpu", "cpu.rt_runtime_us", std::to_string(*c.realtimeRuntime), fld("cpu.realtimeRuntime")));
  if (c.idle) TRY_VOID(pl.add("cpu", "cpu.idle", std::to_string(*c.idle), fld("cpu.idle")));
  return {};
}

Result<void> plan_blkio(detail::Plan& pl, const spec::BlockIO& b) {
  bool bfq = pl.probe.has_file("blkio", "blkio.bfq.weight");
  std::string weight = bfq ? "blkio.bfq.weight" : "blkio.weight";
  std::string weight_dev = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
  if (b.weight.value_or(0) != 0) TRY_VOID(pl.add("blkio", weight, std::to_string(*b.weight), fld("blockIO.weight")));
  if (b.leafWeight.value_or(0) != 0)
    TRY_VOID(pl.add("blkio", "blkio.leaf_weight", std::to_string(*b.leafWeight), fld("blockIO.leafWeight")));
  for (size_t i = 0; i < b.weightDevice.size(); ++i) {
    const auto& w = b.weightDevice[i];
    std::string dev = detail::dev_num(w.major, w.minor);
    if (w.weight.value_or(0) != 0)
      TRY_VOID(pl.add("blkio", weight_dev, fmt::format("{} {}", dev, *w.weight), fld("blockIO.weightDevice", i, "weight")));
    if (w.leafWeight.value_or(0) != 0)
      TRY_VOID(pl.add("blkio", "blkio.leaf_weight_device", fmt::format("{} {}", dev, *w.leafWeight),
                      fld("blockIO.weightDevice", i, "leafWeight")));
  }
  struct T {
    const std::vector<spec::ThrottleDevice>* list;
    const char* name;
    const char* file;
  };
  for (const T& t : {T{&b.throttleReadBpsDevice, "blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device"},
                     T{&b.throttleWriteBpsDevice, "blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device"},
                     T{&b.throttleReadIOPSDevice, "blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device"},
                     T{&b.throttleWriteIOPSDevice, "blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"}})
    for (size_t i = 0; i < t.list->size(); ++i) {
      const auto& d = (*t.list)[i];
      TRY_VOID(pl.add("blkio", t.file, fmt::format("{} {}", detail::dev_num(d.major, d.minor), d.rate),
                      fld(t.name, i, "rate")));
    }
  return {};
}

}  // namespace

std::string device_rule_v1(const spec::DeviceCgroup& d) {
  return fmt::format("{} {} {}", d.type.value_or("a"), detail::dev_num(d.major.value_or(-1), d.minor.value_or(-1)),
                     norm_access(d.access));
}

Result<std::vector<Write>> plan_v1(const spec::Resources& r, const Probe& p) {
  detail::Plan pl{p, {}};
  if (!r.unified.empty())
    return fail_msg("{}: invalid configuration: cannot use unified on cgroup v1", fld("unified"));
  // runc's subsystem order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma.
  if (r.cpu) {
    if (r.cpu->cpus && !r.cpu->cpus->empty()) TRY_VOID(pl.add("cpuset", "cpuset.cpus", *r.cpu->cpus, fld("cpu.cpus")));
    if (r.cpu->mems && !r.cpu->mems->empty()) TRY_VOID(pl.add("cpuset", "cpuset.mems", *r.cpu->mems, fld("cpu.mems")));
  }
  if (!r.devices.empty()) TRY_VOID(plan_devices(pl, r.devices));
  if (r.memory) TRY_VOID(plan_memory(pl, *r.memory));
  if (r.cpu) TRY_VOID(plan_cpu(pl, *r.cpu));
  if (r.pids && r.pids->limit != 0)
    TRY_VOID(pl.add("pids", "pids.max", r.pids->limit > 0 ? std::to_string(r.pids->limit) : "max", fld("pids.limit")));
  if (r.blockIO) TRY_VOID(plan_blkio(pl, *r.blockIO));
  for (size_t i = 0; i < r.hugepageLimits.size(); ++i) {
    const auto& h = r.hugepageLimits[i];
    std::string f = fld("hugepageLimits", i, "limit");
    TRY_VOID(pl.add("hugetlb", fmt::format("hugetlb.{}.limit_in_bytes", h.pageSize), std::to_string(h.limit), f));
    std::string rsvd = fmt::format("hugetlb.{}.rsvd.limit_in_bytes", h.pageSize);
    if (p.has_file("hugetlb", rsvd)) TRY_VOID(pl.add("hugetlb", rsvd, std::to_string(h.limit), f));
  }
  if (r.network) {
    if (r.network->classID)
      TRY_VOID(pl.add("net_cls", "net_cls.classid", std::to_string(*r.network->classID), fld("network.classID")));
    for (size_t i = 0; i < r.network->priorities.size(); ++i) {
      const auto& ip = r.network->priorities[i];
      TRY_VOID(pl.add("net_prio", "net_prio.ifpriomap", fmt::format("{} {}", ip.name, ip.priority),
                      fld("network.priorities", i, "priority")));
    }
  }
  for (const auto& [dev, e] : r.rdma) {
    std::string v = dev;
    if (e.hcaHandles) v += fmt::format(" hca_handle={}", *e.hcaHandles);
    if (e.hcaObjects) v += fmt::format(" hca_object={}", *e.hcaObjects);
    TRY_VOID(pl.add("rdma", "rdma.max", v, fmt::format("{}.rdma.{}", detail::kRes, dev)));
  }
  return std::move(pl.out);
}

// ---- devices and update merging (shared by both versions) ----------------

std::vector<spec::DeviceCgroup> default_device_rules() {
  auto c = [](std::optional<int64_t> maj, std::optional<int64_t> min, const char* acc, const char* type = "c") {
    return spec::DeviceCgroup{true, std::string(type), maj, min, std::string(acc)};
  };
  return {
      c(std::nullopt, std::nullopt, "m"),  // mknod of any char device
      c(std::nullopt, std::nullopt, "m", "b"),
      c(1, 3, "rwm"),    // /dev/null
      c(1, 8, "rwm"),    // /dev/random
      c(1, 7, "rwm"),    // /dev/full
      c(5, 0, "rwm"),    // /dev/tty
      c(1, 5, "rwm"),    // /dev/zero
      c(1, 9, "rwm"),    // /dev/urandom
      c(136, std::nullopt, "rwm"),  // /dev/pts/*
      c(5, 2, "rwm"),    // /dev/ptmx
      c(10, 200, "rwm"), // /dev/net/tun
  };
}

spec::Resources container_resources(const spec::Config& cfg) {
  spec::Resources r;
  if (cfg.linux && cfg.linux->resources) r = *cfg.linux->resources;
  for (auto& d : default_device_rules()) r.devices.push_back(d);
  if (cfg.linux)
    for (const auto& d : cfg.linux->devices) {
      if (d.type == "p") continue;  // fifos are not device-cgroup business
      r.devices.push_back(spec::DeviceCgroup{true, d.type == "u" ? std::string("c") : d.type, d.major, d.minor,
                                             std::string("rwm")});
    }
  return r;
}

namespace {
template <class T>
void over(std::optional<T>& dst, const std::optional<T>& src) {
  if (src) dst = src;
}
}  // namespace

spec::Resources merge_resources(const spec::Resources& base, const spec::Resources& u) {
  spec::Resources r = base;
  if (u.memory) {
    if (!r.memory) r.memory.emplace();
    auto& m = *r.memory;
    over(m.limit, u.memory->limit);
    over(m.reservation, u.memory->reservation);
    over(m.swap, u.memory->swap);
    over(m.kernel, u.memory->kernel);
    over(m.kernelTCP, u.memory->kernelTCP);
    over(m.swappiness, u.memory->swappiness);
    over(m.disableOOMKiller, u.memory->disableOOMKiller);
    over(m.useHierarchy, u.memory->useHierarchy);
    over(m.checkBeforeUpdate, u.memory->checkBeforeUpdate);
  }
  if (u.cpu) {
    if (!r.cpu) r.cpu.emplace();
    auto& c = *r.cpu;
    over(c.shares, u.cpu->shares);
    over(c.quota, u.cpu->quota);
    over(c.burst, u.cpu->burst);
    over(c.period, u.cpu->period);
    over(c.realtimeRuntime, u.cpu->realtimeRuntime);
    over(c.realtimePeriod, u.cpu->realtimePeriod);
    over(c.cpus, u.cpu->cpus);
    over(c.mems, u.cpu->mems);
    over(c.idle, u.cpu->idle);
  }
  if (u.pids) r.pids = u.pids;
  if (u.blockIO) {
    if (!r.blockIO) r.blockIO.emplace();
    auto& b = *r.blockIO;
    over(b.weight, u.blockIO->weight);
    over(b.leafWeight, u.blockIO->leafWeight);
    if (!u.blockIO->weightDevice.empty()) b.weightDevice = u.blockIO->weightDevice;
    if (!u.blockIO->throttleReadBpsDevice.empty()) b.throttleReadBpsDevice = u.blockIO->throttleReadBpsDevice;
    if (!u.blockIO->throttleWriteBpsDevice.empty()) b.throttleWriteBpsDevice = u.blockIO->throttleWriteBpsDevice;
    if (!u.blockIO->throttleReadIOPSDevice.empty()) b.throttleReadIOPSDevice = u.blockIO->throttleReadIOPSDevice;
    if (!u.blockIO->throttleWriteIOPSDevice.empty()) b.throttleWriteIOPSDevice = u.blockIO->throttleWriteIOPSDevice;
  }
  if (!u.hugepageLimits.empty()) r.hugepageLimits = u.hugepageLimits;
  if (u.network) r.network = u.network;
  for (const auto& [k, v] : u.rdma) r.rdma[k] = v;
  for (const auto& [k, v] : u.unified) r.unified[k] = v;
  if (!u.devices.empty()) r.devices = u.devices;
  return r;
}

}  // namespace brig::cgroup
