// config.json parsing: the model, defaults, type errors with JSON paths,
// the spec's MUST rules, and the JSON round trip.
#include <catch2/catch.hpp>

#include "spec/config.hpp"
#include "test_spec_util.hpp"

using namespace brig::spec;
using nlohmann::json;

namespace {

// "" when the document is accepted, else the error message.
std::string err(const json& doc) {
  auto r = parse_config(doc);
  return r ? std::string() : r.error().msg;
}
// Apply a JSON merge patch to the base config and report.
std::string err_with(const char* patch) {
  json doc = test::base_config();
  doc.merge_patch(json::parse(patch));
  return err(doc);
}

}  // namespace

TEST_CASE("config: minimal document and defaults", "[spec][config]") {
  auto r = parse_config(std::string_view(R"({"ociVersion":"1.0.0","root":{"path":"rootfs"}})"));
  REQUIRE(r);
  CHECK(r->ociVersion == "1.0.0");
  CHECK(r->root.path == "rootfs");
  CHECK_FALSE(r->root.readonly);
  CHECK_FALSE(r->process);
  CHECK_FALSE(r->linux);
  CHECK_FALSE(r->hostname);
  CHECK(r->mounts.empty());
  CHECK(r->annotations.empty());
  CHECK(r->solaris.is_null());
  CHECK(nlohmann::json::parse(r->raw)["root"]["path"] == "rootfs");
  // A document is read through its dump, which is kept as raw, and is
  // checked the same as a text.
  auto doc = nlohmann::json::parse(R"({"ociVersion":"1.0.0","root":{"path":"rootfs"},"x":{"y":[1]}})");
  auto copied = parse_config(doc);
  REQUIRE(copied);
  CHECK(nlohmann::json::parse(copied->raw) == doc);
  auto bad = parse_config_json(nlohmann::json::parse(R"({"ociVersion":"1.0.0","root":{"path":7}})"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg == "root.path: must be a string");
}

TEST_CASE("config: process defaults and fields", "[spec][config]") {
  auto r = parse_config(test::base_config());
  REQUIRE(r);
  const Process& p = *r->process;
  CHECK_FALSE(p.terminal);
  CHECK_FALSE(p.noNewPrivileges);
  CHECK(p.user.uid == 0);
  CHECK(p.user.gid == 0);
  CHECK_FALSE(p.user.umask);
  CHECK(p.user.additionalGids.empty());
  CHECK_FALSE(p.capabilities);
  CHECK_FALSE(p.consoleSize);
  CHECK_FALSE(p.oomScoreAdj);
  CHECK(p.args == std::vector<std::string>{"sh"});
  CHECK(p.cwd == "/");

  json doc = test::base_config();
  doc["process"].merge_patch(json::parse(R"({
    "terminal": true, "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 6]},
    "env": ["A=1"], "noNewPrivileges": true, "oomScoreAdj": -500,
    "capabilities": {"bounding": ["CAP_KILL"], "ambient": []},
    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
    "apparmorProfile": "p", "selinuxLabel": "l",
    "scheduler": {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "0-3", "final": "1,2"}
  })"));
  auto q = parse_config(doc);
  REQUIRE(q);
  const Process& x = *q->process;
  CHECK(x.terminal);
  CHECK(x.consoleSize->height == 24);
  CHECK(x.consoleSize->width == 80);
  CHECK(x.user.uid == 1000);
  CHECK(x.user.gid == 100);
  CHECK(*x.user.umask == 18);
  CHECK(x.user.additionalGids == std::vector<uint32_t>{5, 6});
  CHECK(x.noNewPrivileges);
  CHECK(*x.oomScoreAdj == -500);
  CHECK(*x.capabilities->bounding == std::vector<std::string>{"CAP_KILL"});
  CHECK(x.capabilities->ambient->empty());  // present but empty != absent
  CHECK_FALSE(x.capabilities->effective);
  CHECK(x.rlimits.at(0).hard == 4096);
  CHECK(x.scheduler->policy == "SCHED_BATCH");
  CHECK(*x.scheduler->nice == 5);
  CHECK(x.ioPriority->class_ == "IOPRIO_CLASS_BE");
  CHECK(*x.execCPUAffinity->final == "1,2");
}

TEST_CASE("config: linux section", "[spec][config]") {
  json doc = test::base_config();
  doc["linux"] = json::parse(R"({
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "user"}],
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 65536}],
    "timeOffsets": {"monotonic": {"secs": -10, "nanosecs": 5}},
    "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                {"type": "p", "path": "/dev/fifo"}],
    "cgroupsPath": "/brig/x",
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
      "memory": {"limit": 536870912, "swap": -1, "disableOOMKiller": true},
      "cpu": {"shares": 1024, "quota": 100000, "period": 100000, "cpus": "0-1", "idle": 0},
      "pids": {"limit": 100},
      "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
      "unified": {"memory.high": "max"}
    },
    "rootfsPropagation": "rslave",
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
    "sysctl": {"net.ipv4.ip_forward": "1"},
    "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "intelRdt": {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20"},
    "personality": {"domain": "LINUX32", "flags": []},
    "netDevices": {"eth1": {"name": "ctr1"}, "eth2": {}},
    "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
  })");
  auto r = parse_config(doc);
  INFO((r ? "" : r.error().msg));
  REQUIRE(r);
  const Linux& l = *r->linux;
  REQUIRE(l.namespaces.size() == 3);
  CHECK(l.namespaces[1].type == "network");
  CHECK(*l.namespaces[1].path == "/var/run/netns/x");
  CHECK_FALSE(l.namespaces[0].path);
  CHECK(l.uidMappings[0].hostID == 1000);
  CHECK(l.gidMappings[0].size == 65536);
  CHECK(*l.timeOffsets.at("monotonic").secs == -10);
  CHECK(*l.devices[0].fileMode == 438);
  CHECK(*l.devices[0].major == 10);
  CHECK_FALSE(l.devices[1].major);
  CHECK(*l.cgroupsPath == "/brig/x");
  const Resources& res = *l.resources;
  CHECK_FALSE(res.devices[0].allow);
  CHECK(*res.devices[1].type == "c");
  CHECK(*res.memory->swap == -1);
  CHECK(*res.memory->disableOOMKiller);
  CHECK_FALSE(res.memory->reservation);
  CHECK(*res.cpu->cpus == "0-1");
  CHECK(res.pids->limit == 100);
  CHECK(*res.blockIO->weight == 500);
  CHECK(res.blockIO->throttleReadBpsDevice[0].rate == 1048576);
  CHECK(res.hugepageLimits[0].pageSize == "2MB");
  CHECK(res.network->priorities[0].priority == 500);
  CHECK(*res.rdma.at("mlx5_1").hcaObjects == 10000);
  CHECK(res.unified.at("memory.high") == "max");
  CHECK(*l.rootfsPropagation == "rslave");
  CHECK(l.seccomp->syscalls[0].names.size() == 2);
  CHECK(l.seccomp->syscalls[0].args[0].op == "SCMP_CMP_EQ");
  CHECK_FALSE(l.seccomp->syscalls[0].args[0].valueTwo);
  CHECK(l.sysctl.at("net.ipv4.ip_forward") == "1");
  CHECK(l.intelRdt->closID == "guaranteed_group");
  CHECK(l.personality->domain == "LINUX32");
  CHECK(*l.netDevices.at("eth1").name == "ctr1");
  CHECK_FALSE(l.netDevices.at("eth2").name);
  CHECK(l.memoryPolicy->flags.size() == 1);

  // and back: to_json then parse gives the same document
  json out = to_json(*r);
  auto again = parse_config(out);
  REQUIRE(again);
  CHECK(to_json(*again) == out);
  CHECK(out["linux"]["resources"]["rdma"]["mlx5_1"]["hcaHandles"] == 3);
  CHECK_FALSE(out["linux"]["devices"][1].contains("major"));
}

TEST_CASE("config: hooks, mounts, annotations, vm", "[spec][config]") {
  json doc = test::base_config();
  doc.merge_patch(json::parse(R"({
    "hostname": "h", "domainname": "d",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/data", "source": "/srv", "options": ["rbind", "ridmap"],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}]}],
    "hooks": {"createRuntime": [{"path": "/bin/hook", "args": ["hook", "x"], "env": ["A=b"], "timeout": 5}],
              "poststop": [{"path": "/bin/stop"}]},
    "annotations": {"org.opencontainers.image.os": "linux", "com.example": ""},
    "vm": {"hypervisor": {"path": "/usr/bin/qemu", "parameters": ["-m", "1G"]},
           "kernel": {"path": "/boot/vmlinuz", "initrd": "/boot/initrd.img"},
           "image": {"path": "/img/root.qcow2", "format": "qcow2"},
           "hwConfig": {"vcpus": 2, "memory": 1073741824, "iomems": [{"firstMFN": 1, "nrMFNs": 2}], "irqs": [5]}},
    "someFutureField": {"x": 1}
  })"));
  auto r = parse_config(doc);
  INFO((r ? "" : r.error().msg));
  REQUIRE(r);
  CHECK(*r->hostname == "h");
  CHECK(*r->domainname == "d");
  REQUIRE(r->mounts.size() == 2);
  CHECK(*r->mounts[0].type == "proc");
  CHECK(r->mounts[0].options.empty());
  CHECK_FALSE(r->mounts[1].type);
  CHECK(r->mounts[1].uidMappings[0].hostID == 100000);
  CHECK(*r->hooks->createRuntime[0].timeout == 5);
  CHECK(r->hooks->createRuntime[0].args.size() == 2);
  CHECK(r->hooks->poststop[0].path == "/bin/stop");
  CHECK(r->hooks->prestart.empty());
  CHECK(r->annotations.at("org.opencontainers.image.os") == "linux");
  CHECK(r->annotations.at("com.example").empty());
  CHECK(r->vm->kernel.path == "/boot/vmlinuz");
  CHECK(r->vm->image->format == "qcow2");
  CHECK(*r->vm->hwConfig->vcpus == 2);
  CHECK(r->vm->hwConfig->iomems[0].nrMFNs == 2);
  // unknown fields are ignored, but kept in raw
  CHECK(nlohmann::json::parse(r->raw)["someFutureField"]["x"] == 1);
  json out = to_json(*r);
  CHECK_FALSE(out.contains("someFutureField"));
  CHECK(out["annotations"]["com.example"] == "");
  CHECK(out["hooks"]["createRuntime"][0]["timeout"] == 5);
  CHECK_FALSE(out["hooks"].contains("prestart"));
  auto again = parse_config(out);
  REQUIRE(again);
  CHECK(to_json(*again) == out);
}

TEST_CASE("config: null counts as absent", "[spec][config]") {
  CHECK(err_with(R"({"hostname": null})").empty());
  json doc = test::base_config();
  doc["process"]["capabilities"] = nullptr;
  doc["linux"]["resources"] = nullptr;
  auto r = parse_config(doc);
  REQUIRE(r);
  CHECK_FALSE(r->process->capabilities);
  CHECK_FALSE(r->linux->resources);
}

TEST_CASE("config: invalid JSON and wrong top-level types", "[spec][config]") {
  auto r = parse_config(std::string_view("{\"ociVersion\": \"1.0.0\",\n  \"root\": }"));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().msg, Catch::StartsWith("invalid JSON: parse error at line 2, column"));
  CHECK(r.error().msg.find('\n') == std::string::npos);
  CHECK_THAT(parse_config(std::string_view("")).error().msg, Catch::StartsWith("invalid JSON: "));
  // A NUL ends nlohmann's input: what follows it would have gone unread (and
  // into the state file as the config's text). runc refuses it too.
  std::string nul = R"({"ociVersion":"1.3.0","root":{"path":"rootfs"}})";
  nul += std::string("\0garbage", 8);
  CHECK(parse_config(nul).error().msg == "invalid JSON: a NUL byte at offset 47");
  CHECK(err(json::array()) == "document: must be an object");
  CHECK(err(json::parse(R"({"root":{"path":"r"}})")) == "ociVersion: must be set");
  CHECK(err_with(R"({"ociVersion": 1})") == "ociVersion: must be a string");
  CHECK(err_with(R"({"ociVersion": "v1.0.0"})") == "ociVersion: \"v1.0.0\" is not a SemVer 2.0.0 version");
  CHECK(err_with(R"({"ociVersion": "1.0.2-dev"})").empty());
  CHECK(err_with(R"({"ociVersion": "1.2.0-rc.1+build.5"})").empty());
  CHECK(err_with(R"({"root": null})") == "root.path: must be set");
  CHECK(err_with(R"({"root": {"path": ""}})") == "root.path: must be set");
  CHECK(err_with(R"({"root": {"path": "r", "readonly": "yes"}})") == "root.readonly: must be a boolean");
  CHECK(err_with(R"({"root": "rootfs"})") == "root: must be an object");
  CHECK(err_with(R"({"mounts": {}})") == "mounts: must be an array");
  CHECK(err_with(R"({"hostname": ["a"]})") == "hostname: must be a string");
  CHECK(err_with(R"({"linux": []})") == "linux: must be an object");
  CHECK(err_with(R"({"solaris": 1})") == "solaris: must be an object");
}

TEST_CASE("config: integer ranges name the field", "[spec][config]") {
  CHECK(err_with(R"({"process": {"user": {"uid": -1}}})") == "process.user.uid: must be an unsigned 32-bit integer");
  CHECK(err_with(R"({"process": {"user": {"uid": 4294967296}}})") ==
        "process.user.uid: must be an unsigned 32-bit integer");
  CHECK(err_with(R"({"process": {"user": {"uid": 4294967295}}})").empty());
  CHECK(err_with(R"({"process": {"user": {"uid": 1.5}}})") == "process.user.uid: must be an unsigned 32-bit integer");
  CHECK(err_with(R"({"process": {"user": {"additionalGids": [1, "2"]}}})") ==
        "process.user.additionalGids[1]: must be an unsigned 32-bit integer");
  CHECK(err_with(R"({"process": {"oomScoreAdj": "high"}})") == "process.oomScoreAdj: must be a 32-bit integer");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 18446744073709551615}]}})")
            .empty());
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}]}})") ==
        "process.rlimits[0].soft: must be an unsigned 64-bit integer");
  CHECK(err_with(R"({"linux": {"resources": {"memory": {"limit": 9223372036854775808}}}})") ==
        "linux.resources.memory.limit: must be a 64-bit integer");
  CHECK(err_with(R"({"linux": {"resources": {"memory": {"swap": -1}}}})").empty());
  CHECK(err_with(R"({"linux": {"resources": {"blockIO": {"weight": 70000}}}})") ==
        "linux.resources.blockIO.weight: must be an unsigned 16-bit integer");
  CHECK(err_with(R"({"linux": {"devices": [{"type": "c", "path": "/dev/x", "major": "1", "minor": 3}]}})") ==
        "linux.devices[0].major: must be a 64-bit integer");
  CHECK(err_with(R"({"linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": "x"}}}}})") ==
        "linux.resources.rdma.mlx5_1.hcaHandles: must be an unsigned 32-bit integer");
}

TEST_CASE("config: map keys in paths", "[spec][config]") {
  CHECK(err_with(R"({"annotations": {"org.example.key": 1}})") == "annotations[\"org.example.key\"]: must be a string");
  CHECK(err_with(R"({"annotations": {"": "x"}})") == "annotations: keys must not be empty");
  CHECK(err_with(R"({"annotations": []})") == "annotations: must be an object");
  CHECK(err_with(R"({"linux": {"sysctl": {"net.ipv4.ip_forward": 1}}})") ==
        "linux.sysctl[\"net.ipv4.ip_forward\"]: must be a string");
  CHECK(err_with(R"({"linux": {"netDevices": {"eth0": {"name": 23}}}})") ==
        "linux.netDevices.eth0.name: must be a string");
  CHECK(err_with(R"({"linux": {"resources": {"unified": {"cpu.max": 5}}}})") ==
        "linux.resources.unified[\"cpu.max\"]: must be a string");
}

TEST_CASE("config: process rules", "[spec][config]") {
  CHECK(err_with(R"({"process": {"args": []}})") == "process.args: must have at least one entry");
  CHECK(err_with(R"({"process": {"args": null}})") == "process.args: must have at least one entry");
  CHECK(err_with(R"({"process": {"args": "sh"}})") == "process.args: must be an array");
  CHECK(err_with(R"({"process": {"args": ["sh", 1]}})") == "process.args[1]: must be a string");
  CHECK(err_with(R"({"process": {"cwd": "tmp"}})") == "process.cwd: must be an absolute path");
  CHECK(err_with(R"({"process": {"cwd": ""}})") == "process.cwd: must be set");
  CHECK(err_with(R"({"process": {"cwd": null}})") == "process.cwd: must be set");
  CHECK(err_with(R"({"process": {"terminal": 1}})") == "process.terminal: must be a boolean");
  CHECK(err_with(R"({"process": {"consoleSize": {"height": 1}}})") == "process.consoleSize.width: must be set");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]}})") ==
        "process.rlimits[0].hard: must be set");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]}})") ==
        "process.rlimits[0].type: \"NOFILE\" does not match ^RLIMIT_[A-Z]+$");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]}})") ==
        "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                                              {"type": "RLIMIT_CORE", "soft": 2, "hard": 2}]}})") ==
        "process.rlimits[1].type: duplicate rlimit \"RLIMIT_CORE\"");
  CHECK(err_with(R"({"process": {"rlimits": [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]}})") ==
        "process.rlimits[0].soft: must not be greater than hard");
  CHECK(err_with(R"({"process": {"capabilities": {"effective": ["CAP_KILL", "kill"]}}})") ==
        "process.capabilities.effective[1]: \"kill\" is not a capability name (CAP_[A-Z_]+)");
  // unknown but well-formed capability names are the runtime's warning, not an error
  CHECK(err_with(R"({"process": {"capabilities": {"bounding": ["CAP_FROM_THE_FUTURE"]}}})").empty());
  CHECK(err_with(R"({"process": {"oomScoreAdj": 1001}})") == "process.oomScoreAdj: must be between -1000 and 1000");
  CHECK(err_with(R"({"process": {"scheduler": {"nice": 1}}})") == "process.scheduler.policy: must be set");
  CHECK(err_with(R"({"process": {"scheduler": {"policy": "SCHED_FAST"}}})") ==
        "process.scheduler.policy: \"SCHED_FAST\" is not one of: SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, "
        "SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE");
  CHECK_THAT(err_with(R"({"process": {"scheduler": {"policy": "SCHED_RR", "flags": ["X"]}}})"),
             Catch::StartsWith("process.scheduler.flags[0]: \"X\" is not one of: SCHED_FLAG_RESET_ON_FORK"));
  CHECK_THAT(err_with(R"({"process": {"ioPriority": {"class": "IOPRIO_CLASS_NONE"}}})"),
             Catch::StartsWith("process.ioPriority.class: \"IOPRIO_CLASS_NONE\" is not one of: IOPRIO_CLASS_RT"));
  CHECK(err_with(R"({"process": {"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 8}}})") ==
        "process.ioPriority.priority: must be between 0 and 7");
  CHECK(err_with(R"({"process": {"execCPUAffinity": {"initial": "0-3,a"}}})") ==
        "process.execCPUAffinity.initial: \"0-3,a\" does not match ^[0-9, -]*$");
}

TEST_CASE("config: linux rules", "[spec][config]") {
  CHECK(err_with(R"({"linux": {"netDevices": {"eth/0": {}}}})") ==
        "linux.netDevices[\"eth/0\"]: not a valid interface name");
  CHECK(err_with(R"({"linux": {"netDevices": {"eth0": {"name": "a-name-much-too-long"}}}})") ==
        "linux.netDevices.eth0.name: \"a-name-much-too-long\" is not a valid interface name");
  CHECK(err_with(R"({"linux": {"netDevices": {"eth0": {"name": ".."}}}})") ==
        "linux.netDevices.eth0.name: \"..\" is not a valid interface name");
  CHECK(err_with(R"({"linux": {"netDevices": {"eth0": {"name": "net%d"}, "eth1": {"name": "x y"}}}})") ==
        "linux.netDevices.eth1.name: \"x y\" is not a valid interface name");
  CHECK(err_with(R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "foo"}]}})") ==
        "linux.namespaces[2].type: unknown namespace \"foo\"");
  CHECK(err_with(R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}})") ==
        "linux.namespaces[1].type: duplicate namespace \"pid\"");
  CHECK(err_with(R"({"linux": {"namespaces": [{"path": "/proc/1/ns/net"}]}})") ==
        "linux.namespaces[0].type: must be set");
  CHECK(err_with(R"({"linux": {"namespaces": [{"type": "network", "path": "proc/1/ns/net"}]}})") ==
        "linux.namespaces[0].path: must be an absolute path");
  for (const char* t : {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}) {
    json doc = test::base_config();
    doc["linux"]["namespaces"] = json::array({{{"type", t}}});
    CHECK(err(doc).empty());
  }
  CHECK(err_with(R"({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000}]}})") ==
        "linux.uidMappings[0].size: must be set");
  CHECK(err_with(R"({"linux": {"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}]}})") ==
        "linux.gidMappings[0].size: must be greater than zero");
  CHECK(err_with(R"({"linux": {"uidMappings": [{"containerID": 4294967295, "hostID": 1, "size": 2}]}})") ==
        "linux.uidMappings[0]: containerID + size overflows 32 bits");
  CHECK(err_with(R"({"linux": {"timeOffsets": {"realtime": {"secs": 1}}}})") ==
        "linux.timeOffsets.realtime: \"realtime\" is not one of: boottime, monotonic");
  CHECK(err_with(R"({"linux": {"timeOffsets": {"boottime": {"nanosecs": 1000000000}}}})") ==
        "linux.timeOffsets.boottime.nanosecs: must be less than 1000000000");
  CHECK(err_with(R"({"linux": {"devices": [{"type": "x", "path": "/dev/x", "major": 1, "minor": 1}]}})") ==
        "linux.devices[0].type: \"x\" is not one of: c, b, u, p");
  CHECK(err_with(R"({"linux": {"devices": [{"type": "c", "major": 1, "minor": 1}]}})") ==
        "linux.devices[0].path: must be set");
  CHECK(err_with(R"({"linux": {"devices": [{"type": "c", "path": "dev/x", "major": 1, "minor": 1}]}})") ==
        "linux.devices[0].path: must be an absolute path");
  CHECK(err_with(R"({"linux": {"devices": [{"type": "b", "path": "/dev/x", "minor": 1}]}})") ==
        "linux.devices[0].major: must be set unless type is \"p\"");
  CHECK(err_with(R"({"linux": {"resources": {"devices": [{"access": "rwm"}]}}})") ==
        "linux.resources.devices[0].allow: must be set");
  CHECK(err_with(R"({"linux": {"resources": {"devices": [{"allow": true, "access": "rwx"}]}}})") ==
        "linux.resources.devices[0].access: \"rwx\" must be a combination of r, w and m");
  CHECK(err_with(R"({"linux": {"resources": {"devices": [{"allow": true, "type": "p"}]}}})") ==
        "linux.resources.devices[0].type: \"p\" is not one of: a, c, b");
  CHECK(err_with(R"({"linux": {"resources": {"pids": {}}}})") == "linux.resources.pids.limit: must be set");
  CHECK(err_with(R"({"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 1},
                                                                 {"pageSize": "1GiB", "limit": 1}]}}})") ==
        "linux.resources.hugepageLimits[1].pageSize: \"1GiB\" does not match ^[1-9][0-9]*[KMG]B$");
  CHECK(err_with(R"({"linux": {"resources": {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}}})") ==
        "linux.resources.blockIO.weightDevice[0]: must set weight or leafWeight");
  CHECK(err_with(R"({"linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}}}})") ==
        "linux.resources.blockIO.throttleReadBpsDevice[0].rate: must be set");
  CHECK(err_with(R"({"linux": {"resources": {"rdma": {"mlx4": {}}}}})") ==
        "linux.resources.rdma.mlx4: must set hcaHandles or hcaObjects");
  CHECK(err_with(R"({"linux": {"resources": {"memory": {"swappiness": 101}}}})") ==
        "linux.resources.memory.swappiness: must be between 0 and 100");
  CHECK(err_with(R"({"linux": {"resources": {"network": {"priorities": [{"name": "eth0"}]}}}})") ==
        "linux.resources.network.priorities[0].priority: must be set");
  CHECK(err_with(R"({"linux": {"rootfsPropagation": "rprivate"}})").empty());
  CHECK_THAT(err_with(R"({"linux": {"rootfsPropagation": "recursive"}})"),
             Catch::StartsWith("linux.rootfsPropagation: \"recursive\" is not one of: private, shared, slave"));
  CHECK(err_with(R"({"linux": {"maskedPaths": ["/proc/kcore", "proc/keys"]}})") ==
        "linux.maskedPaths[1]: must be an absolute path");
  CHECK(err_with(R"({"linux": {"readonlyPaths": [""]}})") == "linux.readonlyPaths[0]: must be set");
  CHECK(err_with(R"({"linux": {"intelRdt": {"memBwSchema": "L3:0=1"}}})") ==
        "linux.intelRdt.memBwSchema: \"L3:0=1\" does not match ^MB:.*$");
  CHECK(err_with(R"({"linux": {"intelRdt": {"schemata": ["L3:0=1\nMB:0=2"]}}})") ==
        "linux.intelRdt.schemata[0]: must not contain newlines");
  CHECK(err_with(R"({"linux": {"personality": {"flags": []}}})") == "linux.personality.domain: must be set");
  CHECK(err_with(R"({"linux": {"personality": {"domain": "LINUX64"}}})") ==
        "linux.personality.domain: \"LINUX64\" is not one of: LINUX, LINUX32");
  CHECK(err_with(R"({"linux": {"memoryPolicy": {"nodes": "0"}}})") == "linux.memoryPolicy.mode: must be set");
  CHECK_THAT(err_with(R"({"linux": {"memoryPolicy": {"mode": "MPOL_FOO"}}})"),
             Catch::StartsWith("linux.memoryPolicy.mode: \"MPOL_FOO\" is not one of: MPOL_DEFAULT, MPOL_BIND"));
  CHECK_THAT(err_with(R"({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "flags": ["MPOL_F_X"]}}})"),
             Catch::StartsWith("linux.memoryPolicy.flags[0]: \"MPOL_F_X\" is not one of: MPOL_F_NUMA_BALANCING"));
}

TEST_CASE("config: seccomp rules", "[spec][config]") {
  CHECK(err_with(R"({"linux": {"seccomp": {"syscalls": []}}})") == "linux.seccomp.defaultAction: must be set");
  CHECK_THAT(err_with(R"({"linux": {"seccomp": {"defaultAction": "ALLOW"}}})"),
             Catch::StartsWith("linux.seccomp.defaultAction: \"ALLOW\" is not one of: SCMP_ACT_KILL"));
  CHECK_THAT(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]}}})"),
             Catch::StartsWith("linux.seccomp.architectures[0]: \"x86\" is not one of: SCMP_ARCH_X86"));
  CHECK_THAT(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["TSYNC"]}}})"),
             Catch::StartsWith("linux.seccomp.flags[0]: \"TSYNC\" is not one of:"));
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                           "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}}})") ==
        "linux.seccomp.syscalls[0].names: must have at least one entry");
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                           "syscalls": [{"names": ["read"]}]}}})") ==
        "linux.seccomp.syscalls[0].action: must be set");
  CHECK_THAT(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                 {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                 {"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "=="}]}]}}})"),
             Catch::StartsWith("linux.seccomp.syscalls[1].args[0].op: \"==\" is not one of: SCMP_CMP_NE"));
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                 {"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}}})") ==
        "linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5");
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}}})") ==
        "linux.seccomp.listenerMetadata: must not be set without listenerPath");
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                 {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}}})") ==
        "linux.seccomp.listenerPath: must be set when SCMP_ACT_NOTIFY is used");
  CHECK(err_with(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/s.sock",
                 "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}}})").empty());
}

TEST_CASE("config: mounts, hooks and vm rules", "[spec][config]") {
  CHECK(err_with(R"({"mounts": [{"destination": "/proc", "type": "proc"}, {"type": "tmpfs"}]})") ==
        "mounts[1].destination: must be set");
  CHECK(err_with(R"({"mounts": [{"destination": "/a", "options": "ro"}]})") == "mounts[0].options: must be an array");
  // relative destinations are allowed on Linux (interpreted relative to "/")
  CHECK(err_with(R"({"mounts": [{"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}]})").empty());
  CHECK(err_with(R"({"mounts": [{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}]})") ==
        "mounts[0].gidMappings: must be set along with uidMappings");
  CHECK(err_with(R"({"mounts": [{"destination": "/a", "source": "/b", "options": ["bind", "idmap"]}]})") ==
        "mounts[0].options: idmap needs uidMappings/gidMappings or a user namespace");
  CHECK(err_with(R"({"mounts": [{"destination": "/a", "source": "/b", "options": ["bind", "idmap"]}],
                     "linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}})")
            .empty());
  CHECK(err_with(R"({"hooks": {"prestart": [{"args": ["x"]}]}})") == "hooks.prestart[0].path: must be set");
  CHECK(err_with(R"({"hooks": {"poststart": [{"path": "/a"}, {"path": "hook"}]}})") ==
        "hooks.poststart[1].path: must be an absolute path");
  CHECK(err_with(R"({"hooks": {"createContainer": [{"path": "/a", "timeout": 0}]}})") ==
        "hooks.createContainer[0].timeout: must be greater than zero");
  CHECK(err_with(R"({"hooks": {"startContainer": {"path": "/a"}}})") == "hooks.startContainer: must be an array");
  CHECK(err_with(R"({"vm": {"hypervisor": {"path": "/q"}}})") == "vm.kernel: must be set");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "vmlinuz"}}})") == "vm.kernel.path: must be an absolute path");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "/k"}, "hypervisor": {"path": "qemu"}}})") ==
        "vm.hypervisor.path: must be an absolute path");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "/k", "initrd": "i"}}})") == "vm.kernel.initrd: must be an absolute path");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "/k"}, "image": {"path": "/i", "format": "iso"}}})") ==
        "vm.image.format: \"iso\" is not one of: raw, qcow2, vdi, vmdk, vhd");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "/k"}, "image": {"path": "/i"}}})") == "vm.image.format: must be set");
  CHECK(err_with(R"({"vm": {"kernel": {"path": "/k"}, "hwConfig": {"iomems": [{"nrMFNs": 1}]}}})") ==
        "vm.hwConfig.iomems[0].firstMFN: must be set");
}

TEST_CASE("config: other platforms are kept raw", "[spec][config]") {
  auto r = parse_config(std::string_view(
      R"({"ociVersion":"1.3.0","root":{"path":"r"},"freebsd":{"jail":{"vnet":"new","allow":{"mount":["tmpfs"]}}}})"));
  REQUIRE(r);
  CHECK(r->freebsd["jail"]["vnet"] == "new");
  CHECK(to_json(*r)["freebsd"]["jail"]["allow"]["mount"][0] == "tmpfs");
  CHECK(err(json::parse(R"({"ociVersion":"1.3.0","root":{"path":"r"},"freebsd":{"jail":{"ip4":"shared"}}})")) ==
        "freebsd.jail.ip4: \"shared\" is not one of: disable, new, inherit");
  CHECK(err(json::parse(R"({"ociVersion":"1.3.0","root":{"path":"r"},"freebsd":{"jail":{"enforceStatfs":300}}})")) ==
        "freebsd.jail.enforceStatfs: must be an unsigned 8-bit integer");
  // Hyper-V containers have no root
  CHECK(err(json::parse(R"({"ociVersion":"1.3.0","windows":{"hyperv":{}}})")).empty());
}

TEST_CASE("config: validate() on hand-built configs", "[spec][config]") {
  Config c;
  c.ociVersion = "1.3.0";
  c.root.path = "rootfs";
  CHECK(validate(c).has_value());
  c.process = Process{};
  c.process->cwd = "/";
  auto r = validate(c);
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "process.args: must have at least one entry");
  c.process->args = {"/bin/true"};
  CHECK(validate(c).has_value());
  c.linux = Linux{};
  c.linux->namespaces = {{"pid", std::nullopt}, {"bogus", std::nullopt}};
  CHECK(validate(c).error().msg == "linux.namespaces[1].type: unknown namespace \"bogus\"");
  CHECK(is_known_namespace("cgroup"));
  CHECK_FALSE(is_known_namespace("net"));
  CHECK(is_known_rlimit("RLIMIT_RTTIME"));
  CHECK_FALSE(is_known_rlimit("RLIMIT_FOO"));
}

TEST_CASE("config: to_json omits what is absent", "[spec][config]") {
  Config c;
  c.ociVersion = "1.3.0";
  c.root.path = "rootfs";
  c.process = Process{};
  c.process->args = {"sh"};
  c.process->cwd = "/";
  json j = to_json(c);
  CHECK(j == json::parse(R"({"ociVersion":"1.3.0","root":{"path":"rootfs"},
                             "process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"}})"));
  c.process->capabilities = Capabilities{};
  c.process->capabilities->bounding = std::vector<std::string>{};
  j = to_json(c);
  CHECK(j["process"]["capabilities"] == json::parse(R"({"bounding":[]})"));
  CHECK(to_json(*c.process) == j["process"]);
}

TEST_CASE("config: a NUL byte in a string or key is refused with its path", "[spec][config]") {
  // A C string stops at the NUL: "/tmp\0/x" would reach chdir as "/tmp".
  json doc = test::base_config();
  doc["process"]["cwd"] = std::string("/tmp\0/x", 7);
  CHECK(err(doc) == "process.cwd: must not contain a NUL byte");
  doc = test::base_config();
  doc["process"]["env"] = json::array({std::string("A=b\0c", 5)});
  CHECK(err(doc) == "process.env[0]: must not contain a NUL byte");
  doc = test::base_config();
  doc["annotations"] = json::object({{std::string("a\0b", 3), "c"}});
  CHECK(err(doc) == "annotations: keys must not contain a NUL byte");
  auto p = parse_process(std::string_view(R"({"args":["sh\u0000x"],"cwd":"/"})"));
  REQUIRE_FALSE(p);
  CHECK(p.error().msg == "process.args[0]: must not contain a NUL byte");
}

TEST_CASE("config: a number no double holds is invalid JSON, not an abort", "[spec][config]") {
  // Found by fuzz_config (test/fuzz/corpus/config/number-overflow-1e400):
  // nlohmann throws out_of_range.406 for it, not parse_error.
  auto r = parse_config(std::string_view(R"({"ociVersion":"1.0.0","root":{"path":"r"},"x":1e400})"));
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "invalid JSON: number overflow parsing '1e400'");
  auto p = parse_process(std::string_view(R"({"args":["sh"],"cwd":"/","user":{"uid":-1e999}})"));
  REQUIRE_FALSE(p);
  CHECK(p.error().msg.starts_with("invalid JSON: number overflow parsing"));
}
