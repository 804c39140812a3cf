// Statistics in runc's `events` JSON shape, and OOM notification.
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <sstream>

#include "cgroup/manager.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cgroup {
namespace {

using OJ = nlohmann::ordered_json;

std::optional<std::string> rd(const std::optional<std::string>& dir, const std::string& file) {
  if (!dir) return std::nullopt;
  auto s = sys::read_file(*dir + "/" + file);
  if (!s) return std::nullopt;
  return *s;
}

// A number file; "max" and absent read as `dflt`.
uint64_t num(const std::optional<std::string>& dir, const std::string& file, uint64_t dflt = 0) {
  auto s = rd(dir, file);
  if (!s || s->rfind("max", 0) == 0) return dflt;
  return std::strtoull(s->c_str(), nullptr, 10);
}

// "key value" lines (memory.stat, cpu.stat).
std::map<std::string, uint64_t> kv(const std::optional<std::string>& dir, const std::string& file) {
  std::map<std::string, uint64_t> out;
  auto s = rd(dir, file);
  if (!s) return out;
  std::istringstream in(*s);
  std::string k;
  uint64_t v;
  while (in >> k >> v) out[k] = v;
  return out;
}

std::vector<uint64_t> words(const std::optional<std::string>& s) {
  std::vector<uint64_t> out;
  if (!s) return out;
  std::istringstream in(*s);
  uint64_t v;
  while (in >> v) out.push_back(v);
  return out;
}

// "0-2,5" -> [0,1,2,5]
std::vector<uint16_t> ranges(const std::optional<std::string>& s) {
  std::vector<uint16_t> out;
  if (!s) return out;
  std::stringstream in(*s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.find_first_not_of(" \n") == std::string::npos) continue;
    auto dash = part.find('-');
    unsigned long a = std::strtoul(part.c_str(), nullptr, 10);
    unsigned long b = dash == std::string::npos ? a : std::strtoul(part.c_str() + dash + 1, nullptr, 10);
    for (unsigned long i = a; i <= b && i < 65536; ++i) out.push_back(static_cast<uint16_t>(i));
  }
  return out;
}

// Go's omitempty for numbers.
void put(OJ& o, const char* k, uint64_t v, bool omitempty) {
  if (v || !omitempty) o[k] = v;
}

OJ mem_entry(const std::optional<std::string>& d, const std::string& prefix) {
  OJ e = OJ::object();
  e["limit"] = num(d, prefix + ".limit_in_bytes");
  put(e, "usage", num(d, prefix + ".usage_in_bytes"), true);
  put(e, "max", num(d, prefix + ".max_usage_in_bytes"), true);
  e["failcnt"] = num(d, prefix + ".failcnt");
  return e;
}

// Hugepage sizes the kernel offers, as cgroup file names spell them ("2MB").
std::vector<std::string> hugepage_sizes() {
  std::vector<std::string> out;
  DIR* d = ::opendir("/sys/kernel/mm/hugepages");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("hugepages-", 0) != 0) continue;
    uint64_t kb = std::strtoull(n.c_str() + 10, nullptr, 10);
    const char* unit = "KB";
    if (kb >= 1024 * 1024 && kb % (1024 * 1024) == 0) {
      kb /= 1024 * 1024;
      unit = "GB";
    } else if (kb >= 1024 && kb % 1024 == 0) {
      kb /= 1024;
      unit = "MB";
    }
    out.push_back(std::to_string(kb) + unit);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

OJ blkio_entries(const std::optional<std::string>& s) {
  OJ arr = OJ::array();
  if (!s) return arr;
  std::istringstream in(*s);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string dev, op;
    uint64_t v = 0;
    if (!(ls >> dev >> op >> v)) continue;  // "Total N"
    auto colon = dev.find(':');
    if (colon == std::string::npos) continue;
    OJ e = OJ::object();
    put(e, "major", std::strtoull(dev.c_str(), nullptr, 10), true);
    put(e, "minor", std::strtoull(dev.c_str() + colon + 1, nullptr, 10), true);
    if (!op.empty()) e["op"] = op;
    put(e, "value", v, true);
    arr.push_back(e);
  }
  return arr;
}

OJ network(pid_t pid) {
  if (pid <= 0) return nullptr;
  char a[64] = {}, b[64] = {};
  auto la = ::readlink(fmt::format("/proc/{}/ns/net", pid).c_str(), a, sizeof a - 1);
  auto lb = ::readlink("/proc/self/ns/net", b, sizeof b - 1);
  if (la <= 0 || lb <= 0 || std::string(a) == std::string(b)) return nullptr;
  auto s = sys::read_file(fmt::format("/proc/{}/net/dev", pid));
  if (!s) return nullptr;
  OJ arr = OJ::array();
  std::istringstream in(*s);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name == "lo") continue;
    std::istringstream ls(line.substr(colon + 1));
    std::vector<uint64_t> f;
    uint64_t v;
    while (ls >> v) f.push_back(v);
    if (f.size() < 12) continue;
    arr.push_back(OJ{{"name", name},          {"rx_bytes", f[0]},  {"rx_packets", f[1]}, {"rx_errors", f[2]},
                     {"rx_dropped", f[3]},    {"tx_bytes", f[8]},  {"tx_packets", f[9]}, {"tx_errors", f[10]},
                     {"tx_dropped", f[11]}});
  }
  if (arr.empty()) return nullptr;
  return arr;
}

OJ stats_v1(const Manager& m) {
  OJ data = OJ::object();
  auto acct = m.dir_of("cpuacct");
  auto cpu = m.dir_of("cpu");
  OJ usage = OJ::object();
  put(usage, "total", num(acct, "cpuacct.usage"), true);
  auto percpu = words(rd(acct, "cpuacct.usage_percpu"));
  if (!percpu.empty()) usage["percpu"] = percpu;
  std::vector<uint64_t> pk, pu;
  if (auto all = rd(acct, "cpuacct.usage_all")) {
    std::istringstream in(*all);
    std::string line;
    std::getline(in, line);  // cpu user system
    uint64_t c, u, s;
    while (in >> c >> u >> s) {
      pu.push_back(u);
      pk.push_back(s);
    }
  }
  if (!pk.empty()) usage["percpu_kernel"] = pk;
  if (!pu.empty()) usage["percpu_user"] = pu;
  auto st = kv(acct, "cpuacct.stat");
  long hz = ::sysconf(_SC_CLK_TCK);
  uint64_t ns_per_tick = hz > 0 ? 1'000'000'000ULL / static_cast<uint64_t>(hz) : 10'000'000ULL;
  usage["kernel"] = st["system"] * ns_per_tick;
  usage["user"] = st["user"] * ns_per_tick;
  auto cs = kv(cpu, "cpu.stat");
  OJ thr = OJ::object();
  put(thr, "periods", cs["nr_periods"], true);
  put(thr, "throttledPeriods", cs["nr_throttled"], true);
  put(thr, "throttledTime", cs["throttled_time"], true);
  data["cpu"] = OJ{{"usage", usage}, {"throttling", thr}};

  auto cset = m.dir_of("cpuset");
  OJ cs_j = OJ::object();
  if (cset) {
    auto cpus = ranges(rd(cset, "cpuset.cpus"));
    if (!cpus.empty()) cs_j["cpus"] = cpus;
    cs_j["cpu_exclusive"] = num(cset, "cpuset.cpu_exclusive");
    auto mems = ranges(rd(cset, "cpuset.mems"));
    if (!mems.empty()) cs_j["mems"] = mems;
    for (const char* k : {"mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                          "memory_spread_slab", "memory_pressure", "sched_load_balance"})
      cs_j[k] = num(cset, std::string("cpuset.") + k);
    auto lvl = rd(cset, "cpuset.sched_relax_domain_level");
    cs_j["sched_relax_domain_level"] = lvl ? std::strtoll(lvl->c_str(), nullptr, 10) : 0;
  }
  data["cpuset"] = cs_j;

  auto mem = m.dir_of("memory");
  OJ mj = OJ::object();
  if (mem) {
    auto raw = kv(mem, "memory.stat");
    put(mj, "cache", raw.count("cache") ? raw["cache"] : 0, true);
    mj["usage"] = mem_entry(mem, "memory");
    mj["swap"] = mem_entry(mem, "memory.memsw");
    mj["kernel"] = mem_entry(mem, "memory.kmem");
    mj["kernelTCP"] = mem_entry(mem, "memory.kmem.tcp");
    if (!raw.empty()) mj["raw"] = raw;
  }
  data["memory"] = mj;

  auto pids = m.dir_of("pids");
  OJ pj = OJ::object();
  put(pj, "current", num(pids, "pids.current"), true);
  put(pj, "limit", num(pids, "pids.max"), true);
  data["pids"] = pj;

  auto blk = m.dir_of("blkio");
  OJ bj = OJ::object();
  if (blk) {
    auto pick = [&](const char* bfq, const char* throttle) {
      auto s = rd(blk, bfq);
      return s ? s : rd(blk, throttle);
    };
    auto bytes = blkio_entries(pick("blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"));
    auto ios = blkio_entries(pick("blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"));
    if (!bytes.empty()) bj["ioServiceBytesRecursive"] = bytes;
    if (!ios.empty()) bj["ioServicedRecursive"] = ios;
  }
  data["blkio"] = bj;

  auto huge = m.dir_of("hugetlb");
  OJ hj = OJ::object();
  if (huge)
    for (auto& sz : hugepage_sizes()) {
      OJ e = OJ::object();
      put(e, "usage", num(huge, "hugetlb." + sz + ".usage_in_bytes"), true);
      put(e, "max", num(huge, "hugetlb." + sz + ".max_usage_in_bytes"), true);
      e["failcnt"] = num(huge, "hugetlb." + sz + ".failcnt");
      hj[sz] = e;
    }
  data["hugetlb"] = hj;
  return data;
}

OJ stats_v2(const Manager& m) {
  OJ data = OJ::object();
  auto d = m.dir_of("");
  auto cs = kv(d, "cpu.stat");
  OJ usage = OJ::object();
  put(usage, "total", cs["usage_usec"] * 1000, true);
  usage["kernel"] = cs["system_usec"] * 1000;
  usage["user"] = cs["user_usec"] * 1000;
  OJ thr = OJ::object();
  put(thr, "periods", cs["nr_periods"], true);
  put(thr, "throttledPeriods", cs["nr_throttled"], true);
  put(thr, "throttledTime", cs["throttled_usec"] * 1000, true);
  data["cpu"] = OJ{{"usage", usage}, {"throttling", thr}};

  OJ cs_j = OJ::object();
  auto cpus = ranges(rd(d, "cpuset.cpus.effective"));
  if (!cpus.empty()) cs_j["cpus"] = cpus;
  cs_j["cpu_exclusive"] = 0;
  auto mems = ranges(rd(d, "cpuset.mems.effective"));
  if (!mems.empty()) cs_j["mems"] = mems;
  for (const char* k : {"mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page", "memory_spread_slab",
                        "memory_pressure", "sched_load_balance"})
    cs_j[k] = 0;
  cs_j["sched_relax_domain_level"] = 0;
  data["cpuset"] = cs_j;

  OJ mj = OJ::object();
  auto raw = kv(d, "memory.stat");
  put(mj, "cache", raw.count("file") ? raw["file"] : 0, true);
  auto entry = [&](const char* cur, const char* max, const char* peak, const char* events) {
    OJ e = OJ::object();
    e["limit"] = num(d, max, UINT64_MAX);
    put(e, "usage", num(d, cur), true);
    put(e, "max", num(d, peak), true);
    e["failcnt"] = kv(d, events)["max"];
    return e;
  };
  mj["usage"] = entry("memory.current", "memory.max", "memory.peak", "memory.events");
  mj["swap"] = entry("memory.swap.current", "memory.swap.max", "memory.swap.peak", "memory.swap.events");
  mj["kernel"] = OJ{{"limit", 0}, {"failcnt", 0}};
  mj["kernelTCP"] = OJ{{"limit", 0}, {"failcnt", 0}};
  if (!raw.empty()) mj["raw"] = raw;
  data["memory"] = mj;

  OJ pj = OJ::object();
  put(pj, "current", num(d, "pids.current"), true);
  put(pj, "limit", num(d, "pids.max"), true);
  data["pids"] = pj;

  OJ bj = OJ::object();
  if (auto io = rd(d, "io.stat")) {
    OJ bytes = OJ::array(), ios = OJ::array();
    std::istringstream in(*io);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string dev, kvp;
      if (!(ls >> dev)) continue;
      uint64_t maj = std::strtoull(dev.c_str(), nullptr, 10);
      uint64_t min = std::strtoull(dev.c_str() + dev.find(':') + 1, nullptr, 10);
      while (ls >> kvp) {
        auto eq = kvp.find('=');
        if (eq == std::string::npos) continue;
        std::string k = kvp.substr(0, eq);
        uint64_t v = std::strtoull(kvp.c_str() + eq + 1, nullptr, 10);
        OJ e = OJ::object();
        put(e, "major", maj, true);
        put(e, "minor", min, true);
        if (k == "rbytes" || k == "rios") e["op"] = "Read";
        else if (k == "wbytes" || k == "wios") e["op"] = "Write";
        else continue;
        put(e, "value", v, true);
        (k[1] == 'b' ? bytes : ios).push_back(e);
      }
    }
    if (!bytes.empty()) bj["ioServiceBytesRecursive"] = bytes;
    if (!ios.empty()) bj["ioServicedRecursive"] = ios;
  }
  data["blkio"] = bj;

  OJ hj = OJ::object();
  if (m.dir_of("hugetlb"))
    for (auto& sz : hugepage_sizes()) {
      OJ e = OJ::object();
      put(e, "usage", num(d, "hugetlb." + sz + ".current"), true);
      put(e, "max", num(d, "hugetlb." + sz + ".max"), true);
      e["failcnt"] = kv(d, "hugetlb." + sz + ".events")["max"];
      hj[sz] = e;
    }
  data["hugetlb"] = hj;
  return data;
}

}  // namespace

nlohmann::ordered_json stats(const Manager& m, pid_t init_pid) {
  OJ data = m.unified() ? stats_v2(m) : stats_v1(m);
  data["intel_rdt"] = OJ::object();
  data["network_interfaces"] = network(init_pid);
  return data;
}

// ---- OOM notification ----------------------------------------------------

Result<OomWatch> OomWatch::open(const Manager& m) {
  OomWatch w;
  if (!m.unified()) {
    auto d = m.dir_of("memory");
    if (!d) return fail_msg("events: cgroup controller memory is not mounted");
    TRY(w.target_, sys::open(*d + "/memory.oom_control", O_RDONLY));
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return fail_errno("eventfd");
    w.fd_ = Fd(efd);
    TRY_CTX_VOID(sys::write_file(*d + "/cgroup.event_control", fmt::format("{} {}", efd, w.target_.get())),
                 "register OOM notification for {}", *d);
    w.events_ = *d;
    return w;
  }
  auto d = m.dir_of("");
  if (!d) return fail_msg("events: no cgroup v2 directory");
  w.v2_ = true;
  w.events_ = *d + "/memory.events";
  int ifd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ifd < 0) return fail_errno("inotify_init1");
  w.fd_ = Fd(ifd);
  if (::inotify_add_watch(ifd, w.events_.c_str(), IN_MODIFY) < 0) return fail_errno("inotify_add_watch {}", w.events_);
  auto ev = sys::read_file(w.events_);
  if (ev) {
    std::istringstream in(*ev);
    std::string k;
    uint64_t v;
    while (in >> k >> v)
      if (k == "oom_kill") w.seen_ = v;
  }
  return w;
}

int OomWatch::check() {
  if (!v2_) {
    uint64_t n = 0;
    if (::read(fd_.get(), &n, sizeof n) != sizeof n) return 0;
    // The eventfd also fires when the cgroup goes away.
    if (::access(events_.c_str(), F_OK) < 0) return -1;
    return static_cast<int>(n);
  }
  char buf[4096];
  while (::read(fd_.get(), buf, sizeof buf) > 0) {
  }
  auto ev = sys::read_file(events_);
  if (!ev) return -1;
  std::istringstream in(*ev);
  std::string k;
  uint64_t v;
  int news = 0;
  while (in >> k >> v)
    if (k == "oom_kill" && v > seen_) {
      news = static_cast<int>(v - seen_);
      seen_ = v;
    }
  return news;
}

}  // namespace brig::cgroup
