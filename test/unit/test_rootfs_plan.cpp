#include <sys/mount.h>

#include <catch2/catch.hpp>

#include "rootfs/plan.hpp"
#include "spec/config.hpp"

using namespace brig;
using rootfs::Op;

namespace {
spec::Config config_with(std::vector<spec::Mount> mounts) {
  spec::Config c;
  c.ociVersion = "1.3.0";
  c.root.path = "rootfs";
  c.mounts = std::move(mounts);
  c.linux.emplace();
  return c;
}
rootfs::Context ctx() {
  rootfs::Context x;
  x.bundle = "/bundle";
  x.cgroup_path = "/brig/c1";
  x.cgroups = {
      {"/sys/fs/cgroup/memory", "/", {"memory"}, false},
      {"/sys/fs/cgroup/cpu,cpuacct", "/", {"cpu", "cpuacct"}, false},
      {"/sys/fs/cgroup/unified", "/", {}, true},
  };
  return x;
}
std::vector<const Op*> mounts_of(const rootfs::Plan& p) {
  std::vector<const Op*> out;
  for (auto& o : p.ops)
    if (o.kind == Op::Kind::bind || o.kind == Op::Kind::fs) out.push_back(&o);
  return out;
}
}  // namespace

TEST_CASE("mount options map to attributes, propagation and data", "[rootfs]") {
  auto f = rootfs::parse_options({"nosuid", "noexec", "nodev", "ro", "mode=755", "size=65536k", "newinstance",
                                  "rshared", "strictatime"});
  REQUIRE(f);
  CHECK(f->attr_set == (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY |
                        MOUNT_ATTR_STRICTATIME));
  CHECK((f->attr_clr & MOUNT_ATTR__ATIME) == MOUNT_ATTR__ATIME);
  CHECK(f->propagation == MS_SHARED);
  CHECK(f->propagation_rec);
  CHECK(f->data == std::vector<std::pair<std::string, std::string>>{
                       {"mode", "755"}, {"size", "65536k"}, {"newinstance", ""}});
}

TEST_CASE("later options win: ro then rw leaves the mount writable", "[rootfs]") {
  auto f = rootfs::parse_options({"ro", "rw", "noexec", "exec"});
  REQUIRE(f);
  CHECK((f->attr_set & MOUNT_ATTR_RDONLY) == 0);
  CHECK((f->attr_clr & MOUNT_ATTR_RDONLY) != 0);
  CHECK((f->attr_set & MOUNT_ATTR_NOEXEC) == 0);
}

TEST_CASE("recursive options go to the recursive attribute set", "[rootfs]") {
  auto f = rootfs::parse_options({"rbind", "rro", "rnosuid", "rnoatime", "rrelatime", "sync"});
  REQUIRE(f);
  CHECK(f->rbind);
  CHECK(f->bind);
  CHECK(f->attr_set == 0);
  CHECK((f->rattr_set & (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID)) == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
  CHECK((f->rattr_set & MOUNT_ATTR__ATIME) == MOUNT_ATTR_RELATIME);  // the last atime option wins
  CHECK(f->sb_flags == std::vector<std::string>{"sync"});
}

TEST_CASE("plan: relative destinations and bind sources, fs mounts in order", "[rootfs]") {
  auto c = config_with({
      {"proc", "proc", "proc", {}, {}, {}},
      {"data", "bind", "host/dir", {"rbind", "ro"}, {}, {}},
      {"/abs/../x", std::nullopt, "/srv", {"bind"}, {}, {}},
  });
  auto p = rootfs::plan(c, ctx());
  REQUIRE(p);
  auto m = mounts_of(*p);
  REQUIRE(m.size() == 3);
  CHECK(m[0]->target == "/proc");
  CHECK(m[0]->kind == Op::Kind::fs);
  CHECK(m[1]->target == "/data");
  CHECK(m[1]->source == "/bundle/host/dir");
  CHECK(m[1]->flags.rbind);
  CHECK(m[2]->target == "/x");
  CHECK(m[2]->source == "/srv");
}

TEST_CASE("plan: errors name the mount", "[rootfs]") {
  auto p = rootfs::plan(config_with({{"/x", "bind", std::nullopt, {"bind"}, {}, {}}}), ctx());
  REQUIRE_FALSE(p);
  CHECK(p.error().msg == "mounts[0].source: a bind mount needs a source");
  auto q = rootfs::plan(config_with({{"/y", std::nullopt, "src", {}, {}, {}}}), ctx());
  REQUIRE_FALSE(q);
  CHECK(q.error().msg == "mounts[0].type: must be set for a non-bind mount");
}

TEST_CASE("plan: cgroup v1 mount is a tmpfs with a bind per hierarchy, then read-only", "[rootfs]") {
  auto p = rootfs::plan(config_with({{"/sys/fs/cgroup", "cgroup", "cgroup", {"ro", "nosuid"}, {}, {}}}), ctx());
  REQUIRE(p);
  std::vector<std::string> seen;
  for (auto& o : p->ops) {
    if (o.target.rfind("/sys/fs/cgroup", 0) != 0) continue;
    seen.push_back(fmt::format("{}:{}", static_cast<int>(o.kind), o.target));
  }
  // fs tmpfs, bind memory, bind cpu,cpuacct, symlinks cpu and cpuacct, setattr ro
  REQUIRE(seen.size() == 6);
  auto& ops = p->ops;
  CHECK(ops[0].kind == Op::Kind::fs);
  CHECK(ops[0].fstype == "tmpfs");
  CHECK((ops[0].flags.attr_set & MOUNT_ATTR_RDONLY) == 0);
  CHECK(ops[1].source == "/sys/fs/cgroup/memory/brig/c1");
  CHECK(ops[1].target == "/sys/fs/cgroup/memory");
  CHECK((ops[1].flags.attr_set & MOUNT_ATTR_RDONLY) != 0);
  CHECK(ops[2].source == "/sys/fs/cgroup/cpu,cpuacct/brig/c1");
  CHECK(ops[3].kind == Op::Kind::symlink);
  CHECK(ops[3].target == "/sys/fs/cgroup/cpu");
  CHECK(ops[3].source == "cpu,cpuacct");
  CHECK(ops[4].target == "/sys/fs/cgroup/cpuacct");
  CHECK(ops[5].kind == Op::Kind::setattr);
}

TEST_CASE("plan: cgroup on a v2 host is cgroup2 with a cgroup namespace, else a bind", "[rootfs]") {
  auto x = ctx();
  x.cgroups = {{"/sys/fs/cgroup", "/", {}, true}};
  x.cgroupns = true;
  auto c = config_with({{"/sys/fs/cgroup", "cgroup", "cgroup", {"ro"}, {}, {}}});
  auto p = rootfs::plan(c, x);
  REQUIRE(p);
  CHECK(p->ops[0].fstype == "cgroup2");
  x.cgroupns = false;
  auto q = rootfs::plan(c, x);
  REQUIRE(q);
  CHECK(q->ops[0].kind == Op::Kind::bind);
  CHECK(q->ops[0].source == "/sys/fs/cgroup/brig/c1");
}

TEST_CASE("plan: a container without a cgroup of its own shows the given directories", "[rootfs]") {
  // rootless, no cgroup made: the caller's own cgroup in each hierarchy
  auto x = ctx();
  x.cgroup_dirs = {"/sys/fs/cgroup/memory/user/1", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified/u"};
  auto c = config_with({{"/sys/fs/cgroup", "cgroup", "cgroup", {}, {}, {}}});
  auto p = rootfs::plan(c, x);
  REQUIRE(p);
  auto ms = mounts_of(*p);
  REQUIRE(ms.size() == 3);  // tmpfs, memory, cpu,cpuacct (the v2 tree is not shown on a hybrid host)
  CHECK(ms[1]->source == "/sys/fs/cgroup/memory/user/1");
  CHECK(ms[2]->source == "/sys/fs/cgroup/cpu,cpuacct");
  x.cgroups = {{"/sys/fs/cgroup", "/", {}, true}};
  x.cgroup_dirs = {"/sys/fs/cgroup/user.slice/u"};
  auto q = rootfs::plan(c, x);
  REQUIRE(q);
  CHECK(q->ops[0].kind == Op::Kind::bind);
  CHECK(q->ops[0].source == "/sys/fs/cgroup/user.slice/u");
}

TEST_CASE("plan: default devices, config devices override, symlinks; none when /dev is bound", "[rootfs]") {
  auto c = config_with({{"/dev", "tmpfs", "tmpfs", {"mode=755"}, {}, {}}});
  spec::Device fuse;
  fuse.type = "c";
  fuse.path = "/dev/fuse";
  fuse.major = 10;
  fuse.minor = 229;
  fuse.fileMode = 0600;
  spec::Device null2;
  null2.type = "c";
  null2.path = "/dev/null";
  null2.major = 1;
  null2.minor = 3;
  null2.fileMode = 0640;
  c.linux->devices = {fuse, null2};
  auto p = rootfs::plan(c, ctx());
  REQUIRE(p);
  std::map<std::string, const Op*> devs;
  std::vector<std::string> links;
  for (auto& o : p->ops) {
    if (o.kind == Op::Kind::device) devs[o.target] = &o;
    if (o.kind == Op::Kind::symlink) links.push_back(o.target);
  }
  CHECK(devs.size() == 7);
  CHECK(devs.at("/dev/fuse")->major == 10);
  CHECK(devs.at("/dev/fuse")->mode == 0600);
  CHECK(devs.at("/dev/null")->mode == 0640);
  CHECK(devs.at("/dev/null")->origin == "linux.devices[1]");
  CHECK(devs.count("/dev/tty"));
  CHECK(std::find(links.begin(), links.end(), "/dev/ptmx") != links.end());
  CHECK(std::find(links.begin(), links.end(), "/dev/fd") != links.end());

  auto bound = config_with({{"/dev", "bind", "/dev", {"rbind"}, {}, {}}});
  auto q = rootfs::plan(bound, ctx());
  REQUIRE(q);
  for (auto& o : q->ops) CHECK(o.kind != Op::Kind::device);
}

TEST_CASE("plan: in a user namespace devices are bind mounts of the host's nodes", "[rootfs]") {
  auto x = ctx();
  x.userns = true;
  auto p = rootfs::plan(config_with({}), x);
  REQUIRE(p);
  for (auto& o : p->ops)
    if (o.target == "/dev/null") {
      CHECK(o.kind == Op::Kind::bind);
      CHECK(o.source == "/dev/null");
    }
}

TEST_CASE("plan: root propagation, readonly root, masked and readonly paths", "[rootfs]") {
  auto c = config_with({});
  c.root.readonly = true;
  c.linux->maskedPaths = {"/proc/kcore", "proc/../proc/keys"};
  c.linux->readonlyPaths = {"/proc/sys"};
  auto p = rootfs::plan(c, ctx());
  REQUIRE(p);
  CHECK(p->root_propagation == 0);  // unset: "/" stays rslave
  CHECK(p->readonly_root);
  CHECK(p->masked == std::vector<std::string>{"/proc/kcore", "/proc/keys"});
  CHECK(p->readonly == std::vector<std::string>{"/proc/sys"});
  c.linux->rootfsPropagation = "shared";
  CHECK(rootfs::plan(c, ctx())->root_propagation == MS_SHARED);
  c.linux->rootfsPropagation = "rslave";
  CHECK(rootfs::plan(c, ctx())->root_propagation == (MS_SLAVE | MS_REC));
  c.linux->rootfsPropagation = "runbindable";
  CHECK(rootfs::plan(c, ctx())->root_propagation == (MS_UNBINDABLE | MS_REC));
  c.linux->rootfsPropagation = "sideways";
  auto bad = rootfs::plan(c, ctx());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg == "linux.rootfsPropagation: unknown propagation \"sideways\"");
}

TEST_CASE("atime options: atime and nostrictatime go back to relatime, last one wins", "[rootfs]") {
  auto f = rootfs::parse_options({"noatime", "atime"});
  REQUIRE(f);
  CHECK((f->attr_set & MOUNT_ATTR__ATIME) == MOUNT_ATTR_RELATIME);
  CHECK((f->attr_clr & MOUNT_ATTR__ATIME) == MOUNT_ATTR__ATIME);
  f = rootfs::parse_options({"strictatime", "nostrictatime", "nodiratime"});
  REQUIRE(f);
  CHECK((f->attr_set & MOUNT_ATTR__ATIME) == MOUNT_ATTR_RELATIME);
  CHECK((f->attr_set & MOUNT_ATTR_NODIRATIME) != 0);
  f = rootfs::parse_options({"noatime", "norelatime"});
  REQUIRE(f);
  CHECK((f->attr_set & MOUNT_ATTR__ATIME) == MOUNT_ATTR_NOATIME);
  f = rootfs::parse_options({"rnostrictatime", "rnosymfollow", "ratime"});
  REQUIRE(f);
  CHECK((f->rattr_set & MOUNT_ATTR_NOSYMFOLLOW) != 0);
  CHECK(f->attr_set == 0);
}

TEST_CASE("plan: remount changes the mount already at the destination", "[rootfs]") {
  auto p = rootfs::plan(config_with({{"/data", std::nullopt, std::nullopt, {"remount", "ro", "size=3m"}, {}, {}}}),
                        ctx());
  REQUIRE(p);
  REQUIRE(p->ops[0].kind == Op::Kind::setattr);
  CHECK(p->ops[0].target == "/data");
  CHECK((p->ops[0].flags.attr_set & MOUNT_ATTR_RDONLY) != 0);
  CHECK(p->ops[0].flags.data == std::vector<std::pair<std::string, std::string>>{{"size", "3m"}});
}

TEST_CASE("plan: tmpcopyup only on tmpfs", "[rootfs]") {
  auto p = rootfs::plan(config_with({{"/etc", "tmpfs", "tmpfs", {"tmpcopyup"}, {}, {}}}), ctx());
  REQUIRE(p);
  CHECK(p->ops[0].flags.tmpcopyup);
  auto q = rootfs::plan(config_with({{"/x", "proc", "proc", {"tmpcopyup"}, {}, {}}}), ctx());
  REQUIRE_FALSE(q);
  CHECK(q.error().msg == "mounts[0].options: tmpcopyup is only for tmpfs mounts");
}

TEST_CASE("plan: idmapped binds carry their mappings", "[rootfs]") {
  std::vector<spec::IdMapping> m = {{0, 1000, 10}};
  auto p = rootfs::plan(config_with({{"/a", "bind", "/src", {"rbind", "ridmap"}, m, m},
                                     {"/b", "bind", "/src", {"bind"}, m, m}}),
                        ctx());
  REQUIRE(p);
  CHECK(p->ops[0].flags.idmap);
  CHECK(p->ops[0].flags.ridmap);
  CHECK(p->ops[0].uidMappings.size() == 1);
  CHECK(p->ops[0].uidMappings[0].hostID == 1000);
  CHECK(p->ops[1].flags.idmap);  // implied by the mappings
  CHECK_FALSE(p->ops[1].flags.ridmap);

  // no mappings of its own: the container's, with a user namespace; else an error
  auto c = config_with({{"/a", "bind", "/src", {"bind", "idmap"}, {}, {}}});
  c.linux->uidMappings = {{0, 100000, 65536}};
  c.linux->gidMappings = {{0, 100000, 65536}};
  auto x = ctx();
  x.userns = true;
  auto q = rootfs::plan(c, x);
  REQUIRE(q);
  for (auto& o : q->ops)
    if (o.target == "/a") CHECK(o.uidMappings[0].hostID == 100000);
  auto r = rootfs::plan(c, ctx());
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "mounts[0].options: idmap needs uidMappings and gidMappings, or a user namespace");
  auto half = rootfs::plan(config_with({{"/a", "bind", "/src", {"bind", "idmap"}, m, {}}}), ctx());
  REQUIRE_FALSE(half);
  CHECK(half.error().msg == "mounts[0]: uidMappings and gidMappings must be given together");
  auto fs = rootfs::plan(config_with({{"/t", "tmpfs", "tmpfs", {"idmap"}, m, m}}), ctx());
  REQUIRE_FALSE(fs);
  CHECK(fs.error().msg == "mounts[0].options: idmap is only for bind mounts");
}

TEST_CASE("plan: mountLabel goes to the filesystems runc labels", "[rootfs]") {
  auto c = config_with({{"/proc", "proc", "proc", {}, {}, {}},
                        {"/t", "tmpfs", "tmpfs", {}, {}, {}},
                        {"/dev/mqueue", "mqueue", "mqueue", {}, {}, {}},
                        {"/b", "bind", "/src", {"bind"}, {}, {}}});
  c.linux->mountLabel = "system_u:object_r:container_file_t:s0";
  auto p = rootfs::plan(c, ctx());
  REQUIRE(p);
  std::map<std::string, std::string> label;
  for (auto& o : p->ops) label[o.target] = o.label;
  CHECK(label["/proc"].empty());
  CHECK(label["/t"] == "system_u:object_r:container_file_t:s0");
  CHECK(label["/dev/mqueue"].empty());
  CHECK(label["/b"].empty());
}
