#include "rootfs/plan.hpp"

#include <sys/mount.h>

#include <algorithm>
#include <map>

#include "runtime/core/sys.hpp"

namespace brig::rootfs {
namespace {

struct AttrOpt {
  uint64_t set, clr;
};
// Options that change a mount attribute (top mount).
const std::map<std::string, AttrOpt, std::less<>> kAttr = {
    {"ro", {MOUNT_ATTR_RDONLY, 0}},
    {"rw", {0, MOUNT_ATTR_RDONLY}},
    {"nosuid", {MOUNT_ATTR_NOSUID, 0}},
    {"suid", {0, MOUNT_ATTR_NOSUID}},
    {"nodev", {MOUNT_ATTR_NODEV, 0}},
    {"dev", {0, MOUNT_ATTR_NODEV}},
    {"noexec", {MOUNT_ATTR_NOEXEC, 0}},
    {"exec", {0, MOUNT_ATTR_NOEXEC}},
    {"noatime", {MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME}},
    {"relatime", {MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME}},
    {"strictatime", {MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME}},
    // "atime" and "nostrictatime" undo noatime/strictatime: back to the kernel's
    // default, relatime (MOUNT_ATTR_RELATIME is 0). "norelatime" only clears
    // relatime, after which the kernel applies relatime again: nothing to do.
    {"atime", {MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME}},
    {"norelatime", {0, 0}},
    {"nostrictatime", {MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME}},
    {"nodiratime", {MOUNT_ATTR_NODIRATIME, 0}},
    {"diratime", {0, MOUNT_ATTR_NODIRATIME}},
    {"nosymfollow", {MOUNT_ATTR_NOSYMFOLLOW, 0}},
    {"symfollow", {0, MOUNT_ATTR_NOSYMFOLLOW}},
};

struct PropOpt {
  uint64_t flag;
  bool rec;
};
const std::map<std::string, PropOpt, std::less<>> kProp = {
    {"private", {MS_PRIVATE, false}},       {"rprivate", {MS_PRIVATE, true}},
    {"shared", {MS_SHARED, false}},         {"rshared", {MS_SHARED, true}},
    {"slave", {MS_SLAVE, false}},           {"rslave", {MS_SLAVE, true}},
    {"unbindable", {MS_UNBINDABLE, false}}, {"runbindable", {MS_UNBINDABLE, true}},
};

const char* const kSbFlags[] = {"sync", "async", "dirsync", "mand", "nomand", "lazytime", "nolazytime"};

void add_attr(uint64_t& set, uint64_t& clr, AttrOpt a) {
  if (a.clr & MOUNT_ATTR__ATIME) set &= ~MOUNT_ATTR__ATIME;
  set = (set & ~a.clr) | a.set;
  clr = (clr & ~a.set) | a.clr;
}

bool is_abs(const std::string& p) { return !p.empty() && p[0] == '/'; }

std::string container_path(const std::string& dest) {
  // Relative destinations are relative to "/" (runtime-spec v1.2).
  std::string p = sys::clean_path("/" + dest);
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string basename_of(const std::string& p) { return p.substr(p.rfind('/') + 1); }

}  // namespace

bool MountFlags::readonly() const { return attr_set & MOUNT_ATTR_RDONLY; }
bool MountFlags::rreadonly() const { return rattr_set & MOUNT_ATTR_RDONLY; }

Result<MountFlags> parse_options(const std::vector<std::string>& options) {
  MountFlags f;
  for (const auto& o : options) {
    if (auto a = kAttr.find(o); a != kAttr.end()) {
      add_attr(f.attr_set, f.attr_clr, a->second);
    } else if (o.size() > 1 && o[0] == 'r' && kAttr.count(o.substr(1)) && o != "relatime" &&
               o != "rw" && o != "ro") {
      add_attr(f.rattr_set, f.rattr_clr, kAttr.find(o.substr(1))->second);
    } else if (o == "rro" || o == "rrw") {
      add_attr(f.rattr_set, f.rattr_clr, kAttr.find(o.substr(1))->second);
    } else if (o == "rrelatime") {
      add_attr(f.rattr_set, f.rattr_clr, kAttr.find("relatime")->second);
    } else if (auto p = kProp.find(o); p != kProp.end()) {
      f.propagation = p->second.flag;
      f.propagation_rec = p->second.rec;
    } else if (o == "bind") {
      f.bind = true;
    } else if (o == "rbind") {
      f.bind = f.rbind = true;
    } else if (o == "remount") {
      f.remount = true;
    } else if (o == "idmap") {
      f.idmap = true;
    } else if (o == "ridmap") {
      f.idmap = f.ridmap = true;
    } else if (o == "tmpcopyup") {
      f.tmpcopyup = true;
    } else if (o == "defaults") {
      // mount(8)'s "defaults" means nothing here.
    } else if (std::find(std::begin(kSbFlags), std::end(kSbFlags), o) != std::end(kSbFlags)) {
      f.sb_flags.push_back(o);
    } else {
      auto eq = o.find('=');
      if (eq == std::string::npos)
        f.data.emplace_back(o, "");
      else
        f.data.emplace_back(o.substr(0, eq), o.substr(eq + 1));
    }
  }
  return f;
}

std::vector<spec::Device> default_devices() {
  auto dev = [](const char* path, uint32_t maj, uint32_t min) {
    spec::Device d;
    d.type = "c";
    d.path = path;
    d.major = maj;
    d.minor = min;
    d.fileMode = 0666;
    d.uid = 0;
    d.gid = 0;
    return d;
  };
  return {dev("/dev/null", 1, 3),    dev("/dev/zero", 1, 5),    dev("/dev/full", 1, 7),
          dev("/dev/random", 1, 8),  dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0)};
}

namespace {

// The cgroup filesystem inside the container. v1 (and hybrid) hosts: a tmpfs
// with one bind per hierarchy of the container's own cgroup (combined
// controllers get symlinks). v2: a cgroup2 mount (the cgroup namespace makes
// its root the container's cgroup); without a cgroup namespace, a bind of the
// container's cgroup directory.
void plan_cgroup(Plan& p, const spec::Mount& m, const std::string& target, const MountFlags& fl,
                 const Context& ctx, const std::string& origin) {
  bool v2only = cgroup::layout_of(ctx.cgroups) == cgroup::Layout::v2;
  if (v2only || m.type == "cgroup2") {
    const cgroup::Hierarchy* h = nullptr;
    std::string dir;
    for (size_t i = 0; i < ctx.cgroups.size(); i++)
      if (ctx.cgroups[i].v2) {
        h = &ctx.cgroups[i];
        dir = ctx.cgroup_dirs.empty() ? h->mountpoint + ctx.cgroup_path : ctx.cgroup_dirs[i];
      }
    Op op;
    op.origin = origin;
    op.target = target;
    op.flags = fl;
    op.flags.data.clear();
    if (ctx.cgroupns || !h) {
      op.kind = Op::Kind::fs;
      op.fstype = "cgroup2";
      op.source = "cgroup";
    } else {
      op.kind = Op::Kind::bind;
      op.source = dir;
      op.flags.bind = true;
    }
    p.ops.push_back(std::move(op));
    return;
  }
  Op tmpfs;
  tmpfs.kind = Op::Kind::fs;
  tmpfs.fstype = "tmpfs";
  tmpfs.source = "tmpfs";
  tmpfs.target = target;
  tmpfs.origin = origin;
  tmpfs.flags.attr_set = fl.attr_set & ~MOUNT_ATTR_RDONLY;  // made read-only after the binds
  tmpfs.flags.attr_clr = fl.attr_clr;
  tmpfs.flags.data = {{"mode", "755"}};
  p.ops.push_back(tmpfs);
  for (size_t i = 0; i < ctx.cgroups.size(); i++) {
    const auto& h = ctx.cgroups[i];
    if (h.v2) continue;  // hybrid hosts: the v1 controllers, as runc mounts them
    std::string dir = basename_of(h.mountpoint);
    Op b;
    b.kind = Op::Kind::bind;
    b.origin = origin;
    b.source = ctx.cgroup_dirs.empty() ? h.mountpoint + ctx.cgroup_path : ctx.cgroup_dirs[i];
    b.target = target + "/" + dir;
    b.source_dir = true;
    b.flags.bind = true;
    b.flags.attr_set = fl.attr_set;
    b.flags.attr_clr = fl.attr_clr;
    p.ops.push_back(std::move(b));
    if (dir.find(',') != std::string::npos) {
      size_t i = 0;
      while (i <= dir.size()) {
        size_t j = dir.find(',', i);
        if (j == std::string::npos) j = dir.size();
        Op l;
        l.kind = Op::Kind::symlink;
        l.origin = origin;
        l.source = dir;
        l.target = target + "/" + dir.substr(i, j - i);
        p.ops.push_back(std::move(l));
        i = j + 1;
      }
    }
  }
  if (fl.attr_set & MOUNT_ATTR_RDONLY) {
    Op ro;
    ro.kind = Op::Kind::setattr;
    ro.origin = origin;
    ro.target = target;
    ro.flags.attr_set = MOUNT_ATTR_RDONLY;
    p.ops.push_back(std::move(ro));
  }
}

}  // namespace

Result<Plan> plan(const spec::Config& cfg, const Context& ctx) {
  Plan p;
  p.readonly_root = cfg.root.readonly;
  if (cfg.linux && cfg.linux->rootfsPropagation) {
    auto it = kProp.find(*cfg.linux->rootfsPropagation);
    if (it == kProp.end())
      return fail_msg("linux.rootfsPropagation: unknown propagation \"{}\"", *cfg.linux->rootfsPropagation);
    p.root_propagation = it->second.flag | (it->second.rec ? MS_REC : 0);
  }

  bool dev_is_bound = false;
  for (size_t i = 0; i < cfg.mounts.size(); i++) {
    const auto& m = cfg.mounts[i];
    std::string origin = fmt::format("mounts[{}]", i);
    if (m.destination.empty()) return fail_msg("{}.destination: must be set", origin);
    TRY(MountFlags fl, parse_options(m.options));
    std::string target = container_path(m.destination);
    std::string type = m.type.value_or("");
    if (type == "cgroup" || type == "cgroup2") {
      plan_cgroup(p, m, target, fl, ctx, origin);
      continue;
    }
    Op op;
    op.origin = origin;
    op.target = target;
    op.flags = fl;
    op.uidMappings = m.uidMappings;
    op.gidMappings = m.gidMappings;
    if (fl.remount) {
      // "remount": change the mount already at the destination (attributes,
      // propagation, filesystem options), made by an earlier entry or the rootfs.
      if (fl.idmap) return fail_msg("{}.options: idmap cannot be changed by a remount", origin);
      op.kind = Op::Kind::setattr;
      op.fstype = type;
    } else if (fl.bind || type == "bind") {
      op.kind = Op::Kind::bind;
      op.flags.bind = true;
      std::string src = m.source.value_or("");
      if (src.empty()) return fail_msg("{}.source: a bind mount needs a source", origin);
      op.source = is_abs(src) ? sys::clean_path(src) : sys::clean_path(ctx.bundle + "/" + src);
      if (target == "/dev") dev_is_bound = true;
      if (!m.uidMappings.empty() || !m.gidMappings.empty()) op.flags.idmap = true;  // implied
      if (op.flags.idmap) {
        if (m.uidMappings.empty() != m.gidMappings.empty())
          return fail_msg("{}: uidMappings and gidMappings must be given together", origin);
        if (m.uidMappings.empty()) {
          // No mappings of its own: the container's, if it has a user namespace.
          if (!ctx.userns || !cfg.linux || cfg.linux->uidMappings.empty())
            return fail_msg("{}.options: idmap needs uidMappings and gidMappings, or a user namespace", origin);
          op.uidMappings = cfg.linux->uidMappings;
          op.gidMappings = cfg.linux->gidMappings;
        }
      }
    } else {
      if (type.empty()) return fail_msg("{}.type: must be set for a non-bind mount", origin);
      if (fl.idmap || !m.uidMappings.empty() || !m.gidMappings.empty())
        return fail_msg("{}.options: idmap is only for bind mounts", origin);
      if (fl.tmpcopyup && type != "tmpfs") return fail_msg("{}.options: tmpcopyup is only for tmpfs mounts", origin);
      op.kind = Op::Kind::fs;
      op.fstype = type;
      op.source = m.source.value_or(type);
      // runc labels every filesystem but these (and binds) with linux.mountLabel.
      static const char* const unlabeled[] = {"proc", "sysfs", "mqueue"};
      if (cfg.linux && cfg.linux->mountLabel &&
          std::find(std::begin(unlabeled), std::end(unlabeled), type) == std::end(unlabeled))
        op.label = *cfg.linux->mountLabel;
    }
    p.ops.push_back(std::move(op));
  }

  if (!dev_is_bound) {
    std::vector<spec::Device> devs = default_devices();
    if (cfg.linux)
      for (const auto& d : cfg.linux->devices) {
        std::erase_if(devs, [&](const spec::Device& x) { return x.path == d.path; });
        devs.push_back(d);
      }
    size_t user_start = devs.size() - (cfg.linux ? cfg.linux->devices.size() : 0);
    for (size_t i = 0; i < devs.size(); i++) {
      const auto& d = devs[i];
      Op op;
      op.kind = Op::Kind::device;
      op.origin = i >= user_start ? fmt::format("linux.devices[{}]", i - user_start) : "default device";
      op.target = container_path(d.path);
      op.dev_type = d.type.empty() ? 'c' : d.type[0];
      op.major = static_cast<uint32_t>(d.major.value_or(0));
      op.minor = static_cast<uint32_t>(d.minor.value_or(0));
      op.mode = d.fileMode.value_or(0666) & 07777;
      op.uid = d.uid.value_or(0);
      op.gid = d.gid.value_or(0);
      if (ctx.userns) {
        // Not allowed to mknod in a user namespace: bind the host's node.
        op.kind = Op::Kind::bind;
        op.source = d.path;
        op.flags.bind = true;
        op.flags.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
      }
      p.ops.push_back(std::move(op));
    }
    const std::pair<const char*, const char*> links[] = {
        {"/proc/self/fd", "/dev/fd"},     {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        {"/proc/kcore", "/dev/core"},     {"pts/ptmx", "/dev/ptmx"},
    };
    for (auto [src, dst] : links) {
      Op l;
      l.kind = Op::Kind::symlink;
      l.origin = "/dev";
      l.source = src;
      l.target = dst;
      p.ops.push_back(std::move(l));
    }
  }

  if (cfg.linux) {
    for (const auto& m : cfg.linux->maskedPaths) p.masked.push_back(container_path(m));
    for (const auto& r : cfg.linux->readonlyPaths) p.readonly.push_back(container_path(r));
  }
  TRY(p.sysctl, plan_sysctls(cfg, ctx.ns));
  return p;
}

}  // namespace brig::rootfs
