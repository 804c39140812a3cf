#include <catch2/catch.hpp>

#include "namespaces/namespaces.hpp"
#include "rootfs/plan.hpp"
#include "rootfs/sysctl.hpp"

using namespace brig;

namespace {
ns::Plan nsplan(std::vector<spec::Namespace> nss) {
  auto p = ns::plan(nss);
  REQUIRE(p);
  return *p;
}
spec::Config cfg() {
  spec::Config c;
  c.ociVersion = "1.3.0";
  c.root.path = "rootfs";
  c.linux.emplace();
  return c;
}
std::string err(const std::string& key, const ns::Plan& n, const spec::Config& c = cfg()) {
  auto r = rootfs::validate_sysctl(key, n, c);
  return r ? std::string("ok") : r.error().msg;
}
}  // namespace

TEST_CASE("sysctl: keys map to files under /proc/sys, in either notation", "[rootfs][sysctl]") {
  CHECK(*rootfs::sysctl_path("net.ipv4.ip_forward") == "net/ipv4/ip_forward");
  CHECK(*rootfs::sysctl_path("kernel/domainname") == "kernel/domainname");
  // with '/' as the separator a '.' is part of a name (a VLAN interface)
  CHECK(*rootfs::sysctl_path("net/ipv4/conf/eth0.100/rp_filter") == "net/ipv4/conf/eth0.100/rp_filter");
  for (const char* bad : {"", ".", "net..ipv4", "net.ipv4.", "../../etc/passwd", "net/../../etc", "/net/x"}) {
    auto r = rootfs::sysctl_path(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().msg == fmt::format("linux.sysctl: invalid key \"{}\"", bad));
  }
}

TEST_CASE("sysctl: only keys of a namespace the container owns", "[rootfs][sysctl]") {
  auto all = nsplan({{"pid", {}}, {"network", {}}, {"ipc", {}}, {"uts", {}}, {"mount", {}}});
  auto none = nsplan({{"pid", {}}, {"mount", {}}});
  for (const char* k : {"kernel.shmmax", "kernel.shmall", "kernel.shmmni", "kernel.shm_rmid_forced",
                        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                        "fs.mqueue.msg_max", "fs/mqueue/queues_max"}) {
    CHECK(err(k, all) == "ok");
    CHECK(err(k, none) == fmt::format("sysctl \"{}\" is not allowed in the hosts ipc namespace", k));
  }
  for (const char* k : {"net.ipv4.ip_forward", "net/ipv4/conf/eth0.1/rp_filter", "net.core.somaxconn"}) {
    CHECK(err(k, all) == "ok");
    CHECK(err(k, none) == fmt::format("sysctl \"{}\" not allowed in host network namespace", k));
  }
  // a joined namespace is the container's own too
  CHECK(err("net.ipv4.ip_forward", nsplan({{"network", "/proc/1/ns/net"}, {"mount", {}}})) == "ok");
  CHECK(err("kernel.domainname", all) == "ok");
  CHECK(err("kernel.hostname", all) == "ok");
  CHECK(err("kernel.hostname", none) == "sysctl \"kernel.hostname\" is not in a separate kernel namespace");
  for (const char* k : {"kernel.pid_max", "vm.swappiness", "kernel.shmmaxx", "fs.file-max", "kernel.msg",
                        "netfoo.x", "kernel.core_pattern"})
    CHECK(err(k, all) == fmt::format("sysctl \"{}\" is not in a separate kernel namespace", k));
}

TEST_CASE("sysctl: kernel.hostname conflicts with the hostname field", "[rootfs][sysctl]") {
  auto uts = nsplan({{"uts", {}}, {"mount", {}}});
  auto c = cfg();
  c.hostname = "box";
  CHECK(err("kernel.hostname", uts, c) ==
        "sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field");
  CHECK(err("kernel.domainname", uts, c) == "ok");
  c.domainname = "example.org";
  CHECK(err("kernel/domainname", uts, c) ==
        "sysctl \"kernel/domainname\" is not allowed as it conflicts with the OCI \"domainname\" field");
}

TEST_CASE("sysctl: the plan carries validated keys with their paths", "[rootfs][sysctl]") {
  auto c = cfg();
  c.linux->sysctl = {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmax", "4096"}};
  rootfs::Context x;
  x.bundle = "/bundle";
  x.ns = nsplan({{"network", {}}, {"ipc", {}}, {"mount", {}}});
  auto p = rootfs::plan(c, x);
  REQUIRE(p);
  REQUIRE(p->sysctl.size() == 2);
  CHECK(p->sysctl[0].key == "kernel.shmmax");
  CHECK(p->sysctl[0].path == "kernel/shmmax");
  CHECK(p->sysctl[0].value == "4096");
  CHECK(p->sysctl[1].path == "net/ipv4/ip_forward");
  c.linux->sysctl["kernel.pid_max"] = "40000";
  auto q = rootfs::plan(c, x);
  REQUIRE_FALSE(q);
  CHECK(q.error().msg == "sysctl \"kernel.pid_max\" is not in a separate kernel namespace");
}
