// The microVM backend's pure half: control-channel frames and the plan that
// turns a spec into QEMU's arguments and the guest's command line.
#include <catch2/catch.hpp>

#include <algorithm>

#include "netns/attach.hpp"
#include "runtime/vm/vm.hpp"
#include "spec/config.hpp"
#include "test_spec_util.hpp"

using namespace brig::runtime::vm;
using nlohmann::json;

namespace {

brig::spec::Config config_with(const char* patch) {
  json doc = brig::spec::test::base_config();
  doc["process"]["terminal"] = false;
  doc.merge_patch(json::parse(patch));
  auto c = brig::spec::parse_config(doc);
  REQUIRE(c);
  return *c;
}

Plan defaults() {
  Plan p;
  p.qemu = "/usr/bin/qemu-system-x86_64";
  p.kernel = "/k/vmlinuz";
  p.initrd = "/k/initrd.img";
  return p;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("vm frames round-trip, split anywhere") {
  std::string wire = encode(Frame::out, "hello") + encode(Frame::in, "") + encode(Frame::exit, "1792");
  for (size_t cut = 0; cut <= wire.size(); cut++) {
    Decoder d;
    d.feed(wire.data(), cut);
    std::vector<Msg> got;
    auto pop = [&] {
      for (;;) {
        auto m = d.next();
        REQUIRE(m);
        if (!*m) break;
        got.push_back(**m);
      }
    };
    pop();
    d.feed(wire.data() + cut, wire.size() - cut);
    pop();
    REQUIRE(got.size() == 3);
    CHECK(got[0].type == Frame::out);
    CHECK(got[0].data == "hello");
    CHECK(got[1].type == Frame::in);
    CHECK(got[1].data.empty());
    CHECK(got[2].data == "1792");
  }
}

TEST_CASE("vm frames: unknown types and oversized lengths are errors") {
  Decoder d;
  d.feed("\x63\0\0\0\0", 5);
  CHECK_FALSE(d.next());
  Decoder big;
  big.feed("\x07\x7f\0\0\0", 5);
  CHECK_FALSE(big.next());
}

TEST_CASE("vm backend: asked for by the vm section or the annotation") {
  CHECK_FALSE(wanted(config_with("{}")));
  CHECK(wanted(config_with(R"({"annotations": {"io.brig.runtime": "vm"}})")));
  CHECK_FALSE(wanted(config_with(R"({"annotations": {"io.brig.runtime": "runc"}})")));
  CHECK(wanted(config_with(R"({"vm": {"kernel": {"path": "/vmlinuz"}}})")));
}

TEST_CASE("vm plan: TCG gets tsc_early_khz, KVM the host CPU; agent is PID 1") {
  auto cfg = config_with(R"({"annotations": {"io.brig.runtime": "vm"}})");
  auto tcg = plan(cfg, Host{false, 2500000, 4}, defaults());
  REQUIRE(tcg);
  CHECK_FALSE(tcg->kvm);
  CHECK(has(tcg->kernel_args, "tsc_early_khz=2500000"));
  CHECK(has(tcg->kernel_args, "rdinit=/bin/brig"));
  REQUIRE(tcg->kernel_args.size() >= 2);
  CHECK(tcg->kernel_args.back() == "vm-agent");
  CHECK(tcg->kernel_args[tcg->kernel_args.size() - 2] == "--");
  auto args = qemu_args(*tcg, "/run/brig/x");
  CHECK(has(args, "tcg"));
  CHECK(has(args, "socket,id=ctl,path=/run/brig/x/ctl.sock,server=on,wait=off"));
  CHECK(has(args, "virtserialport,chardev=ctl,name=brig.ctl"));
  CHECK(has(args, "-sandbox"));
  CHECK(has(args, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
  CHECK_FALSE(has(args, "-runas"));
  tcg->run_as = kQemuIdBase + 42;
  auto dropped = qemu_args(*tcg, "/run/brig/x");
  CHECK(has(dropped, "on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny"));
  CHECK(has(dropped, "2130706474:2130706474"));
  auto kvm = plan(cfg, Host{true, 2500000, 4}, defaults());
  REQUIRE(kvm);
  CHECK(kvm->kvm);
  CHECK_FALSE(has(kvm->kernel_args, "tsc_early_khz=2500000"));
  CHECK(has(qemu_args(*kvm, "/d"), "host"));
}

TEST_CASE("vm plan: the vm section's paths, parameters and hwConfig") {
  auto cfg = config_with(R"({"vm": {
    "hypervisor": {"path": "/opt/qemu", "parameters": ["-s"]},
    "kernel": {"path": "/opt/vmlinuz", "parameters": ["debug"], "initrd": "/opt/initrd"},
    "hwConfig": {"vcpus": 8, "memory": 536870912}}})");
  auto p = plan(cfg, Host{false, 0, 2}, defaults());
  REQUIRE(p);
  CHECK(p->qemu == "/opt/qemu");
  CHECK(p->kernel == "/opt/vmlinuz");
  CHECK(p->initrd == "/opt/initrd");
  CHECK(p->vcpus == 2);  // at most the host's
  CHECK(p->mem_mib == 512);
  CHECK(has(p->kernel_args, "debug"));
  CHECK(has(p->kernel_args, "tsc_early_khz=2000000"));
  CHECK(qemu_args(*p, "/d").back() == "-s");
}

TEST_CASE("vm plan: linux.resources size the guest unless hwConfig does") {
  auto cfg = config_with(R"({"annotations": {"io.brig.runtime": "vm"},
    "linux": {"resources": {"memory": {"limit": 268435456}, "cpu": {"quota": 150000, "period": 100000}}}})");
  auto p = plan(cfg, Host{false, 0, 4}, defaults());
  REQUIRE(p);
  CHECK(p->mem_mib == 256 + 96);
  CHECK(p->vcpus == 2);
  auto hw = config_with(R"({"vm": {"kernel": {"path": "/k"}, "hwConfig": {"memory": 1073741824, "vcpus": 1}},
    "linux": {"resources": {"memory": {"limit": 268435456}, "cpu": {"quota": 150000}}}})");
  auto q = plan(hw, Host{false, 0, 4}, defaults());
  REQUIRE(q);
  CHECK(q->mem_mib == 1024);
  CHECK(q->vcpus == 1);
}

TEST_CASE("vm plan: what the backend cannot do yet is refused, not skipped") {
  CHECK(plan(config_with(R"({"process": {"terminal": true}, "vm": {"kernel": {"path": "/k"}}})"), Host{}, defaults()));
  CHECK_FALSE(plan(config_with(R"({"vm": {"kernel": {"path": "/k"}, "hwConfig": {"dtdevs": ["/a"]}}})"), Host{},
                   defaults()));
  CHECK_FALSE(plan(config_with(R"({"vm": {"kernel": {"path": "/k"}, "hwConfig": {"irqs": [11]}}})"), Host{},
                   defaults()));
  CHECK_FALSE(plan(config_with(R"({"vm": {"kernel": {"path": "/k"}, "hwConfig": {"deviceTree": "/d.dtb"}}})"),
                   Host{}, defaults()));
  Plan no_initrd = defaults();
  no_initrd.initrd.clear();
  CHECK_FALSE(plan(config_with(R"({"annotations": {"io.brig.runtime": "vm"}})"), Host{}, no_initrd));
}

TEST_CASE("vm guest config: no vm section, rootfs at the virtiofs mount") {
  json raw = {{"root", {{"path", "rootfs"}}}, {"vm", {{"kernel", {{"path", "/k"}}}}},
              {"hooks", json::object()}, {"annotations", {{"io.brig.runtime", "vm"}, {"a", "b"}}}};
  json g = guest_config(raw);
  CHECK_FALSE(g.contains("vm"));
  CHECK_FALSE(g.contains("hooks"));
  CHECK(g["root"]["path"] == "/rootfs");
  CHECK(g["annotations"] == json{{"a", "b"}});
}

TEST_CASE("vm exec frames carry their exec number") {
  std::string t = tag(0x01020304, "data");
  CHECK(t.size() == 8);
  auto [n, rest] = untag(t);
  CHECK(n == 0x01020304);
  CHECK(rest == "data");
  CHECK(untag("ab").first == 0);
  CHECK(untag("ab").second.empty());
  Decoder d;
  std::string w = encode(Frame::exec_signal, tag(7, "15"));
  d.feed(w.data(), w.size());
  auto m = d.next();
  REQUIRE(m);
  REQUIRE(*m);
  CHECK((*m)->type == Frame::exec_signal);
  CHECK(untag((*m)->data).first == 7);
}

TEST_CASE("vm backend: asked for in a saved config") {
  auto saved = [](const json& j) {
    auto d = brig::spec::jdoc::parse(j.dump());
    REQUIRE(d);
    return wanted(d->root());
  };
  CHECK(saved(json{{"vm", {{"kernel", {{"path", "/k"}}}}}}));
  CHECK(saved(json{{"annotations", {{"io.brig.runtime", "vm"}}}}));
  CHECK_FALSE(saved(json{{"annotations", {{"io.brig.runtime", 3}}}}));
  CHECK_FALSE(saved(json{{"annotations", {{"io.brig.runtime", "vmm"}}}}));
  CHECK_FALSE(saved(json{{"annotations", {"vm"}}}));
  CHECK_FALSE(saved(json{{"vm", nullptr}}));
  CHECK_FALSE(saved(json::array()));
}

TEST_CASE("vm: commas in paths never start a new QEMU or virtiofsd option") {
  CHECK(qemu_escape("/run/a,b,,c") == "/run/a,,b,,,,c");
  CHECK(fuse_escape("/srv/a,b\\c") == "/srv/a\\,b\\\\c");
  auto p = plan(config_with(R"({"annotations": {"io.brig.runtime": "vm"}})"), Host{false, 0, 1}, defaults());
  REQUIRE(p);
  auto args = qemu_args(*p, "/run/st,ate=x");
  CHECK(has(args, "socket,id=ctl,path=/run/st,,ate=x/ctl.sock,server=on,wait=off"));
  CHECK(has(args, "socket,id=vfs,path=/run/st,,ate=x/vfs.sock"));
  CHECK(has(args, "file,id=con,path=/run/st,,ate=x/console.log"));
}

TEST_CASE("vm networking: a virtio-net NIC on the tap; the guest's netns is the container's") {
  auto p = plan(config_with(R"({"annotations": {"io.brig.runtime": "vm"}})"), Host{false, 0, 1}, defaults());
  REQUIRE(p);
  CHECK_FALSE(has(qemu_args(*p, "/d"), "-netdev"));  // no network unless asked
  p->tap = "tb0123abcd";
  p->mac = mac_for("/run/brig/x");
  auto args = qemu_args(*p, "/d");
  CHECK(has(args, "tap,id=net0,ifname=tb0123abcd,script=no,downscript=no"));
  CHECK(has(args, "virtio-net-device,netdev=net0,mac=" + p->mac));
  CHECK(p->mac.size() == 17);
  CHECK(p->mac == brig::netns::mac_for("/run/brig/x"));  // the one its veth would get
  CHECK(mac_for("/run/brig/y") != p->mac);
  // a namespace passed through: the tap's fd, QEMU's at the same number
  Plan q = *p;
  q.tap.clear();
  q.tap_fd = 7;
  CHECK(has(qemu_args(q, "/d"), "tap,id=net0,fd=7"));

  json raw = {{"root", {{"path", "rootfs"}}},
              {"linux", {{"namespaces", json::array({{{"type", "pid"}}, {{"type", "network"}}, {{"type", "mount"}}})}}},
              {"annotations", {{"io.brig.network", "brig"}, {"io.brig.network.ports", "80:80"}, {"a", "b"}}}};
  json plain = guest_config(raw);
  CHECK(plain["linux"]["namespaces"].size() == 3);
  json g = guest_config(raw, true);
  CHECK(g["linux"]["namespaces"] == json::array({{{"type", "pid"}}, {{"type", "mount"}}}));
  CHECK(g["annotations"] == json{{"a", "b"}});
}

TEST_CASE("vm: QEMU's own uid only where the user namespace maps it") {
  using brig::runtime::vm::id_mapped;
  const uint32_t id = brig::runtime::vm::kQemuIdBase + 4242;
  CHECK(id_mapped("         0          0 4294967295\n", id));  // the initial namespace
  CHECK_FALSE(id_mapped("         0     100000      65536\n", id));  // a rootless container
  CHECK(id_mapped("0 100000 65536\n2130706432 200000 100000\n", id));
  CHECK_FALSE(id_mapped("0 100000 65536\n2130706432 200000 4242\n", id));  // just past the range
  CHECK_FALSE(id_mapped("", id));
  CHECK_FALSE(id_mapped("garbage\n", id));
}

TEST_CASE("vm: bind mounts name host paths, shared with the guest under their index") {
  auto c = config_with(R"({"mounts": [
      {"destination": "/proc", "type": "proc", "source": "proc"},
      {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rw"]},
      {"destination": "/etc/hosts", "source": "hosts", "options": ["bind", "ro"]},
      {"destination": "/data", "options": ["remount", "bind", "ro"]},
      {"destination": "/lib", "type": "none", "source": "/usr/.//lib", "options": ["rbind", "rro"]}]})");
  auto v = volumes(c, "/b/bundle");
  REQUIRE(v);
  REQUIRE(v->size() == 3);  // not /proc, not the remount
  CHECK((*v)[0].index == 1);
  CHECK((*v)[0].source == "/srv/data");
  CHECK((*v)[0].recursive);
  CHECK_FALSE((*v)[0].readonly);
  CHECK((*v)[1].index == 2);
  CHECK((*v)[1].source == "/b/bundle/hosts");  // relative: the bundle's
  CHECK((*v)[1].readonly);
  CHECK_FALSE((*v)[1].recursive);
  CHECK((*v)[2].source == "/usr/lib");
  CHECK((*v)[2].rreadonly);
  CHECK_FALSE((*v)[2].readonly);

  json g = guest_config(json::parse(c.raw), false, *v);
  CHECK(g["mounts"][0]["source"] == "proc");
  CHECK(g["mounts"][1]["source"] == "/volumes/1");
  CHECK(g["mounts"][2]["source"] == "/volumes/2");
  CHECK(g["mounts"][2]["options"] == json::array({"bind", "ro"}));  // the guest's brig applies them
  CHECK_FALSE(g["mounts"][3].contains("source"));
  CHECK(g["mounts"][4]["source"] == "/volumes/4");

  auto p = plan(c, Host{false, 0, 1}, defaults());
  REQUIRE(p);
  CHECK_FALSE(has(qemu_args(*p, "/d"), "vhost-user-fs-device,chardev=vols,tag=volumes"));
  p->volumes = true;
  auto args = qemu_args(*p, "/d,x");
  CHECK(has(args, "socket,id=vols,path=/d,,x/vols.sock"));
  CHECK(has(args, "vhost-user-fs-device,chardev=vols,tag=volumes"));

  CHECK_FALSE(volumes(config_with(R"({"mounts": [{"destination": "/x", "type": "bind"}]})"), "/b"));
}

TEST_CASE("vm plan: vm.image is the guest's read-only root disk") {
  auto p = plan(config_with(R"({"vm": {"kernel": {"path": "/k"}, "image": {"path": "/i,mg", "format": "qcow2"}}})"),
                Host{false, 0, 1}, defaults());
  REQUIRE(p);
  CHECK(p->image == "/i,mg");
  auto args = qemu_args(*p, "/d");
  auto node = std::find(args.begin(), args.end(), "-blockdev");
  REQUIRE(node + 1 < args.end());
  auto j = json::parse(*(node + 1));
  CHECK(j["driver"] == "qcow2");
  CHECK(j["file"]["filename"] == "/i,mg");  // JSON: no comma escaping needed
  CHECK(j["read-only"] == true);
  CHECK(j["file"]["read-only"] == true);
  CHECK(j.contains("backing"));
  CHECK(j["backing"].is_null());  // never a backing file
  CHECK(has(args, "virtio-blk-device,drive=image"));
  // the agent's word, before init's own arguments
  auto root = std::find(p->kernel_args.begin(), p->kernel_args.end(), "brig.root=/dev/vda");
  auto dashes = std::find(p->kernel_args.begin(), p->kernel_args.end(), "--");
  CHECK(root < dashes);
  CHECK(dashes != p->kernel_args.end());

  auto vhd = plan(config_with(R"({"vm": {"kernel": {"path": "/k"}, "image": {"path": "/i", "format": "vhd"}}})"),
                  Host{}, defaults());
  REQUIRE(vhd);
  CHECK(vhd->image_format == "vpc");  // QEMU's name for it
  auto none = plan(config_with(R"({"vm": {"kernel": {"path": "/k"}}})"), Host{}, defaults());
  REQUIRE(none);
  CHECK_FALSE(has(qemu_args(*none, "/d"), "virtio-blk-device,drive=image"));
  CHECK_FALSE(has(none->kernel_args, "brig.root=/dev/vda"));

  // (a format outside the spec's list, or a relative path, never parses: spec/config.cpp)
}

TEST_CASE("vm: a guest brig's failure is its error line, or its exit code when it wrote none") {
  CHECK(guest_failure("time=\"x\" level=error msg=\"bad value\"\n", 1) == "bad value");
  CHECK(guest_failure("", 137) == "brig exited with 137 and no message");
  CHECK(guest_failure("\n", 2) == "brig exited with 2 and no message");
}

TEST_CASE("vm.image: what QEMU would follow out of the image is refused") {
  std::string q(512, '\0');
  q.replace(0, 4, std::string("QFI\xfb", 4));
  q[7] = 3;  // version 3
  CHECK(check_image("/i", "qcow2", q));
  q[79] = 4;  // incompatible feature: external data file
  auto r = check_image("/i", "qcow2", q);
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "vm.image: /i keeps its data in an external file: not opened for the guest");
  CHECK_FALSE(check_image("/i", "qcow2", std::string(512, 'x')));
  CHECK(check_image("/i", "vmdk", "KDMV" + std::string(508, '\0')));
  CHECK_FALSE(check_image("/i", "vmdk", "# Disk DescriptorFile\nRW 8 FLAT \"/etc/shadow\" 0\n"));
  CHECK(check_image("/i", "raw", ""));
}
