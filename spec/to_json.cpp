// brig::spec::Config -> JSON. Absent optionals, empty lists and empty maps
// are omitted, so parse_config(to_json(c)) gives back c.
#include "spec/config.hpp"

namespace brig::spec {

using json = nlohmann::json;

template <class T>
static json tj(const T& v)
  requires(std::is_arithmetic_v<T> || std::is_same_v<T, std::string>)
{
  return v;
}
template <class T>
static json tj(const std::vector<T>& v);
template <class T>
static json tj(const std::map<std::string, T>& m);

// set(): omit what is absent.
template <class T>
static void set(json& j, const char* k, const T& v) { j[k] = tj(v); }
template <class T>
static void set(json& j, const char* k, const std::optional<T>& v) {
  if (v) j[k] = tj(*v);
}
template <class T>
static void set(json& j, const char* k, const std::vector<T>& v) {
  if (!v.empty()) j[k] = tj(v);
}
template <class T>
static void set(json& j, const char* k, const std::map<std::string, T>& v) {
  if (!v.empty()) j[k] = tj(v);
}
// Present-but-empty lists that matter (capabilities sets) are kept.
static void set_list(json& j, const char* k, const std::optional<std::vector<std::string>>& v) {
  if (v) j[k] = *v;
}

static json tj(const Root& x) {
  json j = json::object();
  set(j, "path", x.path);
  if (x.readonly) j["readonly"] = true;
  return j;
}
static json tj(const IdMapping& x) { return {{"containerID", x.containerID}, {"hostID", x.hostID}, {"size", x.size}}; }
static json tj(const Mount& x) {
  json j = json::object();
  set(j, "destination", x.destination);
  set(j, "type", x.type);
  set(j, "source", x.source);
  set(j, "options", x.options);
  set(j, "uidMappings", x.uidMappings);
  set(j, "gidMappings", x.gidMappings);
  return j;
}
static json tj(const Hook& x) {
  json j = json::object();
  set(j, "path", x.path);
  set(j, "args", x.args);
  set_list(j, "env", x.env);
  set(j, "timeout", x.timeout);
  return j;
}
static json tj(const Hooks& x) {
  json j = json::object();
  set(j, "prestart", x.prestart);
  set(j, "createRuntime", x.createRuntime);
  set(j, "createContainer", x.createContainer);
  set(j, "startContainer", x.startContainer);
  set(j, "poststart", x.poststart);
  set(j, "poststop", x.poststop);
  return j;
}
static json tj(const Box& x) { return {{"height", x.height}, {"width", x.width}}; }
static json tj(const User& x) {
  json j = {{"uid", x.uid}, {"gid", x.gid}};
  set(j, "umask", x.umask);
  set(j, "additionalGids", x.additionalGids);
  set(j, "username", x.username);
  return j;
}
static json tj(const Rlimit& x) { return {{"type", x.type}, {"hard", x.hard}, {"soft", x.soft}}; }
static json tj(const Capabilities& x) {
  json j = json::object();
  set_list(j, "bounding", x.bounding);
  set_list(j, "effective", x.effective);
  set_list(j, "inheritable", x.inheritable);
  set_list(j, "permitted", x.permitted);
  set_list(j, "ambient", x.ambient);
  return j;
}
static json tj(const Scheduler& x) {
  json j = {{"policy", x.policy}};
  set(j, "nice", x.nice);
  set(j, "priority", x.priority);
  set(j, "flags", x.flags);
  set(j, "runtime", x.runtime);
  set(j, "deadline", x.deadline);
  set(j, "period", x.period);
  return j;
}
static json tj(const IoPriority& x) { return {{"class", x.class_}, {"priority", x.priority}}; }
static json tj(const ExecCPUAffinity& x) {
  json j = json::object();
  set(j, "initial", x.initial);
  set(j, "final", x.final);
  return j;
}
static json tj(const Process& x) {
  json j = json::object();
  j["terminal"] = x.terminal;
  set(j, "consoleSize", x.consoleSize);
  j["user"] = tj(x.user);
  set(j, "args", x.args);
  set(j, "commandLine", x.commandLine);
  set(j, "env", x.env);
  j["cwd"] = x.cwd;
  set(j, "capabilities", x.capabilities);
  set(j, "rlimits", x.rlimits);
  if (x.noNewPrivileges) j["noNewPrivileges"] = true;
  set(j, "apparmorProfile", x.apparmorProfile);
  set(j, "selinuxLabel", x.selinuxLabel);
  set(j, "oomScoreAdj", x.oomScoreAdj);
  set(j, "scheduler", x.scheduler);
  set(j, "ioPriority", x.ioPriority);
  set(j, "execCPUAffinity", x.execCPUAffinity);
  return j;
}
static json tj(const Namespace& x) {
  json j = {{"type", x.type}};
  set(j, "path", x.path);
  return j;
}
static json tj(const TimeOffset& x) {
  json j = json::object();
  set(j, "secs", x.secs);
  set(j, "nanosecs", x.nanosecs);
  return j;
}
static json tj(const Device& x) {
  json j = {{"type", x.type}, {"path", x.path}};
  set(j, "major", x.major);
  set(j, "minor", x.minor);
  set(j, "fileMode", x.fileMode);
  set(j, "uid", x.uid);
  set(j, "gid", x.gid);
  return j;
}
static json tj(const DeviceCgroup& x) {
  json j = {{"allow", x.allow}};
  set(j, "type", x.type);
  set(j, "major", x.major);
  set(j, "minor", x.minor);
  set(j, "access", x.access);
  return j;
}
static json tj(const Memory& x) {
  json j = json::object();
  set(j, "limit", x.limit);
  set(j, "reservation", x.reservation);
  set(j, "swap", x.swap);
  set(j, "kernel", x.kernel);
  set(j, "kernelTCP", x.kernelTCP);
  set(j, "swappiness", x.swappiness);
  set(j, "disableOOMKiller", x.disableOOMKiller);
  set(j, "useHierarchy", x.useHierarchy);
  set(j, "checkBeforeUpdate", x.checkBeforeUpdate);
  return j;
}
static json tj(const Cpu& x) {
  json j = json::object();
  set(j, "shares", x.shares);
  set(j, "quota", x.quota);
  set(j, "burst", x.burst);
  set(j, "period", x.period);
  set(j, "realtimeRuntime", x.realtimeRuntime);
  set(j, "realtimePeriod", x.realtimePeriod);
  set(j, "cpus", x.cpus);
  set(j, "mems", x.mems);
  set(j, "idle", x.idle);
  return j;
}
static json tj(const Pids& x) { return {{"limit", x.limit}}; }
static json tj(const WeightDevice& x) {
  json j = {{"major", x.major}, {"minor", x.minor}};
  set(j, "weight", x.weight);
  set(j, "leafWeight", x.leafWeight);
  return j;
}
static json tj(const ThrottleDevice& x) { return {{"major", x.major}, {"minor", x.minor}, {"rate", x.rate}}; }
static json tj(const BlockIO& x) {
  json j = json::object();
  set(j, "weight", x.weight);
  set(j, "leafWeight", x.leafWeight);
  set(j, "weightDevice", x.weightDevice);
  set(j, "throttleReadBpsDevice", x.throttleReadBpsDevice);
  set(j, "throttleWriteBpsDevice", x.throttleWriteBpsDevice);
  set(j, "throttleReadIOPSDevice", x.throttleReadIOPSDevice);
  set(j, "throttleWriteIOPSDevice", x.throttleWriteIOPSDevice);
  return j;
}
static json tj(const HugepageLimit& x) { return {{"pageSize", x.pageSize}, {"limit", x.limit}}; }
static json tj(const InterfacePriority& x) { return {{"name", x.name}, {"priority", x.priority}}; }
static json tj(const Network& x) {
  json j = json::object();
  set(j, "classID", x.classID);
  set(j, "priorities", x.priorities);
  return j;
}
static json tj(const Rdma& x) {
  json j = json::object();
  set(j, "hcaHandles", x.hcaHandles);
  set(j, "hcaObjects", x.hcaObjects);
  return j;
}
static json tj(const Resources& x) {
  json j = json::object();
  set(j, "devices", x.devices);
  set(j, "memory", x.memory);
  set(j, "cpu", x.cpu);
  set(j, "pids", x.pids);
  set(j, "blockIO", x.blockIO);
  set(j, "hugepageLimits", x.hugepageLimits);
  set(j, "network", x.network);
  set(j, "rdma", x.rdma);
  set(j, "unified", x.unified);
  return j;
}
static json tj(const SeccompArg& x) {
  json j = {{"index", x.index}, {"value", x.value}, {"op", x.op}};
  set(j, "valueTwo", x.valueTwo);
  return j;
}
static json tj(const SyscallRule& x) {
  json j = {{"names", x.names}, {"action", x.action}};
  set(j, "errnoRet", x.errnoRet);
  set(j, "args", x.args);
  return j;
}
static json tj(const Seccomp& x) {
  json j = {{"defaultAction", x.defaultAction}};
  set(j, "defaultErrnoRet", x.defaultErrnoRet);
  set(j, "architectures", x.architectures);
  set(j, "flags", x.flags);
  set(j, "listenerPath", x.listenerPath);
  set(j, "listenerMetadata", x.listenerMetadata);
  set(j, "syscalls", x.syscalls);
  return j;
}
static json tj(const IntelRdt& x) {
  json j = json::object();
  set(j, "closID", x.closID);
  set_list(j, "schemata", x.schemata);
  set(j, "l3CacheSchema", x.l3CacheSchema);
  set(j, "memBwSchema", x.memBwSchema);
  set(j, "enableMonitoring", x.enableMonitoring);
  return j;
}
static json tj(const Personality& x) {
  json j = {{"domain", x.domain}};
  set(j, "flags", x.flags);
  return j;
}
static json tj(const NetDevice& x) {
  json j = json::object();
  set(j, "name", x.name);
  return j;
}
static json tj(const MemoryPolicy& x) {
  json j = {{"mode", x.mode}};
  set(j, "nodes", x.nodes);
  set(j, "flags", x.flags);
  return j;
}
static json tj(const Linux& x) {
  json j = json::object();
  set(j, "namespaces", x.namespaces);
  set(j, "uidMappings", x.uidMappings);
  set(j, "gidMappings", x.gidMappings);
  set(j, "timeOffsets", x.timeOffsets);
  set(j, "devices", x.devices);
  set(j, "cgroupsPath", x.cgroupsPath);
  set(j, "resources", x.resources);
  set(j, "rootfsPropagation", x.rootfsPropagation);
  set(j, "seccomp", x.seccomp);
  set(j, "sysctl", x.sysctl);
  set(j, "maskedPaths", x.maskedPaths);
  set(j, "readonlyPaths", x.readonlyPaths);
  set(j, "mountLabel", x.mountLabel);
  set(j, "intelRdt", x.intelRdt);
  set(j, "personality", x.personality);
  set(j, "netDevices", x.netDevices);
  set(j, "memoryPolicy", x.memoryPolicy);
  return j;
}
static json tj(const Hypervisor& x) {
  json j = {{"path", x.path}};
  set(j, "parameters", x.parameters);
  return j;
}
static json tj(const Kernel& x) {
  json j = {{"path", x.path}};
  set(j, "parameters", x.parameters);
  set(j, "initrd", x.initrd);
  return j;
}
static json tj(const Image& x) { return {{"path", x.path}, {"format", x.format}}; }
static json tj(const IoMem& x) {
  json j = {{"firstMFN", x.firstMFN}, {"nrMFNs", x.nrMFNs}};
  set(j, "firstGFN", x.firstGFN);
  return j;
}
static json tj(const HwConfig& x) {
  json j = json::object();
  set(j, "deviceTree", x.deviceTree);
  set(j, "vcpus", x.vcpus);
  set(j, "memory", x.memory);
  set(j, "dtdevs", x.dtdevs);
  set(j, "iomems", x.iomems);
  set(j, "irqs", x.irqs);
  return j;
}
static json tj(const Vm& x) {
  json j = {{"kernel", tj(x.kernel)}};
  set(j, "hypervisor", x.hypervisor);
  set(j, "image", x.image);
  set(j, "hwConfig", x.hwConfig);
  return j;
}

template <class T>
static json tj(const std::vector<T>& v) {
  json a = json::array();
  for (const auto& e : v) a.push_back(tj(e));
  return a;
}
template <class T>
static json tj(const std::map<std::string, T>& m) {
  json o = json::object();
  for (const auto& [k, e] : m) o[k] = tj(e);
  return o;
}

nlohmann::json to_json(const Process& p) { return tj(p); }

nlohmann::json to_json(const Config& c) {
  json j = json::object();
  j["ociVersion"] = c.ociVersion;
  if (!c.root.path.empty() || c.root.readonly) j["root"] = tj(c.root);
  set(j, "process", c.process);
  set(j, "hostname", c.hostname);
  set(j, "domainname", c.domainname);
  set(j, "mounts", c.mounts);
  set(j, "hooks", c.hooks);
  set(j, "annotations", c.annotations);
  set(j, "linux", c.linux);
  set(j, "vm", c.vm);
  for (auto [k, v] : {std::pair{"solaris", &c.solaris}, std::pair{"windows", &c.windows},
                      std::pair{"zos", &c.zos}, std::pair{"freebsd", &c.freebsd}})
    if (!v->is_null()) j[k] = *v;
  return j;
}

}  // namespace brig::spec
