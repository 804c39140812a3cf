// Intel RDT plan (cgroup/resctrl): groups, schemata order, the comparison
// with an existing group's schemata, and finding the resctrl mount.
#include <catch2/catch.hpp>

#include "cgroup/resctrl.hpp"

using namespace brig;
namespace rc = cgroup::resctrl;

TEST_CASE("resctrl plan: no closID makes the container's own group", "[resctrl]") {
  spec::IntelRdt r;
  r.schemata = std::vector<std::string>{"L2:0=f"};
  r.memBwSchema = "MB:0=70";
  r.l3CacheSchema = "L3:0=ff;1=f0";
  auto p = rc::plan(r, "c1");
  REQUIRE(p);
  CHECK(p->group == "c1");
  CHECK(p->own_group);
  // l3CacheSchema first, memBwSchema next, schemata last (config-linux.md)
  CHECK(p->schemata == std::vector<std::string>{"L3:0=ff;1=f0", "MB:0=70", "L2:0=f"});
  CHECK(p->mon_group.empty());
}

TEST_CASE("resctrl plan: closID names a shared group; / is the root", "[resctrl]") {
  spec::IntelRdt r;
  r.closID = "gold";
  r.enableMonitoring = true;
  auto p = rc::plan(r, "c1");
  REQUIRE(p);
  CHECK(p->group == "gold");
  CHECK_FALSE(p->own_group);
  CHECK(p->schemata.empty());
  CHECK(p->mon_group == "mon_groups/c1");

  r.closID = "/";
  auto root = rc::plan(r, "c1");
  REQUIRE(root);
  CHECK(root->group.empty());
  CHECK_FALSE(root->own_group);

  for (const char* bad : {"", ".", "..", "a/b", "../x"}) {
    r.closID = bad;
    auto e = rc::plan(r, "c1");
    REQUIRE_FALSE(e);
    CHECK(e.error().msg.find("closID") != std::string::npos);
  }
  // names the kernel keeps at the resctrl root
  r.closID = "mon_groups";
  REQUIRE_FALSE(rc::plan(r, "c1"));
  r.closID.reset();
  auto own = rc::plan(r, "info");
  REQUIRE_FALSE(own);
  CHECK(own.error().msg.find("set closID") != std::string::npos);
  r.schemata = std::vector<std::string>{"no colon here"};
  auto e = rc::plan(r, "c1");
  REQUIRE_FALSE(e);
  CHECK(e.error().msg.find("no colon here") != std::string::npos);
}

TEST_CASE("resctrl schemata: the kernel's form of the same masks matches", "[resctrl]") {
  // What the kernel prints: padded names, every domain, masks without leading zeros.
  std::string have = "    L3:0=00ff;1=fffff\n    MB:0=100;1= 70\n";
  CHECK(rc::schemata_hold(have, {"L3:0=ff"}));
  CHECK(rc::schemata_hold(have, {"L3:0=FF;1=fffff", "MB:1=70"}));
  CHECK_FALSE(rc::schemata_hold(have, {"L3:0=7f"}));
  CHECK_FALSE(rc::schemata_hold(have, {"MB:0=10"}));   // decimal: 100 is not 10
  CHECK_FALSE(rc::schemata_hold(have, {"L3:2=ff"}));   // no such domain
  CHECK_FALSE(rc::schemata_hold(have, {"L2:0=f"}));    // no such resource
}

TEST_CASE("resctrl mount point from mountinfo", "[resctrl]") {
  std::string mi =
      "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
      "40 22 0:36 / /sys/fs/res\\040ctrl rw,relatime shared:20 - resctrl resctrl rw\n";
  CHECK(rc::mount_point_in(mi) == "/sys/fs/res ctrl");
  CHECK(rc::mount_point_in("22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n").empty());
}
