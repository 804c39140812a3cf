// OCI runtime-spec v1.3 container configuration (config.json) as C++ types.
//
// Every member is named exactly like its JSON key; struct types are the
// PascalCase object names of config.md / config-linux.md / config-vm.md.
// Optional JSON fields are std::optional<T>; optional lists and maps are plain
// (empty when absent); booleans with a spec default are plain bools.
// The only exception is IoPriority::class_ ("class" is a C++ keyword).
//
// Nothing here makes a syscall: the runtime reads the file, spec/ parses it.
#pragma once

#include <cstdint>
#include <concepts>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"

// Config::linux is named after its JSON key; in GNU modes (-std=gnu++23) the
// compiler predefines `linux` as 1. brig builds with extensions off; this
// keeps the header usable either way (use __linux__ for platform checks).
#ifdef linux
#undef linux
#endif

namespace brig::spec {

inline constexpr const char* kOciVersion = "1.3.0";

// ---- common --------------------------------------------------------------

struct Root {
  std::string path;
  bool readonly = false;
};

struct IdMapping {
  uint32_t containerID = 0;
  uint32_t hostID = 0;
  uint32_t size = 0;
};

struct Mount {
  std::string destination;
  std::optional<std::string> type;
  std::optional<std::string> source;
  std::vector<std::string> options;
  std::vector<IdMapping> uidMappings, gidMappings;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::optional<std::vector<std::string>> env;  // absent: the runtime's; [] an empty one
  std::optional<int64_t> timeout;  // seconds, > 0 when set
};

struct Hooks {
  std::vector<Hook> prestart;  // deprecated, still run
  std::vector<Hook> createRuntime;
  std::vector<Hook> createContainer;
  std::vector<Hook> startContainer;
  std::vector<Hook> poststart;
  std::vector<Hook> poststop;
};

// ---- process -------------------------------------------------------------

struct Box {
  uint64_t height = 0;
  uint64_t width = 0;
};

struct User {
  uint32_t uid = 0, gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additionalGids;
  std::optional<std::string> username;  // Windows
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct Capabilities {
  std::optional<std::vector<std::string>> bounding, effective, inheritable, permitted, ambient;
};

struct Scheduler {
  std::string policy;  // SCHED_OTHER, SCHED_FIFO, ...
  std::optional<int32_t> nice;
  std::optional<int32_t> priority;
  std::vector<std::string> flags;
  std::optional<uint64_t> runtime, deadline, period;
};

struct IoPriority {
  std::string class_;  // JSON "class": IOPRIO_CLASS_RT|BE|IDLE
  int32_t priority = 0;
};

struct ExecCPUAffinity {
  std::optional<std::string> initial;
  std::optional<std::string> final;
};

struct Process {
  bool terminal = false;
  std::optional<Box> consoleSize;
  User user;
  std::vector<std::string> args;
  std::optional<std::string> commandLine;
  std::vector<std::string> env;
  std::string cwd;
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool noNewPrivileges = false;
  std::optional<std::string> apparmorProfile, selinuxLabel;
  std::optional<int> oomScoreAdj;
  std::optional<Scheduler> scheduler;
  std::optional<IoPriority> ioPriority;
  std::optional<ExecCPUAffinity> execCPUAffinity;
};

// ---- linux ---------------------------------------------------------------

struct Namespace {
  std::string type;  // pid network mount ipc uts user cgroup time
  std::optional<std::string> path;
};

struct TimeOffset {
  std::optional<int64_t> secs;
  std::optional<uint32_t> nanosecs;
};

struct Device {
  std::string type;  // c b u p
  std::string path;
  std::optional<int64_t> major, minor;
  std::optional<uint32_t> fileMode;
  std::optional<uint32_t> uid, gid;
};

struct DeviceCgroup {
  bool allow = false;
  std::optional<std::string> type;  // a c b
  std::optional<int64_t> major, minor;
  std::optional<std::string> access;  // subset of "rwm"
};

struct Memory {
  std::optional<int64_t> limit, reservation, swap, kernel, kernelTCP;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disableOOMKiller, useHierarchy, checkBeforeUpdate;
};

struct Cpu {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;
  std::optional<uint64_t> burst;
  std::optional<uint64_t> period;
  std::optional<int64_t> realtimeRuntime;
  std::optional<uint64_t> realtimePeriod;
  std::optional<std::string> cpus, mems;
  std::optional<int64_t> idle;
};

struct Pids {
  int64_t limit = 0;
};

struct WeightDevice {
  int64_t major = 0, minor = 0;
  std::optional<uint16_t> weight, leafWeight;
};

struct ThrottleDevice {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;
};

struct BlockIO {
  std::optional<uint16_t> weight, leafWeight;
  std::vector<WeightDevice> weightDevice;
  std::vector<ThrottleDevice> throttleReadBpsDevice, throttleWriteBpsDevice;
  std::vector<ThrottleDevice> throttleReadIOPSDevice, throttleWriteIOPSDevice;
};

struct HugepageLimit {
  std::string pageSize;  // "2MB"
  uint64_t limit = 0;
};

struct InterfacePriority {
  std::string name;
  uint32_t priority = 0;
};

struct Network {
  std::optional<uint32_t> classID;
  std::vector<InterfacePriority> priorities;
};

struct Rdma {
  std::optional<uint32_t> hcaHandles, hcaObjects;
};

struct Resources {
  std::vector<DeviceCgroup> devices;
  std::optional<Memory> memory;
  std::optional<Cpu> cpu;
  std::optional<Pids> pids;
  std::optional<BlockIO> blockIO;
  std::vector<HugepageLimit> hugepageLimits;
  std::optional<Network> network;
  std::map<std::string, Rdma> rdma;
  std::map<std::string, std::string> unified;
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  std::optional<uint64_t> valueTwo;
  std::string op;  // SCMP_CMP_*
};

struct SyscallRule {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_*
  std::optional<uint32_t> errnoRet;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string defaultAction;
  std::optional<uint32_t> defaultErrnoRet;
  std::vector<std::string> architectures;  // SCMP_ARCH_*
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_*
  std::optional<std::string> listenerPath, listenerMetadata;
  std::vector<SyscallRule> syscalls;
};

struct IntelRdt {
  std::optional<std::string> closID;
  std::optional<std::vector<std::string>> schemata;
  std::optional<std::string> l3CacheSchema, memBwSchema;
  std::optional<bool> enableMonitoring;
};

struct Personality {
  std::string domain;  // LINUX | LINUX32
  std::vector<std::string> flags;
};

struct NetDevice {
  std::optional<std::string> name;
};

struct MemoryPolicy {
  std::string mode;  // MPOL_*
  std::optional<std::string> nodes;
  std::vector<std::string> flags;  // MPOL_F_*
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uidMappings, gidMappings;
  std::map<std::string, TimeOffset> timeOffsets;
  std::vector<Device> devices;
  std::optional<std::string> cgroupsPath;
  std::optional<Resources> resources;
  std::optional<std::string> rootfsPropagation;
  std::optional<Seccomp> seccomp;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> maskedPaths, readonlyPaths;
  std::optional<std::string> mountLabel;
  std::optional<IntelRdt> intelRdt;
  std::optional<Personality> personality;
  std::map<std::string, NetDevice> netDevices;
  std::optional<MemoryPolicy> memoryPolicy;
};

// ---- vm ------------------------------------------------------------------

struct Hypervisor {
  std::string path;
  std::vector<std::string> parameters;
};

struct Kernel {
  std::string path;
  std::vector<std::string> parameters;
  std::optional<std::string> initrd;
};

struct Image {
  std::string path;
  std::string format;  // raw qcow2 vdi vmdk vhd
};

struct IoMem {
  std::optional<uint64_t> firstGFN;
  uint64_t firstMFN = 0;
  uint64_t nrMFNs = 0;
};

struct HwConfig {
  std::optional<std::string> deviceTree;
  std::optional<uint32_t> vcpus;
  std::optional<uint64_t> memory;
  std::vector<std::string> dtdevs;
  std::vector<IoMem> iomems;
  std::vector<uint32_t> irqs;
};

struct Vm {
  std::optional<Hypervisor> hypervisor;
  Kernel kernel;
  std::optional<Image> image;
  std::optional<HwConfig> hwConfig;
};

// ---- the document --------------------------------------------------------

struct Config {
  std::string ociVersion;
  Root root;  // required for linux
  std::optional<Process> process;
  std::optional<std::string> hostname, domainname;
  std::vector<Mount> mounts;
  std::optional<Hooks> hooks;
  std::map<std::string, std::string> annotations;
  std::optional<Linux> linux;
  std::optional<Vm> vm;
  nlohmann::json solaris, windows, zos, freebsd;  // kept raw (null when absent)
  std::string raw;                                // the JSON text it was read from
};

// ---- API -----------------------------------------------------------------

// Parse + validate. Errors are one line: "<json.path>: <reason>".
Result<Config> parse_config(std::string_view json_text);
// The same for a document (its dump is read, and kept as `raw`).
Result<Config> parse_config_json(const nlohmann::json& doc);
// A template so that strings never convert to json: only a json document lands here.
template <class J>
  requires std::same_as<J, nlohmann::json>
Result<Config> parse_config(const J& doc) {
  return parse_config_json(doc);
}
// Semantic checks (MUST rules of the spec); called by parse_config.
Result<void> validate(const Config&);
// A Linux interface name the kernel takes (dev_valid_name): 1..15 bytes, not
// "." or "..", no '/', ':' or whitespace; `template_ok` also lets "%d" through.
bool valid_ifname(std::string_view name, bool template_ok = false);
Result<void> validate(const Process&, std::string_view path = "process");

// process.json for `exec --process`: validated (args non-empty, cwd absolute).
Result<Process> parse_process(std::string_view json_text);
Result<Process> parse_process_json(const nlohmann::json& doc);
// A template so that strings never convert to json: only a json document lands here.
template <class J>
  requires std::same_as<J, nlohmann::json>
Result<Process> parse_process(const J& doc) {
  return parse_process_json(doc);
}

// Back to JSON; absent optionals are omitted. `raw` is not consulted.
nlohmann::json to_json(const Config&);
nlohmann::json to_json(const Process&);

// What `brig spec` writes: runc 1.1.5's `runc spec` [--rootless], with
// ociVersion 1.3.0. For rootless, host_uid/host_gid are mapped to 0 (the
// caller passes geteuid()/getegid(); spec/ makes no syscalls).
nlohmann::ordered_json default_config_ordered(bool rootless, uint32_t host_uid = 0,
                                              uint32_t host_gid = 0);
nlohmann::json default_config(bool rootless, uint32_t host_uid = 0, uint32_t host_gid = 0);

// Known names, shared with the runtime.
bool is_known_namespace(std::string_view type);
bool is_known_rlimit(std::string_view type);  // RLIMIT_* on Linux

}  // namespace brig::spec
