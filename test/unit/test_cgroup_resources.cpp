#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "cgroup/devices_bpf.hpp"
#include "cgroup/resources.hpp"

using namespace brig;
using cgroup::Write;

namespace {

// A fake host: controllers, files that exist, file contents.
struct FakeHost final : cgroup::Probe {
  std::set<std::string> ctrls;
  std::set<std::string> missing;  // files that do not exist
  std::map<std::string, std::string> content;
  bool mounted(std::string_view c) const override { return ctrls.count(std::string(c)) > 0; }
  bool has_file(std::string_view, std::string_view f) const override { return !missing.count(std::string(f)); }
  std::optional<std::string> read(std::string_view, std::string_view f) const override {
    auto it = content.find(std::string(f));
    if (it == content.end()) return std::nullopt;
    return it->second;
  }
};

FakeHost v1host() {
  FakeHost h;
  h.ctrls = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"};
  h.missing = {"blkio.weight", "blkio.bfq.weight", "blkio.leaf_weight"};
  h.content["memory.limit_in_bytes"] = "9223372036854771712";
  return h;
}
FakeHost v2host() {
  FakeHost h;
  h.ctrls = {"cpu", "cpuset", "memory", "io", "pids", "hugetlb", "rdma"};
  h.missing = {"io.bfq.weight"};
  return h;
}

std::vector<std::string> files(const std::vector<Write>& ws) {
  std::vector<std::string> out;
  for (auto& w : ws) out.push_back(w.file + "=" + w.value);
  return out;
}

spec::Resources res(const char* json) {
  nlohmann::json doc = {{"ociVersion", "1.3.0"}, {"root", {{"path", "r"}}},
                        {"linux", {{"resources", nlohmann::json::parse(json)}}}};
  auto c = spec::parse_config(doc);
  REQUIRE(c);
  return *c->linux->resources;
}

}  // namespace

TEST_CASE("v1: cpu, cpuset, pids in runc's order", "[cgroup]") {
  auto h = v1host();
  auto p = cgroup::plan_v1(res(R"({"cpu":{"shares":512,"quota":20000,"period":50000,"burst":10,"idle":1,
      "realtimePeriod":1000,"realtimeRuntime":500,"cpus":"0-1","mems":"0"},"pids":{"limit":42}})"), h);
  REQUIRE(p);
  CHECK(files(*p) == std::vector<std::string>{
                         "cpuset.cpus=0-1", "cpuset.mems=0", "cpu.shares=512", "cpu.cfs_period_us=50000",
                         "cpu.cfs_quota_us=20000", "cpu.cfs_burst_us=10", "cpu.rt_period_us=1000",
                         "cpu.rt_runtime_us=500", "cpu.idle=1", "pids.max=42"});
  CHECK((*p)[2].check == Write::Check::cpu_shares);
  CHECK((*p)[3].check == Write::Check::retry_einval);  // period with a quota
  CHECK((*p)[3].field == "linux.resources.cpu.period");
  CHECK(files(*cgroup::plan_v1(res(R"({"pids":{"limit":-1}})"), h)) == std::vector<std::string>{"pids.max=max"});
  CHECK(cgroup::plan_v1(res(R"({"pids":{"limit":0}})"), h)->empty());
  auto only_period = cgroup::plan_v1(res(R"({"cpu":{"period":1000}})"), h);
  CHECK((*only_period)[0].check == Write::Check::none);
}

TEST_CASE("v1: memory and memsw are ordered so the kernel accepts them", "[cgroup]") {
  auto h = v1host();
  // Raising (current limit is huge... but lower than nothing): current < swap -> memsw first.
  h.content["memory.limit_in_bytes"] = "1000";
  auto up = cgroup::plan_v1(res(R"({"memory":{"limit":2000,"swap":4000}})"), h);
  CHECK(files(*up) == std::vector<std::string>{"memory.memsw.limit_in_bytes=4000", "memory.limit_in_bytes=2000"});
  h.content["memory.limit_in_bytes"] = "8000";
  auto down = cgroup::plan_v1(res(R"({"memory":{"limit":2000,"swap":4000}})"), h);
  CHECK(files(*down) == std::vector<std::string>{"memory.limit_in_bytes=2000", "memory.memsw.limit_in_bytes=4000"});
  CHECK((*down)[0].check == Write::Check::memory_limit);
  // -1 with swap unset: unlimited swap too, memsw first.
  auto unl = cgroup::plan_v1(res(R"({"memory":{"limit":-1}})"), h);
  CHECK(files(*unl) == std::vector<std::string>{"memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"});
  auto rest = cgroup::plan_v1(res(R"({"memory":{"reservation":5,"kernel":9,"kernelTCP":7,"swappiness":30,
      "disableOOMKiller":true,"useHierarchy":true}})"), h);
  CHECK(files(*rest) == std::vector<std::string>{"memory.soft_limit_in_bytes=5", "memory.kmem.tcp.limit_in_bytes=7",
                                                 "memory.oom_control=1", "memory.swappiness=30",
                                                 "memory.use_hierarchy=1"});
  CHECK(cgroup::plan_v1(res(R"({"memory":{"kernel":9}})"), h)->empty());  // ignored, as runc
  h.content["memory.usage_in_bytes"] = "5000";
  auto chk = cgroup::plan_v1(res(R"({"memory":{"limit":4000,"checkBeforeUpdate":true}})"), h);
  REQUIRE_FALSE(chk);
  CHECK(chk.error().msg == "linux.resources.memory.limit: rejecting memory limit 4000 below current usage 5000");
  h.missing.insert("memory.memsw.limit_in_bytes");
  auto noswap = cgroup::plan_v1(res(R"({"memory":{"limit":100,"swap":200}})"), h);
  REQUIRE_FALSE(noswap);
  CHECK(noswap.error().msg ==
        "linux.resources.memory.swap: memory.memsw.limit_in_bytes: not supported by this kernel");
}

TEST_CASE("v1: blkio picks bfq files and names missing ones", "[cgroup]") {
  auto h = v1host();
  auto no = cgroup::plan_v1(res(R"({"blockIO":{"weight":300}})"), h);
  REQUIRE_FALSE(no);
  CHECK(no.error().msg == "linux.resources.blockIO.weight: blkio.weight: not supported by this kernel");
  h.missing = {};
  auto bfq = cgroup::plan_v1(res(R"({"blockIO":{"weight":300,"leafWeight":20,
      "weightDevice":[{"major":8,"minor":0,"weight":100,"leafWeight":50}],
      "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}],"throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":2}],
      "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":3}],"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":4}]}})"),
                                h);
  CHECK(files(*bfq) == std::vector<std::string>{
                           "blkio.bfq.weight=300", "blkio.leaf_weight=20", "blkio.bfq.weight_device=8:0 100",
                           "blkio.leaf_weight_device=8:0 50", "blkio.throttle.read_bps_device=8:0 1",
                           "blkio.throttle.write_bps_device=8:0 2", "blkio.throttle.read_iops_device=8:0 3",
                           "blkio.throttle.write_iops_device=8:0 4"});
}

TEST_CASE("v1: unmounted controllers and unified are errors naming the field", "[cgroup]") {
  auto h = v1host();
  auto e = [&](const char* j) { return cgroup::plan_v1(res(j), h).error().msg; };
  CHECK(e(R"({"network":{"classID":1}})") == "linux.resources.network.classID: cgroup controller net_cls is not mounted");
  CHECK(e(R"({"hugepageLimits":[{"pageSize":"2MB","limit":1}]})") ==
        "linux.resources.hugepageLimits[0].limit: cgroup controller hugetlb is not mounted");
  CHECK(e(R"({"rdma":{"mlx":{"hcaHandles":1}}})") == "linux.resources.rdma.mlx: cgroup controller rdma is not mounted");
  CHECK(e(R"({"unified":{"memory.high":"1"}})") ==
        "linux.resources.unified: invalid configuration: cannot use unified on cgroup v1");
  h.ctrls.insert({"net_cls", "net_prio", "hugetlb", "rdma"});
  auto ok = cgroup::plan_v1(res(R"({"network":{"classID":1,"priorities":[{"name":"eth0","priority":5}]},
      "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"rdma":{"mlx":{"hcaHandles":1,"hcaObjects":2}}})"),
                            h);
  CHECK(files(*ok) == std::vector<std::string>{"hugetlb.2MB.limit_in_bytes=4194304",
                                               "hugetlb.2MB.rsvd.limit_in_bytes=4194304", "net_cls.classid=1",
                                               "net_prio.ifpriomap=eth0 5", "rdma.max=mlx hca_handle=1 hca_object=2"});
}

TEST_CASE("v1: devices: default deny, then the rules in order", "[cgroup]") {
  auto h = v1host();
  auto p = cgroup::plan_v1(res(R"({"devices":[{"allow":false,"access":"rwm"},
      {"allow":true,"type":"c","major":1,"minor":3,"access":"mwr"},{"allow":true,"type":"a","major":7,"access":"r"},
      {"allow":false,"type":"b","access":"w"},{"allow":true}]})"),
                           h);
  // The config's "deny all" repeats the default deny: written once.
  CHECK(files(*p) == std::vector<std::string>{"devices.deny=a", "devices.allow=c 1:3 rwm",
                                              "devices.allow=c 7:* r", "devices.allow=b 7:* r",
                                              "devices.deny=b *:* w", "devices.allow=a"});
  // Only a repeat of the write just before is dropped: deny, allow, deny
  // again is three writes.
  auto q = cgroup::plan_v1(res(R"({"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
      {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":false},{"allow":true},{"allow":false}]})"),
                           h);
  CHECK(files(*q) == std::vector<std::string>{"devices.deny=a", "devices.allow=c 1:3 rwm", "devices.deny=a",
                                              "devices.allow=a", "devices.deny=a"});
  CHECK(cgroup::device_rule_v1({true, std::string("c"), 136, std::nullopt, std::string("")}) == "c 136:* rwm");
}

TEST_CASE("container_resources appends runc's defaults and linux.devices", "[cgroup]") {
  nlohmann::json doc = {{"ociVersion", "1.3.0"}, {"root", {{"path", "r"}}},
                        {"linux", {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
                                   {"devices", {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}},
                                                {{"path", "/dev/p"}, {"type", "p"}}}}}}};
  auto c = spec::parse_config(doc);
  REQUIRE(c);
  auto r = cgroup::container_resources(*c);
  REQUIRE(r.devices.size() == 1 + cgroup::default_device_rules().size() + 1);
  CHECK(r.devices.front().allow == false);
  CHECK(cgroup::device_rule_v1(r.devices.back()) == "c 10:229 rwm");
  CHECK(cgroup::device_rule_v1(r.devices[3]) == "c 1:3 rwm");
}

TEST_CASE("v2 conversions as runc", "[cgroup]") {
  CHECK(cgroup::shares_to_weight(0) == 0);
  CHECK(cgroup::shares_to_weight(2) == 1);
  CHECK(cgroup::shares_to_weight(1024) == 39);
  CHECK(cgroup::shares_to_weight(262144) == 10000);
  CHECK(cgroup::blkio_to_io_weight(10) == 1);
  CHECK(cgroup::blkio_to_io_weight(1000) == 10000);
  CHECK(cgroup::blkio_to_io_weight(500) == 1 + 490 * 9999 / 990);
  CHECK(*cgroup::v2_swap_max(0, -1) == "max");
  CHECK(*cgroup::v2_swap_max(-1, 100) == "max");
  CHECK(*cgroup::v2_swap_max(0, 100) == "");
  CHECK(*cgroup::v2_swap_max(300, 100) == "200");
  CHECK(*cgroup::v2_swap_max(100, 100) == "0");
  CHECK(cgroup::v2_swap_max(300, 0).error().msg == "unable to set swap limit without memory limit");
  CHECK(cgroup::v2_swap_max(50, 100).error().msg == "memory+swap limit should be >= memory limit");
  CHECK(cgroup::check_unified_key("memory.high"));
  // The form, by hand, is the schema's regex on every key of up to 6
  // characters from a telling alphabet; a key of 200k characters is no crash.
  const std::regex form("^[a-z][a-z0-9_]*\\.[a-z0-9_.]+$");
  const std::string alphabet = "az0_.A/";
  std::vector<std::string> keys = {""};
  for (size_t b = 0; b < keys.size(); ++b) {
    if (keys[b].size() < 6)
      for (char c : alphabet) keys.push_back(keys[b] + c);
    CHECK(cgroup::unified_key_form(keys[b]) == std::regex_match(keys[b], form));
  }
  CHECK(keys.size() > 100000);
  CHECK(cgroup::unified_key_form("memory." + std::string(200000, 'a')));
  CHECK_FALSE(cgroup::check_unified_key(std::string(200000, 'a')));
  CHECK(cgroup::check_unified_key("../x").error().msg == "unified resource \"../x\" must be a file name (no slashes)");
  CHECK_FALSE(cgroup::check_unified_key("memoryhigh"));
  CHECK_FALSE(cgroup::check_unified_key("cgroup.procs"));
  CHECK_FALSE(cgroup::check_unified_key("cgroup.subtree_control"));
}

TEST_CASE("v2: every field converted", "[cgroup]") {
  auto h = v2host();
  auto p = cgroup::plan_v2(res(R"({"cpu":{"shares":1024,"quota":20000,"period":50000,"burst":5,"idle":0,"cpus":"1","mems":"0"},
      "memory":{"limit":1000,"swap":3000,"reservation":500},"pids":{"limit":-1},
      "blockIO":{"weight":1000,"weightDevice":[{"major":8,"minor":0,"weight":10}],
                 "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":0}],"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":9}]},
      "hugepageLimits":[{"pageSize":"1GB","limit":0}],"rdma":{"d":{"hcaObjects":3}},
      "unified":{"memory.high":"900","cpu.max":"max 100000"}})"),
                           h);
  REQUIRE(p);
  CHECK(files(*p) == std::vector<std::string>{
                         "cpuset.cpus=1", "cpuset.mems=0", "memory.swap.max=2000", "memory.max=1000", "memory.low=500",
                         "cpu.weight=39", "cpu.idle=0", "cpu.max=20000 50000", "cpu.max.burst=5", "pids.max=max",
                         "io.weight=10000", "io.weight=8:0 1", "io.max=8:0 rbps=max", "io.max=8:0 wiops=9",
                         "hugetlb.1GB.max=0", "hugetlb.1GB.rsvd.max=0", "rdma.max=d hca_object=3",
                         "cpu.max=max 100000", "memory.high=900"});
  CHECK(files(*cgroup::plan_v2(res(R"({"cpu":{"quota":-1}})"), h)) == std::vector<std::string>{"cpu.max=max"});
  CHECK(files(*cgroup::plan_v2(res(R"({"cpu":{"period":1000}})"), h)) == std::vector<std::string>{"cpu.max=max 1000"});
  // Things v2 cannot do are errors; what runc ignores is ignored.
  auto e = [&](const char* j) { return cgroup::plan_v2(res(j), h).error().msg; };
  CHECK(e(R"({"network":{"classID":1}})") ==
        "linux.resources.network: net_cls and net_prio (classID, priorities) have no cgroup v2 equivalent");
  CHECK(e(R"({"cpu":{"realtimeRuntime":5}})") ==
        "linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported on cgroup v2");
  CHECK(e(R"({"unified":{"net_cls.classid":"1"}})") ==
        "linux.resources.unified.net_cls.classid: unified resource \"net_cls.classid\" can't be set: controller "
        "\"net_cls\" not available");
  CHECK(e(R"({"unified":{"cgroup.procs":"1"}})") ==
        "linux.resources.unified.cgroup.procs: unified resource \"cgroup.procs\" is managed by the runtime");
  CHECK(e(R"({"memory":{"swap":100}})") == "linux.resources.memory.swap: unable to set swap limit without memory limit");
  CHECK(cgroup::plan_v2(res(R"({"memory":{"swappiness":10,"disableOOMKiller":true,"kernelTCP":5}})"), h)->empty());
  h.missing.insert("memory.swap.max");
  CHECK(files(*cgroup::plan_v2(res(R"({"memory":{"limit":-1}})"), h)) == std::vector<std::string>{"memory.max=max"});
  CHECK(e(R"({"memory":{"limit":100,"swap":300}})") ==
        "linux.resources.memory.swap: memory.swap.max: not supported by this kernel");
  h.ctrls.erase("memory");
  CHECK(e(R"({"memory":{"limit":100}})") == "linux.resources.memory: cgroup controller memory is not available");
}

TEST_CASE("update merges only the given fields", "[cgroup]") {
  auto base = res(R"({"memory":{"limit":100,"swap":200},"cpu":{"shares":5},"pids":{"limit":3}})");
  auto m = cgroup::merge_resources(base, res(R"({"memory":{"limit":150},"pids":{"limit":9}})"));
  CHECK(*m.memory->limit == 150);
  CHECK(*m.memory->swap == 200);
  CHECK(*m.cpu->shares == 5);
  CHECK(m.pids->limit == 9);
}

// ---- the v2 device program, run by a tiny interpreter of what it emits ----

namespace {
int run_prog(const std::vector<bpf_insn>& prog, int type, int access, uint32_t major, uint32_t minor) {
  uint64_t r[11] = {};
  uint32_t ctx[3] = {static_cast<uint32_t>(type | (access << 16)), major, minor};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const bpf_insn& i = prog[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: r[i.dst_reg] = ctx[i.off / 4]; break;
      case BPF_ALU64 | BPF_MOV | BPF_X: r[i.dst_reg] = r[i.src_reg]; break;
      case BPF_ALU64 | BPF_MOV | BPF_K: r[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm)); break;
      case BPF_ALU64 | BPF_AND | BPF_K: r[i.dst_reg] &= static_cast<uint64_t>(static_cast<int64_t>(i.imm)); break;
      case BPF_ALU64 | BPF_RSH | BPF_K: r[i.dst_reg] >>= i.imm; break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (r[i.dst_reg] == static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JA: pc += i.off; break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(r[0]);
      default: FAIL("unknown instruction " << int(i.code));
    }
    REQUIRE(pc < prog.size());
  }
  FAIL("fell off the end");
  return -1;
}
// What the kernel's verifier checks first (check_cfg): every jump lands inside
// the program and every instruction is reachable ("unreachable insn N").
bool verifier_cfg_ok(const std::vector<bpf_insn>& prog) {
  std::vector<bool> seen(prog.size());
  std::vector<size_t> todo = {0};
  while (!todo.empty()) {
    size_t pc = todo.back();
    todo.pop_back();
    if (pc >= prog.size()) return false;
    if (seen[pc]) continue;
    seen[pc] = true;
    const bpf_insn& i = prog[pc];
    if (i.code == (BPF_JMP | BPF_EXIT)) continue;
    if (i.code == (BPF_JMP | BPF_JA)) {
      todo.push_back(pc + 1 + i.off);
      continue;
    }
    if (BPF_CLASS(i.code) == BPF_JMP) todo.push_back(pc + 1 + i.off);
    todo.push_back(pc + 1);
  }
  return std::all_of(seen.begin(), seen.end(), [](bool b) { return b; });
}
constexpr int C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
constexpr int M = BPF_DEVCG_ACC_MKNOD, R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE;
}  // namespace

TEST_CASE("v2 device program: last matching rule per access bit decides", "[cgroup][bpf]") {
  auto rules = res(R"({"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
      {"allow":true,"type":"c","access":"m"},{"allow":true,"type":"b","major":7,"minor":0,"access":"r"},
      {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]})")
                   .devices;
  auto prog = cgroup::device_program(rules);
  CHECK(run_prog(prog, C, R, 1, 3) == 1);
  CHECK(run_prog(prog, C, W, 1, 3) == 0);       // the later deny wins
  CHECK(run_prog(prog, C, R | W, 1, 3) == 0);
  CHECK(run_prog(prog, C, M, 1, 3) == 1);
  CHECK(run_prog(prog, C, M, 99, 1) == 1);       // c *:* m
  CHECK(run_prog(prog, C, R, 99, 1) == 0);
  CHECK(run_prog(prog, B, R, 7, 0) == 1);
  CHECK(run_prog(prog, B, W, 7, 0) == 0);
  CHECK(run_prog(prog, B, R, 7, 1) == 0);
  CHECK(run_prog(prog, B, M, 7, 0) == 0);        // no b mknod rule
  auto all = cgroup::device_program(res(R"({"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"b"}]})").devices);
  CHECK(run_prog(all, C, R | W | M, 5, 5) == 1);
  CHECK(run_prog(all, B, R, 8, 0) == 0);
  CHECK(run_prog(cgroup::device_program({}), C, R, 1, 3) == 0);  // nothing allowed
  CHECK(verifier_cfg_ok(prog));
  CHECK(verifier_cfg_ok(all));
  CHECK(verifier_cfg_ok(cgroup::device_program({})));
}

TEST_CASE("v2 device program: catch-all rules leave no unreachable code", "[cgroup][bpf]") {
  // The default spec: deny everything, then runc's default allow list (the
  // first rule used to leave the block's final deny unreachable: EINVAL).
  std::vector<spec::DeviceCgroup> rules = {spec::DeviceCgroup{false, std::nullopt, std::nullopt, std::nullopt,
                                                              std::string("rwm")}};
  for (auto& d : cgroup::default_device_rules()) rules.push_back(d);
  auto prog = cgroup::device_program(rules);
  CHECK(verifier_cfg_ok(prog));
  CHECK(run_prog(prog, C, R | W, 1, 3) == 1);   // /dev/null
  CHECK(run_prog(prog, B, R, 7, 0) == 0);       // a loop device: denied
  CHECK(run_prog(prog, B, M, 7, 0) == 1);       // b *:* m
  CHECK(run_prog(prog, C, R, 136, 4) == 1);     // /dev/pts/4
  // allow-all last: no code for any bit, everything allowed
  auto open = cgroup::device_program(res(R"({"devices":[{"allow":false,"type":"c","major":1,"minor":3},{"allow":true}]})").devices);
  CHECK(verifier_cfg_ok(open));
  CHECK(run_prog(open, C, R | W | M, 1, 3) == 1);
  // deny-all last: everything earlier is dead
  auto shut = cgroup::device_program(res(R"({"devices":[{"allow":true,"type":"c","major":1,"minor":3},{"allow":false,"access":"rw"}]})").devices);
  CHECK(verifier_cfg_ok(shut));
  CHECK(run_prog(shut, C, R, 1, 3) == 0);
  CHECK(run_prog(shut, C, M, 1, 3) == 1);
  // a catch-all in the middle: the rules after it still count
  auto mid = cgroup::device_program(res(R"({"devices":[{"allow":true,"type":"b"},{"allow":false},{"allow":true,"type":"c","major":1,"minor":5,"access":"r"}]})").devices);
  CHECK(verifier_cfg_ok(mid));
  CHECK(run_prog(mid, C, R, 1, 5) == 1);
  CHECK(run_prog(mid, C, W, 1, 5) == 0);
  CHECK(run_prog(mid, B, R, 8, 0) == 0);
}
