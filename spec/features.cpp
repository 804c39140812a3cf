#include "spec/features.hpp"

#include <algorithm>

#include "spec/json_reader.hpp"

namespace brig::spec {

using jr::json;
using jr::Obj;
using oj = nlohmann::ordered_json;
using P = const jr::Path&;

const std::vector<std::string>& known_mount_options() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> o = {
        "async",      "atime",       "bind",       "defaults",    "dev",         "diratime",       "dirsync",
        "exec",       "iversion",    "lazytime",   "loud",        "mand",        "noatime",        "nodev",
        "nodiratime", "noexec",      "noiversion", "nolazytime",  "nomand",      "norelatime",     "nostrictatime",
        "nosuid",     "nosymfollow", "private",    "ratime",      "rbind",       "rdev",           "rdiratime",
        "relatime",   "remount",     "rexec",      "rnoatime",    "rnodev",      "rnodiratime",    "rnoexec",
        "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro",        "rprivate",       "rrelatime",
        "rro",        "rrw",         "rshared",    "rslave",      "rstrictatime", "rsuid",         "rsymfollow",
        "runbindable", "rw",         "shared",     "silent",      "slave",       "strictatime",    "suid",
        "symfollow",  "sync",        "tmpcopyup",  "unbindable",  "idmap",       "ridmap"};
    std::sort(o.begin(), o.end());
    return o;
  }();
  return v;
}

const std::vector<std::string>& known_capabilities() {
  static const std::vector<std::string> v = {
      "CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
      "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
      "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
      "CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
      "CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
      "CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
      "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
      "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE"};
  return v;
}

const std::vector<std::string>& known_seccomp_actions() {
  static const std::vector<std::string> v = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",        "SCMP_ACT_KILL",
                                             "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                                             "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",       "SCMP_ACT_TRAP"};
  return v;
}
const std::vector<std::string>& known_seccomp_operators() {
  static const std::vector<std::string> v = {"SCMP_CMP_EQ", "SCMP_CMP_GE",        "SCMP_CMP_GT", "SCMP_CMP_LE",
                                             "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"};
  return v;
}
const std::vector<std::string>& known_seccomp_archs() {
  static const std::vector<std::string> v = {
      "SCMP_ARCH_AARCH64",  "SCMP_ARCH_ARM",     "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
      "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",  "SCMP_ARCH_MIPS64N32",   "SCMP_ARCH_MIPSEL",
      "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64",
      "SCMP_ARCH_PPC",      "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",     "SCMP_ARCH_RISCV64",
      "SCMP_ARCH_S390",     "SCMP_ARCH_S390X",   "SCMP_ARCH_SH",          "SCMP_ARCH_SHEB",
      "SCMP_ARCH_X32",      "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64"};
  return v;
}
const std::vector<std::string>& known_seccomp_flags() {
  static const std::vector<std::string> v = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                             "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                             "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  return v;
}

// ---- reading

static void read(const json& j, P p, Enabled& x) { Obj(j, p).opt("enabled", x.enabled); }
static void read(const json& j, P p, CgroupFeatures& x) {
  Obj o(j, p);
  o.opt("v1", x.v1);
  o.opt("v2", x.v2);
  o.opt("systemd", x.systemd);
  o.opt("systemdUser", x.systemdUser);
  o.opt("rdma", x.rdma);
}
static void read(const json& j, P p, SeccompFeatures& x) {
  Obj o(j, p);
  o.opt("enabled", x.enabled);
  o.opt("actions", x.actions);
  o.opt("operators", x.operators);
  o.opt("archs", x.archs);
  o.opt("knownFlags", x.knownFlags);
  o.opt("supportedFlags", x.supportedFlags);
}
static void read(const json& j, P p, MountExtensions& x) { Obj(j, p).opt("idmap", x.idmap); }
static void read(const json& j, P p, LinuxFeatures& x) {
  Obj o(j, p);
  o.opt("namespaces", x.namespaces);
  o.opt("capabilities", x.capabilities);
  o.opt("cgroup", x.cgroup);
  o.opt("seccomp", x.seccomp);
  o.opt("apparmor", x.apparmor);
  o.opt("selinux", x.selinux);
  o.opt("intelRdt", x.intelRdt);
  o.opt("mountExtensions", x.mountExtensions);
  o.opt("netDevices", x.netDevices);
}

static void check_in(P path, const std::optional<std::vector<std::string>>& vs, const std::vector<std::string>& set) {
  if (!vs) return;
  for (size_t i = 0; i < vs->size(); ++i)
    if (std::find(set.begin(), set.end(), (*vs)[i]) == set.end())
      jr::fail_at(path.at(i), fmt::format("unknown value \"{}\"", (*vs)[i]));
}

static Result<Features> read_features(const jr::json& doc) {
  return jr::guarded([&] {
    Features f;
    Obj o(doc, "");
    o.req("ociVersionMin", f.ociVersionMin);
    o.req("ociVersionMax", f.ociVersionMax);
    o.opt("hooks", f.hooks);
    o.opt("mountOptions", f.mountOptions);
    o.opt("linux", f.linux);
    o.opt("annotations", f.annotations);
    o.opt("potentiallyUnsafeConfigAnnotations", f.potentiallyUnsafeConfigAnnotations);
    if (f.linux) {
      static const std::vector<std::string> ns = {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"};
      check_in("linux.namespaces", f.linux->namespaces, ns);
      if (f.linux->capabilities)
        for (size_t i = 0; i < f.linux->capabilities->size(); ++i) {
          const auto& c = (*f.linux->capabilities)[i];
          if (!c.starts_with("CAP_") || c.size() == 4 ||
              c.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", 4) != std::string::npos)
            jr::fail_at(jr::index("linux.capabilities", i), fmt::format("\"{}\" is not a capability name", c));
        }
      if (const auto& s = f.linux->seccomp) {
        check_in("linux.seccomp.actions", s->actions, known_seccomp_actions());
        check_in("linux.seccomp.operators", s->operators, known_seccomp_operators());
        check_in("linux.seccomp.archs", s->archs, known_seccomp_archs());
        check_in("linux.seccomp.knownFlags", s->knownFlags, known_seccomp_flags());
        check_in("linux.seccomp.supportedFlags", s->supportedFlags, known_seccomp_flags());
      }
    }
    return f;
  });
}

Result<Features> parse_features(std::string_view json_text) {
  TRY(jdoc::Doc doc, jdoc::parse(json_text));
  return read_features(doc.root());
}

Result<Features> parse_features_json(const nlohmann::json& doc) { return parse_features(jdoc::dump_of(doc)); }

// ---- writing

template <class T>
static void put(oj& j, const char* k, const std::optional<T>& v) {
  if (v) j[k] = *v;
}
static void put(oj& j, const char* k, const std::optional<Enabled>& v) {
  if (v) {
    j[k] = oj::object();
    put(j[k], "enabled", v->enabled);
  }
}

nlohmann::ordered_json to_json(const Features& f) {
  oj j;
  j["ociVersionMin"] = f.ociVersionMin;
  j["ociVersionMax"] = f.ociVersionMax;
  put(j, "hooks", f.hooks);
  put(j, "mountOptions", f.mountOptions);
  if (f.linux) {
    const auto& l = *f.linux;
    oj lj = oj::object();
    put(lj, "namespaces", l.namespaces);
    put(lj, "capabilities", l.capabilities);
    if (l.cgroup) {
      oj c = oj::object();
      put(c, "v1", l.cgroup->v1);
      put(c, "v2", l.cgroup->v2);
      put(c, "systemd", l.cgroup->systemd);
      put(c, "systemdUser", l.cgroup->systemdUser);
      put(c, "rdma", l.cgroup->rdma);
      lj["cgroup"] = c;
    }
    if (l.seccomp) {
      oj s = oj::object();
      put(s, "enabled", l.seccomp->enabled);
      put(s, "actions", l.seccomp->actions);
      put(s, "operators", l.seccomp->operators);
      put(s, "archs", l.seccomp->archs);
      put(s, "knownFlags", l.seccomp->knownFlags);
      put(s, "supportedFlags", l.seccomp->supportedFlags);
      lj["seccomp"] = s;
    }
    put(lj, "apparmor", l.apparmor);
    put(lj, "selinux", l.selinux);
    put(lj, "intelRdt", l.intelRdt);
    if (l.mountExtensions) {
      oj m = oj::object();
      put(m, "idmap", l.mountExtensions->idmap);
      lj["mountExtensions"] = m;
    }
    put(lj, "netDevices", l.netDevices);
    j["linux"] = lj;
  }
  if (!f.annotations.empty()) j["annotations"] = f.annotations;
  put(j, "potentiallyUnsafeConfigAnnotations", f.potentiallyUnsafeConfigAnnotations);
  return j;
}

Features make_features(const FeatureSupport& s) {
  Features f;
  f.ociVersionMin = "1.0.0";
  f.ociVersionMax = "1.3.0";
  f.hooks = s.hooks;
  f.mountOptions = s.mountOptions;
  LinuxFeatures l;
  l.namespaces = s.namespaces;
  l.capabilities = s.capabilities;
  l.cgroup = CgroupFeatures{s.cgroupV1, s.cgroupV2, s.systemd, s.systemdUser, s.rdma};
  SeccompFeatures sc;
  sc.enabled = s.seccomp;
  if (s.seccomp) {
    sc.actions = known_seccomp_actions();
    sc.operators = known_seccomp_operators();
    sc.archs = known_seccomp_archs();
    sc.knownFlags = known_seccomp_flags();
    sc.supportedFlags = s.seccompSupportedFlags;
  }
  l.seccomp = sc;
  l.apparmor = Enabled{s.apparmor};
  l.selinux = Enabled{s.selinux};
  l.intelRdt = Enabled{s.intelRdt};
  l.mountExtensions = MountExtensions{Enabled{s.idmapMounts}};
  l.netDevices = Enabled{s.netDevices};
  f.linux = l;
  f.annotations = s.annotations;
  if (!s.potentiallyUnsafeConfigAnnotations.empty())
    f.potentiallyUnsafeConfigAnnotations = s.potentiallyUnsafeConfigAnnotations;
  return f;
}

nlohmann::ordered_json brig_features(const FeatureSupport& s) { return to_json(make_features(s)); }

}  // namespace brig::spec
