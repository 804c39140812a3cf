// config.json -> brig::spec::Config: typed reading with JSON paths in errors.
// Semantic rules live in validate.cpp; JSON output in to_json.cpp.
#include "spec/config.hpp"

#include "spec/json_reader.hpp"

namespace brig::spec {

using jr::json;
using jr::Obj;
using P = const jr::Path&;

// One reader per struct, found by the jr templates through ADL.

static void read(const json& j, P p, Root& x) {
  Obj o(j, p);
  o.req("path", x.path);
  o.opt("readonly", x.readonly);
}
static void read(const json& j, P p, IdMapping& x) {
  Obj o(j, p);
  o.req("containerID", x.containerID);
  o.req("hostID", x.hostID);
  o.req("size", x.size);
}
static void read(const json& j, P p, Mount& x) {
  Obj o(j, p);
  o.req("destination", x.destination);
  o.opt("type", x.type);
  o.opt("source", x.source);
  o.opt("options", x.options);
  o.opt("uidMappings", x.uidMappings);
  o.opt("gidMappings", x.gidMappings);
}
static void read(const json& j, P p, Hook& x) {
  Obj o(j, p);
  o.req("path", x.path);
  o.opt("args", x.args);
  o.opt("env", x.env);
  o.opt("timeout", x.timeout);
}
static void read(const json& j, P p, Hooks& x) {
  Obj o(j, p);
  o.opt("prestart", x.prestart);
  o.opt("createRuntime", x.createRuntime);
  o.opt("createContainer", x.createContainer);
  o.opt("startContainer", x.startContainer);
  o.opt("poststart", x.poststart);
  o.opt("poststop", x.poststop);
}

// ---- process

static void read(const json& j, P p, Box& x) {
  Obj o(j, p);
  o.req("height", x.height);
  o.req("width", x.width);
}
static void read(const json& j, P p, User& x) {
  Obj o(j, p);
  o.opt("uid", x.uid);
  o.opt("gid", x.gid);
  o.opt("umask", x.umask);
  o.opt("additionalGids", x.additionalGids);
  o.opt("username", x.username);
}
static void read(const json& j, P p, Rlimit& x) {
  Obj o(j, p);
  o.req("type", x.type);
  o.req("soft", x.soft);
  o.req("hard", x.hard);
}
static void read(const json& j, P p, Capabilities& x) {
  Obj o(j, p);
  o.opt("bounding", x.bounding);
  o.opt("effective", x.effective);
  o.opt("inheritable", x.inheritable);
  o.opt("permitted", x.permitted);
  o.opt("ambient", x.ambient);
}
static void read(const json& j, P p, Scheduler& x) {
  Obj o(j, p);
  o.req("policy", x.policy);
  o.opt("nice", x.nice);
  o.opt("priority", x.priority);
  o.opt("flags", x.flags);
  o.opt("runtime", x.runtime);
  o.opt("deadline", x.deadline);
  o.opt("period", x.period);
}
static void read(const json& j, P p, IoPriority& x) {
  Obj o(j, p);
  o.req("class", x.class_);
  o.opt("priority", x.priority);
}
static void read(const json& j, P p, ExecCPUAffinity& x) {
  Obj o(j, p);
  o.opt("initial", x.initial);
  o.opt("final", x.final);
}
static void read(const json& j, P p, Process& x) {
  Obj o(j, p);
  o.opt("terminal", x.terminal);
  o.opt("consoleSize", x.consoleSize);
  o.opt("user", x.user);
  o.opt("args", x.args);
  o.opt("commandLine", x.commandLine);
  o.opt("env", x.env);
  o.req("cwd", x.cwd);
  o.opt("capabilities", x.capabilities);
  o.opt("rlimits", x.rlimits);
  o.opt("noNewPrivileges", x.noNewPrivileges);
  o.opt("apparmorProfile", x.apparmorProfile);
  o.opt("selinuxLabel", x.selinuxLabel);
  o.opt("oomScoreAdj", x.oomScoreAdj);
  o.opt("scheduler", x.scheduler);
  o.opt("ioPriority", x.ioPriority);
  o.opt("execCPUAffinity", x.execCPUAffinity);
}

// ---- linux

static void read(const json& j, P p, Namespace& x) {
  Obj o(j, p);
  o.req("type", x.type);
  o.opt("path", x.path);
}
static void read(const json& j, P p, TimeOffset& x) {
  Obj o(j, p);
  o.opt("secs", x.secs);
  o.opt("nanosecs", x.nanosecs);
}
static void read(const json& j, P p, Device& x) {
  Obj o(j, p);
  o.req("type", x.type);
  o.req("path", x.path);
  o.opt("major", x.major);
  o.opt("minor", x.minor);
  o.opt("fileMode", x.fileMode);
  o.opt("uid", x.uid);
  o.opt("gid", x.gid);
}
static void read(const json& j, P p, DeviceCgroup& x) {
  Obj o(j, p);
  o.req("allow", x.allow);
  o.opt("type", x.type);
  o.opt("major", x.major);
  o.opt("minor", x.minor);
  o.opt("access", x.access);
}
static void read(const json& j, P p, Memory& x) {
  Obj o(j, p);
  o.opt("limit", x.limit);
  o.opt("reservation", x.reservation);
  o.opt("swap", x.swap);
  o.opt("kernel", x.kernel);
  o.opt("kernelTCP", x.kernelTCP);
  o.opt("swappiness", x.swappiness);
  o.opt("disableOOMKiller", x.disableOOMKiller);
  o.opt("useHierarchy", x.useHierarchy);
  o.opt("checkBeforeUpdate", x.checkBeforeUpdate);
}
static void read(const json& j, P p, Cpu& x) {
  Obj o(j, p);
  o.opt("shares", x.shares);
  o.opt("quota", x.quota);
  o.opt("burst", x.burst);
  o.opt("period", x.period);
  o.opt("realtimeRuntime", x.realtimeRuntime);
  o.opt("realtimePeriod", x.realtimePeriod);
  o.opt("cpus", x.cpus);
  o.opt("mems", x.mems);
  o.opt("idle", x.idle);
}
static void read(const json& j, P p, Pids& x) {
  Obj o(j, p);
  o.req("limit", x.limit);
}
static void read(const json& j, P p, WeightDevice& x) {
  Obj o(j, p);
  o.req("major", x.major);
  o.req("minor", x.minor);
  o.opt("weight", x.weight);
  o.opt("leafWeight", x.leafWeight);
}
static void read(const json& j, P p, ThrottleDevice& x) {
  Obj o(j, p);
  o.req("major", x.major);
  o.req("minor", x.minor);
  o.req("rate", x.rate);
}
static void read(const json& j, P p, BlockIO& x) {
  Obj o(j, p);
  o.opt("weight", x.weight);
  o.opt("leafWeight", x.leafWeight);
  o.opt("weightDevice", x.weightDevice);
  o.opt("throttleReadBpsDevice", x.throttleReadBpsDevice);
  o.opt("throttleWriteBpsDevice", x.throttleWriteBpsDevice);
  o.opt("throttleReadIOPSDevice", x.throttleReadIOPSDevice);
  o.opt("throttleWriteIOPSDevice", x.throttleWriteIOPSDevice);
}
static void read(const json& j, P p, HugepageLimit& x) {
  Obj o(j, p);
  o.req("pageSize", x.pageSize);
  o.req("limit", x.limit);
}
static void read(const json& j, P p, InterfacePriority& x) {
  Obj o(j, p);
  o.req("name", x.name);
  o.req("priority", x.priority);
}
static void read(const json& j, P p, Network& x) {
  Obj o(j, p);
  o.opt("classID", x.classID);
  o.opt("priorities", x.priorities);
}
static void read(const json& j, P p, Rdma& x) {
  Obj o(j, p);
  o.opt("hcaHandles", x.hcaHandles);
  o.opt("hcaObjects", x.hcaObjects);
}
static void read(const json& j, P p, Resources& x) {
  Obj o(j, p);
  o.opt("devices", x.devices);
  o.opt("memory", x.memory);
  o.opt("cpu", x.cpu);
  o.opt("pids", x.pids);
  o.opt("blockIO", x.blockIO);
  o.opt("hugepageLimits", x.hugepageLimits);
  o.opt("network", x.network);
  o.opt("rdma", x.rdma);
  o.opt("unified", x.unified);
}
static void read(const json& j, P p, SeccompArg& x) {
  Obj o(j, p);
  o.req("index", x.index);
  o.req("value", x.value);
  o.opt("valueTwo", x.valueTwo);
  o.req("op", x.op);
}
static void read(const json& j, P p, SyscallRule& x) {
  Obj o(j, p);
  o.req("names", x.names);
  o.req("action", x.action);
  o.opt("errnoRet", x.errnoRet);
  o.opt("args", x.args);
}
static void read(const json& j, P p, Seccomp& x) {
  Obj o(j, p);
  o.req("defaultAction", x.defaultAction);
  o.opt("defaultErrnoRet", x.defaultErrnoRet);
  o.opt("architectures", x.architectures);
  o.opt("flags", x.flags);
  o.opt("listenerPath", x.listenerPath);
  o.opt("listenerMetadata", x.listenerMetadata);
  o.opt("syscalls", x.syscalls);
}
static void read(const json& j, P p, IntelRdt& x) {
  Obj o(j, p);
  o.opt("closID", x.closID);
  o.opt("schemata", x.schemata);
  o.opt("l3CacheSchema", x.l3CacheSchema);
  o.opt("memBwSchema", x.memBwSchema);
  o.opt("enableMonitoring", x.enableMonitoring);
}
static void read(const json& j, P p, Personality& x) {
  Obj o(j, p);
  o.req("domain", x.domain);
  o.opt("flags", x.flags);
}
static void read(const json& j, P p, NetDevice& x) {
  Obj o(j, p);
  o.opt("name", x.name);
}
static void read(const json& j, P p, MemoryPolicy& x) {
  Obj o(j, p);
  o.req("mode", x.mode);
  o.opt("nodes", x.nodes);
  o.opt("flags", x.flags);
}
static void read(const json& j, P p, Linux& x) {
  Obj o(j, p);
  o.opt("namespaces", x.namespaces);
  o.opt("uidMappings", x.uidMappings);
  o.opt("gidMappings", x.gidMappings);
  o.opt("timeOffsets", x.timeOffsets);
  o.opt("devices", x.devices);
  o.opt("cgroupsPath", x.cgroupsPath);
  o.opt("resources", x.resources);
  o.opt("rootfsPropagation", x.rootfsPropagation);
  o.opt("seccomp", x.seccomp);
  o.opt("sysctl", x.sysctl);
  o.opt("maskedPaths", x.maskedPaths);
  o.opt("readonlyPaths", x.readonlyPaths);
  o.opt("mountLabel", x.mountLabel);
  o.opt("intelRdt", x.intelRdt);
  o.opt("personality", x.personality);
  o.opt("netDevices", x.netDevices);
  o.opt("memoryPolicy", x.memoryPolicy);
}

// ---- vm

static void read(const json& j, P p, Hypervisor& x) {
  Obj o(j, p);
  o.req("path", x.path);
  o.opt("parameters", x.parameters);
}
static void read(const json& j, P p, Kernel& x) {
  Obj o(j, p);
  o.req("path", x.path);
  o.opt("parameters", x.parameters);
  o.opt("initrd", x.initrd);
}
static void read(const json& j, P p, Image& x) {
  Obj o(j, p);
  o.req("path", x.path);
  o.req("format", x.format);
}
static void read(const json& j, P p, IoMem& x) {
  Obj o(j, p);
  o.opt("firstGFN", x.firstGFN);
  o.req("firstMFN", x.firstMFN);
  o.req("nrMFNs", x.nrMFNs);
}
static void read(const json& j, P p, HwConfig& x) {
  Obj o(j, p);
  o.opt("deviceTree", x.deviceTree);
  o.opt("vcpus", x.vcpus);
  o.opt("memory", x.memory);
  o.opt("dtdevs", x.dtdevs);
  o.opt("iomems", x.iomems);
  o.opt("irqs", x.irqs);
}
static void read(const json& j, P p, Vm& x) {
  Obj o(j, p);
  o.opt("hypervisor", x.hypervisor);
  o.req("kernel", x.kernel);
  o.opt("image", x.image);
  o.opt("hwConfig", x.hwConfig);
}

// ---- other platforms: kept raw, type-checked just enough to reject the
// schema's bad samples (freebsd jail sharing modes).

static void check_enum(const Obj& o, std::string_view key, std::initializer_list<std::string_view> allowed) {
  std::string v;
  o.opt(key, v);
  if (!o.has(key)) return;
  for (auto a : allowed)
    if (v == a) return;
  jr::fail_at(o.at(key), fmt::format("\"{}\" is not one of: {}", v, fmt::join(allowed, ", ")));
}

static void check_freebsd(const json& j) {
  Obj o(j, "freebsd");
  if (const json* devs = o.find("devices")) {
    jr::Path dp = o.at("devices");
    if (!devs->is_array()) jr::fail_at(dp, "must be an array");
    size_t i = 0;
    for (const json& dev : devs->elements()) {
      Obj d(dev, dp.at(i++));
      std::string path;
      uint32_t mode = 0;
      d.opt("path", path);
      d.opt("mode", mode);
      if (mode > 0777) jr::fail_at(d.at("mode"), "must be between 0 and 511");
    }
  }
  const json* jail = o.find("jail");
  if (!jail) return;
  Obj jl(*jail, o.at("jail"));
  std::string s;
  std::vector<std::string> list;
  uint8_t u8 = 0;
  jl.opt("parent", s);
  jl.opt("interface", s);
  jl.opt("ip4Addr", list);
  jl.opt("ip6Addr", list);
  jl.opt("vnetInterfaces", list);
  jl.opt("enforceStatfs", u8);
  check_enum(jl, "host", {"new", "inherit"});
  check_enum(jl, "vnet", {"new", "inherit"});
  for (auto k : {"ip4", "ip6", "sysvmsg", "sysvsem", "sysvshm"}) check_enum(jl, k, {"disable", "new", "inherit"});
  if (const json* allow = jl.find("allow")) {
    Obj a(*allow, jl.at("allow"));
    bool b = false;
    for (auto k : {"setHostname", "rawSockets", "chflags", "quotas", "socketAf", "mlock", "reservedPorts", "suser"})
      a.opt(k, b);
    a.opt("mount", list);
  }
}

static void read(const json& j, P p, Config& x) {
  Obj o(j, p);
  o.req("ociVersion", x.ociVersion);
  o.opt("root", x.root);
  o.opt("process", x.process);
  o.opt("hostname", x.hostname);
  o.opt("domainname", x.domainname);
  o.opt("mounts", x.mounts);
  o.opt("hooks", x.hooks);
  o.opt("annotations", x.annotations);
  o.opt("linux", x.linux);
  o.opt("vm", x.vm);
  for (auto [key, dst] : {std::pair{"solaris", &x.solaris}, std::pair{"windows", &x.windows},
                          std::pair{"zos", &x.zos}, std::pair{"freebsd", &x.freebsd}}) {
    if (const json* v = o.find(key)) {
      if (!v->is_object()) jr::fail_at(key, "must be an object");
      if (key == std::string_view("freebsd")) check_freebsd(*v);
      *dst = nlohmann::json::parse(v->text());
    }
  }
}

// ---- API

namespace {
// The typed config read from `doc`, not yet validated; `raw` is left empty.
Result<Config> read_config(const jdoc::Doc& doc) {
  return jr::guarded([&] {
    Config c;
    read(doc.root(), "", c);
    return c;
  });
}
}  // namespace

Result<Config> parse_config(std::string_view json_text) {
  TRY(jdoc::Doc doc, jdoc::parse(json_text));
  TRY(Config cfg, read_config(doc));
  cfg.raw = json_text;
  TRY_VOID(validate(cfg));
  return cfg;
}

Result<Config> parse_config_json(const nlohmann::json& doc) { return parse_config(jdoc::dump_of(doc)); }

Result<Process> parse_process(std::string_view json_text) {
  TRY(jdoc::Doc doc, jdoc::parse(json_text));
  TRY(Process proc, jr::guarded([&] {
        Process pr;
        read(doc.root(), "process", pr);
        return pr;
      }));
  TRY_VOID(validate(proc, "process"));
  return proc;
}

Result<Process> parse_process_json(const nlohmann::json& doc) { return parse_process(jdoc::dump_of(doc)); }

}  // namespace brig::spec
