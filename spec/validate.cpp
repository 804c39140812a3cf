// The MUST rules of runtime-spec v1.3 (config.md, config-linux.md,
// config-vm.md) and the enums/patterns of its JSON schemas, checked on the
// typed Config. The first violation is reported as "<json.path>: <reason>".
#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "spec/config.hpp"
#include "spec/json_reader.hpp"

namespace brig::spec {

using jr::fail_at;
using jr::index;
using jr::member;
using S = std::string_view;

namespace {

constexpr std::array kNamespaces{S("pid"), S("network"), S("mount"), S("ipc"), S("uts"), S("user"), S("cgroup"), S("time")};
constexpr std::array kRlimits{S("RLIMIT_AS"),      S("RLIMIT_CORE"),   S("RLIMIT_CPU"),     S("RLIMIT_DATA"),
                              S("RLIMIT_FSIZE"),   S("RLIMIT_LOCKS"),  S("RLIMIT_MEMLOCK"), S("RLIMIT_MSGQUEUE"),
                              S("RLIMIT_NICE"),    S("RLIMIT_NOFILE"), S("RLIMIT_NPROC"),   S("RLIMIT_RSS"),
                              S("RLIMIT_RTPRIO"),  S("RLIMIT_RTTIME"), S("RLIMIT_SIGPENDING"), S("RLIMIT_STACK")};
constexpr std::array kSchedPolicies{S("SCHED_OTHER"), S("SCHED_FIFO"), S("SCHED_RR"),      S("SCHED_BATCH"),
                                    S("SCHED_ISO"),   S("SCHED_IDLE"), S("SCHED_DEADLINE")};
constexpr std::array kSchedFlags{S("SCHED_FLAG_RESET_ON_FORK"), S("SCHED_FLAG_RECLAIM"),
                                 S("SCHED_FLAG_DL_OVERRUN"),    S("SCHED_FLAG_KEEP_POLICY"),
                                 S("SCHED_FLAG_KEEP_PARAMS"),   S("SCHED_FLAG_UTIL_CLAMP_MIN"),
                                 S("SCHED_FLAG_UTIL_CLAMP_MAX")};
constexpr std::array kIoprioClasses{S("IOPRIO_CLASS_RT"), S("IOPRIO_CLASS_BE"), S("IOPRIO_CLASS_IDLE")};
// The schema lists the first four; runc (and the configs containerd/podman
// write) also use the recursive forms, so brig accepts them too.
constexpr std::array kPropagation{S("private"), S("shared"), S("slave"), S("unbindable"),
                                  S("rprivate"), S("rshared"), S("rslave"), S("runbindable")};
constexpr std::array kSeccompActions{S("SCMP_ACT_KILL"),  S("SCMP_ACT_KILL_PROCESS"), S("SCMP_ACT_KILL_THREAD"),
                                     S("SCMP_ACT_TRAP"),  S("SCMP_ACT_ERRNO"),        S("SCMP_ACT_TRACE"),
                                     S("SCMP_ACT_ALLOW"), S("SCMP_ACT_LOG"),          S("SCMP_ACT_NOTIFY")};
constexpr std::array kSeccompFlags{S("SECCOMP_FILTER_FLAG_TSYNC"), S("SECCOMP_FILTER_FLAG_LOG"),
                                   S("SECCOMP_FILTER_FLAG_SPEC_ALLOW"), S("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")};
constexpr std::array kSeccompOps{S("SCMP_CMP_NE"), S("SCMP_CMP_LT"), S("SCMP_CMP_LE"),       S("SCMP_CMP_EQ"),
                                 S("SCMP_CMP_GE"), S("SCMP_CMP_GT"), S("SCMP_CMP_MASKED_EQ")};
constexpr std::array kSeccompArchs{
    S("SCMP_ARCH_X86"),        S("SCMP_ARCH_X86_64"),      S("SCMP_ARCH_X32"),         S("SCMP_ARCH_ARM"),
    S("SCMP_ARCH_AARCH64"),    S("SCMP_ARCH_LOONGARCH64"), S("SCMP_ARCH_M68K"),        S("SCMP_ARCH_MIPS"),
    S("SCMP_ARCH_MIPS64"),     S("SCMP_ARCH_MIPS64N32"),   S("SCMP_ARCH_MIPSEL"),      S("SCMP_ARCH_MIPSEL64"),
    S("SCMP_ARCH_MIPSEL64N32"), S("SCMP_ARCH_PPC"),        S("SCMP_ARCH_PPC64"),       S("SCMP_ARCH_PPC64LE"),
    S("SCMP_ARCH_S390"),       S("SCMP_ARCH_S390X"),       S("SCMP_ARCH_SH"),          S("SCMP_ARCH_SHEB"),
    S("SCMP_ARCH_PARISC"),     S("SCMP_ARCH_PARISC64"),    S("SCMP_ARCH_RISCV64")};
constexpr std::array kPersonalityDomains{S("LINUX"), S("LINUX32")};
constexpr std::array kMpolModes{S("MPOL_DEFAULT"),   S("MPOL_BIND"),           S("MPOL_INTERLEAVE"),
                                S("MPOL_WEIGHTED_INTERLEAVE"), S("MPOL_PREFERRED"), S("MPOL_PREFERRED_MANY"),
                                S("MPOL_LOCAL")};
constexpr std::array kMpolFlags{S("MPOL_F_NUMA_BALANCING"), S("MPOL_F_RELATIVE_NODES"), S("MPOL_F_STATIC_NODES")};
constexpr std::array kImageFormats{S("raw"), S("qcow2"), S("vdi"), S("vmdk"), S("vhd")};
constexpr std::array kTimeClocks{S("boottime"), S("monotonic")};

template <size_t N>
bool one_of(S v, const std::array<S, N>& set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}
template <size_t N>
void check_enum(const std::string& path, S v, const std::array<S, N>& set) {
  if (!one_of(v, set)) fail_at(path, fmt::format("\"{}\" is not one of: {}", v, fmt::join(set, ", ")));
}
template <size_t N>
void check_enums(const std::string& path, const std::vector<std::string>& vs, const std::array<S, N>& set) {
  for (size_t i = 0; i < vs.size(); ++i) check_enum(index(path, i), vs[i], set);
}
// The schema's few patterns, matched by hand: compiling a std::regex cost
// every command that parses a config (create, start, delete, exec) tens of
// microseconds and pulled in the locale machinery.
bool upper_word(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}
bool digits(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}
// ^RLIMIT_[A-Z]+$
bool rlimit_type(std::string_view v) { return v.starts_with("RLIMIT_") && upper_word(v.substr(7)); }
// ^[0-9, -]*$
bool cpu_list(std::string_view v) { return v.find_first_not_of("0123456789, -") == std::string_view::npos; }
// ^[1-9][0-9]*[KMG]B$
bool page_size(std::string_view v) {
  if (v.size() < 3 || !v.ends_with("B")) return false;
  char unit = v[v.size() - 2];
  return (unit == 'K' || unit == 'M' || unit == 'G') && v[0] != '0' && digits(v.substr(0, v.size() - 2));
}
// ^MB:.*$ ('.' is any character but a line terminator)
bool mb_schema(std::string_view v) { return v.starts_with("MB:") && v.find_first_of("\r\n") == std::string_view::npos; }

void check_pattern(const std::string& path, const std::string& v, bool (*ok)(std::string_view), const char* pattern) {
  if (!ok(v)) fail_at(path, fmt::format("\"{}\" does not match {}", v, pattern));
}
void check_abs(const std::string& path, S v) {
  if (v.empty()) fail_at(path, "must be set");
  if (v.front() != '/') fail_at(path, "must be an absolute path");
}
void check_abs_list(const std::string& path, const std::vector<std::string>& vs) {
  for (size_t i = 0; i < vs.size(); ++i) check_abs(index(path, i), vs[i]);
}
void check_no_newline(const std::string& path, S v) {
  if (v.find('\n') != S::npos) fail_at(path, "must not contain newlines");
}

void check_idmaps(const std::string& path, const std::vector<IdMapping>& maps) {
  for (size_t i = 0; i < maps.size(); ++i) {
    const auto& m = maps[i];
    auto p = index(path, i);
    if (m.size == 0) fail_at(member(p, "size"), "must be greater than zero");
    if (uint64_t(m.containerID) + m.size - 1 > UINT32_MAX) fail_at(p, "containerID + size overflows 32 bits");
    if (uint64_t(m.hostID) + m.size - 1 > UINT32_MAX) fail_at(p, "hostID + size overflows 32 bits");
  }
}

void check_caps(const std::string& path, const std::optional<std::vector<std::string>>& caps) {
  if (!caps) return;
  for (size_t i = 0; i < caps->size(); ++i) {
    const auto& c = (*caps)[i];
    bool ok = c.size() > 4 && c.starts_with("CAP_") &&
              std::all_of(c.begin() + 4, c.end(), [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '_'; });
    if (!ok) fail_at(index(path, i), fmt::format("\"{}\" is not a capability name (CAP_[A-Z_]+)", c));
  }
}

void check_process(const Process& p, const std::string& path, bool linux) {
  if (p.args.empty() && !(p.commandLine && !linux)) fail_at(member(path, "args"), "must have at least one entry");
  if (p.cwd.empty()) fail_at(member(path, "cwd"), "must be set");
  if (p.cwd.front() != '/') fail_at(member(path, "cwd"), "must be an absolute path");
  std::set<std::string> seen;
  for (size_t i = 0; i < p.rlimits.size(); ++i) {
    const auto& r = p.rlimits[i];
    auto rp = index(member(path, "rlimits"), i);
    check_pattern(member(rp, "type"), r.type, rlimit_type, "^RLIMIT_[A-Z]+$");
    if (linux && !is_known_rlimit(r.type)) fail_at(member(rp, "type"), fmt::format("unknown rlimit \"{}\"", r.type));
    if (!seen.insert(r.type).second) fail_at(member(rp, "type"), fmt::format("duplicate rlimit \"{}\"", r.type));
    if (r.soft > r.hard) fail_at(member(rp, "soft"), "must not be greater than hard");
  }
  if (p.capabilities) {
    auto cp = member(path, "capabilities");
    check_caps(member(cp, "bounding"), p.capabilities->bounding);
    check_caps(member(cp, "effective"), p.capabilities->effective);
    check_caps(member(cp, "inheritable"), p.capabilities->inheritable);
    check_caps(member(cp, "permitted"), p.capabilities->permitted);
    check_caps(member(cp, "ambient"), p.capabilities->ambient);
  }
  if (p.oomScoreAdj && (*p.oomScoreAdj < -1000 || *p.oomScoreAdj > 1000))
    fail_at(member(path, "oomScoreAdj"), "must be between -1000 and 1000");
  if (p.scheduler) {
    auto sp = member(path, "scheduler");
    check_enum(member(sp, "policy"), p.scheduler->policy, kSchedPolicies);
    check_enums(member(sp, "flags"), p.scheduler->flags, kSchedFlags);
  }
  if (p.ioPriority) {
    auto ip = member(path, "ioPriority");
    check_enum(member(ip, "class"), p.ioPriority->class_, kIoprioClasses);
    if (p.ioPriority->priority < 0 || p.ioPriority->priority > 7)
      fail_at(member(ip, "priority"), "must be between 0 and 7");
  }
  if (p.execCPUAffinity) {
    auto ap = member(path, "execCPUAffinity");
    if (p.execCPUAffinity->initial) check_pattern(member(ap, "initial"), *p.execCPUAffinity->initial, cpu_list, "^[0-9, -]*$");
    if (p.execCPUAffinity->final) check_pattern(member(ap, "final"), *p.execCPUAffinity->final, cpu_list, "^[0-9, -]*$");
  }
}

void check_resources(const Resources& r, const std::string& path) {
  for (size_t i = 0; i < r.devices.size(); ++i) {
    const auto& d = r.devices[i];
    auto dp = index(member(path, "devices"), i);
    if (d.type && *d.type != "a" && *d.type != "c" && *d.type != "b")
      fail_at(member(dp, "type"), fmt::format("\"{}\" is not one of: a, c, b", *d.type));
    if (d.access && d.access->find_first_not_of("rwm") != std::string::npos)
      fail_at(member(dp, "access"), fmt::format("\"{}\" must be a combination of r, w and m", *d.access));
  }
  for (size_t i = 0; i < r.hugepageLimits.size(); ++i)
    check_pattern(member(index(member(path, "hugepageLimits"), i), "pageSize"), r.hugepageLimits[i].pageSize,
                  page_size, "^[1-9][0-9]*[KMG]B$");
  if (r.blockIO)
    for (size_t i = 0; i < r.blockIO->weightDevice.size(); ++i) {
      const auto& w = r.blockIO->weightDevice[i];
      if (!w.weight && !w.leafWeight)
        fail_at(index(member(member(path, "blockIO"), "weightDevice"), i), "must set weight or leafWeight");
    }
  for (const auto& [dev, e] : r.rdma)
    if (!e.hcaHandles && !e.hcaObjects)
      fail_at(member(member(path, "rdma"), dev), "must set hcaHandles or hcaObjects");
  if (r.memory && r.memory->swappiness && *r.memory->swappiness > 100)
    fail_at(member(member(path, "memory"), "swappiness"), "must be between 0 and 100");
  for (const auto& [k, v] : r.unified)
    if (k.empty()) fail_at(member(path, "unified"), "keys must not be empty");
}

void check_seccomp(const Seccomp& s, const std::string& path) {
  check_enum(member(path, "defaultAction"), s.defaultAction, kSeccompActions);
  check_enums(member(path, "architectures"), s.architectures, kSeccompArchs);
  check_enums(member(path, "flags"), s.flags, kSeccompFlags);
  if (s.listenerMetadata && !s.listenerPath) fail_at(member(path, "listenerMetadata"), "must not be set without listenerPath");
  bool notify = s.defaultAction == "SCMP_ACT_NOTIFY";
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const auto& r = s.syscalls[i];
    auto rp = index(member(path, "syscalls"), i);
    if (r.names.empty()) fail_at(member(rp, "names"), "must have at least one entry");
    check_enum(member(rp, "action"), r.action, kSeccompActions);
    notify |= r.action == "SCMP_ACT_NOTIFY";
    for (size_t k = 0; k < r.args.size(); ++k) {
      auto ap = index(member(rp, "args"), k);
      check_enum(member(ap, "op"), r.args[k].op, kSeccompOps);
      if (r.args[k].index > 5) fail_at(member(ap, "index"), "must be between 0 and 5");
    }
  }
  if (notify && !s.listenerPath) fail_at(member(path, "listenerPath"), "must be set when SCMP_ACT_NOTIFY is used");
}

void check_linux(const Linux& l) {
  const std::string path = "linux";
  std::set<std::string> seen;
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    const auto& ns = l.namespaces[i];
    auto np = index(member(path, "namespaces"), i);
    if (!is_known_namespace(ns.type)) fail_at(member(np, "type"), fmt::format("unknown namespace \"{}\"", ns.type));
    if (!seen.insert(ns.type).second) fail_at(member(np, "type"), fmt::format("duplicate namespace \"{}\"", ns.type));
    if (ns.path) check_abs(member(np, "path"), *ns.path);
  }
  check_idmaps(member(path, "uidMappings"), l.uidMappings);
  check_idmaps(member(path, "gidMappings"), l.gidMappings);
  for (const auto& [clock, off] : l.timeOffsets) {
    check_enum(member(member(path, "timeOffsets"), clock), clock, kTimeClocks);
    if (off.nanosecs && *off.nanosecs >= 1000000000u)
      fail_at(member(member(member(path, "timeOffsets"), clock), "nanosecs"), "must be less than 1000000000");
  }
  for (size_t i = 0; i < l.devices.size(); ++i) {
    const auto& d = l.devices[i];
    auto dp = index(member(path, "devices"), i);
    if (d.type.size() != 1 || S("cbup").find(d.type[0]) == S::npos)
      fail_at(member(dp, "type"), fmt::format("\"{}\" is not one of: c, b, u, p", d.type));
    check_abs(member(dp, "path"), d.path);
    if (d.type != "p") {
      if (!d.major) fail_at(member(dp, "major"), "must be set unless type is \"p\"");
      if (!d.minor) fail_at(member(dp, "minor"), "must be set unless type is \"p\"");
    }
  }
  if (l.resources) check_resources(*l.resources, member(path, "resources"));
  if (l.rootfsPropagation) check_enum(member(path, "rootfsPropagation"), *l.rootfsPropagation, kPropagation);
  if (l.seccomp) check_seccomp(*l.seccomp, member(path, "seccomp"));
  for (const auto& [k, v] : l.sysctl)
    if (k.empty()) fail_at(member(path, "sysctl"), "keys must not be empty");
  check_abs_list(member(path, "maskedPaths"), l.maskedPaths);
  check_abs_list(member(path, "readonlyPaths"), l.readonlyPaths);
  if (l.intelRdt) {
    auto rp = member(path, "intelRdt");
    if (l.intelRdt->memBwSchema) {
      check_no_newline(member(rp, "memBwSchema"), *l.intelRdt->memBwSchema);
      check_pattern(member(rp, "memBwSchema"), *l.intelRdt->memBwSchema, mb_schema, "^MB:.*$");
    }
    if (l.intelRdt->l3CacheSchema) check_no_newline(member(rp, "l3CacheSchema"), *l.intelRdt->l3CacheSchema);
    if (l.intelRdt->schemata)
      for (size_t i = 0; i < l.intelRdt->schemata->size(); ++i)
        check_no_newline(index(member(rp, "schemata"), i), (*l.intelRdt->schemata)[i]);
  }
  if (l.personality) check_enum(member(member(path, "personality"), "domain"), l.personality->domain, kPersonalityDomains);
  for (const auto& [k, v] : l.netDevices) {
    if (k.empty()) fail_at(member(path, "netDevices"), "keys must not be empty");
    else if (!valid_ifname(k)) fail_at(member(member(path, "netDevices"), k), "not a valid interface name");
    else if (v.name && !valid_ifname(*v.name, true))
      fail_at(member(member(member(path, "netDevices"), k), "name"), fmt::format("\"{}\" is not a valid interface name", *v.name));
  }
  if (l.memoryPolicy) {
    auto mp = member(path, "memoryPolicy");
    check_enum(member(mp, "mode"), l.memoryPolicy->mode, kMpolModes);
    check_enums(member(mp, "flags"), l.memoryPolicy->flags, kMpolFlags);
  }
}

void check_vm(const Vm& vm) {
  if (vm.hypervisor) check_abs("vm.hypervisor.path", vm.hypervisor->path);
  check_abs("vm.kernel.path", vm.kernel.path);
  if (vm.kernel.initrd) check_abs("vm.kernel.initrd", *vm.kernel.initrd);
  if (vm.image) {
    check_abs("vm.image.path", vm.image->path);
    check_enum("vm.image.format", vm.image->format, kImageFormats);
  }
}

// ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)
//  (-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$
bool is_semver(const std::string& text) {
  std::string_view v = text;
  for (int part = 0; part < 3; ++part) {
    size_t n = 0;
    while (n < v.size() && v[n] >= '0' && v[n] <= '9') ++n;
    if (n == 0 || (n > 1 && v[0] == '0')) return false;
    v.remove_prefix(n);
    if (part < 2) {
      if (v.empty() || v[0] != '.') return false;
      v.remove_prefix(1);
    }
  }
  // Dot-separated identifiers of [0-9A-Za-z-], none empty, up to `stop`.
  auto idents = [&](char stop) {
    size_t end = stop ? v.find(stop) : std::string_view::npos;
    std::string_view s = v.substr(0, end);
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    for (char c : s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
    v.remove_prefix(s.size());
    return true;
  };
  if (!v.empty() && v[0] == '-') {
    v.remove_prefix(1);
    if (!idents('+')) return false;
  }
  if (!v.empty() && v[0] == '+') {
    v.remove_prefix(1);
    if (!idents(0)) return false;
  }
  return v.empty();
}

void check_config(const Config& c) {
  if (c.ociVersion.empty()) fail_at("ociVersion", "must be set");
  if (!is_semver(c.ociVersion)) fail_at("ociVersion", fmt::format("\"{}\" is not a SemVer 2.0.0 version", c.ociVersion));
  // root is optional only for Hyper-V (Windows) containers.
  if (c.root.path.empty() && c.windows.is_null()) fail_at("root.path", "must be set");
  bool linux = c.solaris.is_null() && c.windows.is_null() && c.zos.is_null() && c.freebsd.is_null();
  if (c.process) check_process(*c.process, "process", linux);
  bool userns = c.linux && std::any_of(c.linux->namespaces.begin(), c.linux->namespaces.end(),
                                       [](const Namespace& n) { return n.type == "user"; });
  for (size_t i = 0; i < c.mounts.size(); ++i) {
    const auto& m = c.mounts[i];
    auto mp = index("mounts", i);
    if (m.destination.empty()) fail_at(member(mp, "destination"), "must be set");
    if (!m.uidMappings.empty() && m.gidMappings.empty())
      fail_at(member(mp, "gidMappings"), "must be set along with uidMappings");
    if (m.uidMappings.empty() && !m.gidMappings.empty())
      fail_at(member(mp, "uidMappings"), "must be set along with gidMappings");
    check_idmaps(member(mp, "uidMappings"), m.uidMappings);
    check_idmaps(member(mp, "gidMappings"), m.gidMappings);
    // idmap/ridmap need a mapping: the mount's own or the container's user namespace.
    bool idmap = std::any_of(m.options.begin(), m.options.end(), [](const std::string& o) {
      return o == "idmap" || o == "ridmap";
    });
    if (idmap && m.uidMappings.empty() && !userns)
      fail_at(member(mp, "options"), "idmap needs uidMappings/gidMappings or a user namespace");
  }
  if (c.hooks) {
    auto check_hooks = [](const char* name, const std::vector<Hook>& hs) {
      for (size_t i = 0; i < hs.size(); ++i) {
        auto hp = index(member("hooks", name), i);
        check_abs(member(hp, "path"), hs[i].path);
        if (hs[i].timeout && *hs[i].timeout <= 0) fail_at(member(hp, "timeout"), "must be greater than zero");
      }
    };
    check_hooks("prestart", c.hooks->prestart);
    check_hooks("createRuntime", c.hooks->createRuntime);
    check_hooks("createContainer", c.hooks->createContainer);
    check_hooks("startContainer", c.hooks->startContainer);
    check_hooks("poststart", c.hooks->poststart);
    check_hooks("poststop", c.hooks->poststop);
  }
  for (const auto& [k, v] : c.annotations)
    if (k.empty()) fail_at("annotations", "keys must not be empty");
  if (c.linux) check_linux(*c.linux);
  if (c.vm) check_vm(*c.vm);
}

}  // namespace

bool is_known_namespace(std::string_view type) { return one_of(type, kNamespaces); }
bool is_known_rlimit(std::string_view type) { return one_of(type, kRlimits); }

bool valid_ifname(std::string_view name, bool template_ok) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (unsigned char c : name)
    if (c == '/' || c == ':' || std::isspace(c) || c < 0x20 || c == 0x7f) return false;
  size_t pct = name.find('%');
  if (pct == std::string_view::npos) return true;
  // the kernel numbers "eth%d" itself; one %d, nothing else after a '%'
  return template_ok && name.substr(pct, 2) == "%d" && name.find('%', pct + 1) == std::string_view::npos;
}

Result<void> validate(const Config& cfg) {
  return jr::guarded([&] { check_config(cfg); });
}

Result<void> validate(const Process& p, std::string_view path) {
  return jr::guarded([&] { check_process(p, std::string(path), true); });
}

}  // namespace brig::spec
