// default_config (`brig spec`), process.json, state.json and features.json.
#include <catch2/catch.hpp>

#include "spec/config.hpp"
#include "spec/features.hpp"
#include "spec/state.hpp"
#include "test_spec_util.hpp"

using namespace brig::spec;
using nlohmann::json;

TEST_CASE("default_config: runc spec", "[spec][defaults]") {
  json d = default_config(false);
  auto r = parse_config(d);
  INFO((r ? "" : r.error().msg));
  REQUIRE(r);
  CHECK(r->ociVersion == "1.3.0");
  CHECK(r->root.path == "rootfs");
  CHECK(r->root.readonly);
  CHECK(*r->hostname == "brig");
  const Process& p = *r->process;
  CHECK(p.terminal);
  CHECK(p.args == std::vector<std::string>{"sh"});
  CHECK(p.cwd == "/");
  CHECK(p.env == std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                          "TERM=xterm"});
  CHECK(p.noNewPrivileges);
  const std::vector<std::string> caps{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  CHECK(*p.capabilities->bounding == caps);
  CHECK(*p.capabilities->effective == caps);
  CHECK(*p.capabilities->permitted == caps);
  CHECK(*p.capabilities->ambient == caps);
  CHECK_FALSE(p.capabilities->inheritable);
  REQUIRE(p.rlimits.size() == 1);
  CHECK(p.rlimits[0].type == "RLIMIT_NOFILE");
  CHECK(p.rlimits[0].soft == 1024);
  CHECK(p.rlimits[0].hard == 1024);
  std::vector<std::string> dests;
  for (const auto& m : r->mounts) dests.push_back(m.destination);
  CHECK(dests == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                          "/sys/fs/cgroup"});
  CHECK(r->mounts[2].options.back() == "gid=5");
  CHECK(*r->mounts[5].type == "sysfs");
  const Linux& l = *r->linux;
  std::vector<std::string> ns;
  for (const auto& n : l.namespaces) ns.push_back(n.type);
  CHECK(ns == std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"});
  CHECK(l.uidMappings.empty());
  REQUIRE(l.resources);
  REQUIRE(l.resources->devices.size() == 1);
  CHECK_FALSE(l.resources->devices[0].allow);
  CHECK(*l.resources->devices[0].access == "rwm");
  CHECK(l.maskedPaths.size() == 10);
  CHECK(l.maskedPaths.front() == "/proc/acpi");
  CHECK(l.maskedPaths.back() == "/proc/scsi");
  CHECK(l.readonlyPaths == std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                    "/proc/sysrq-trigger"});
  // round trip through the model
  CHECK(to_json(*r) == d);
}

TEST_CASE("default_config: key order is runc's", "[spec][defaults]") {
  auto o = default_config_ordered(false);
  std::vector<std::string> keys;
  for (auto it = o.begin(); it != o.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"ociVersion", "process", "root", "hostname", "mounts", "linux"});
  std::string s = o.dump();
  CHECK(s.find(R"("rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}])") != std::string::npos);
  CHECK(s.find(R"("linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"namespaces")") !=
        std::string::npos);
  CHECK(s.find(R"({"destination":"/proc","type":"proc","source":"proc"})") != std::string::npos);
}

TEST_CASE("default_config: runc spec --rootless", "[spec][defaults]") {
  json d = default_config(true, 1000, 1001);
  auto r = parse_config(d);
  INFO((r ? "" : r.error().msg));
  REQUIRE(r);
  const Linux& l = *r->linux;
  std::vector<std::string> ns;
  for (const auto& n : l.namespaces) ns.push_back(n.type);
  CHECK(ns == std::vector<std::string>{"pid", "ipc", "uts", "mount", "user"});
  REQUIRE(l.uidMappings.size() == 1);
  CHECK(l.uidMappings[0].containerID == 0);
  CHECK(l.uidMappings[0].hostID == 1000);
  CHECK(l.uidMappings[0].size == 1);
  CHECK(l.gidMappings[0].hostID == 1001);
  CHECK_FALSE(l.resources);
  CHECK(r->mounts[2].options.back() == "mode=0620");
  CHECK(*r->mounts[5].type == "none");
  CHECK(*r->mounts[5].source == "/sys");
  CHECK(r->mounts[5].options.front() == "rbind");
  CHECK(r->process->terminal);
  auto o = default_config_ordered(true);
  std::vector<std::string> lkeys;
  for (auto it = o["linux"].begin(); it != o["linux"].end(); ++it) lkeys.push_back(it.key());
  CHECK(lkeys == std::vector<std::string>{"uidMappings", "gidMappings", "namespaces", "maskedPaths", "readonlyPaths"});
}

TEST_CASE("parse_process: exec --process", "[spec][process]") {
  auto r = parse_process(std::string_view(R"({"args": ["ls", "-l"], "cwd": "/tmp", "env": ["A=1"],
                                               "user": {"uid": 5}, "terminal": true, "extra": 1})"));
  REQUIRE(r);
  CHECK(r->args == std::vector<std::string>{"ls", "-l"});
  CHECK(r->cwd == "/tmp");
  CHECK(r->user.uid == 5);
  CHECK(r->terminal);
  CHECK_FALSE(r->noNewPrivileges);

  auto msg = [](const char* text) {
    auto p = parse_process(std::string_view(text));
    return p ? std::string() : p.error().msg;
  };
  CHECK(msg(R"({"args": [], "cwd": "/"})") == "process.args: must have at least one entry");
  CHECK(msg(R"({"cwd": "/"})") == "process.args: must have at least one entry");
  CHECK(msg(R"({"args": ["sh"]})") == "process.cwd: must be set");
  CHECK(msg(R"({"args": ["sh"], "cwd": "relative"})") == "process.cwd: must be an absolute path");
  CHECK(msg(R"({"args": ["sh"], "cwd": "/", "user": {"gid": "root"}})") ==
        "process.user.gid: must be an unsigned 32-bit integer");
  CHECK(msg(R"({"args": ["sh"], "cwd": "/", "capabilities": {"ambient": ["NET_ADMIN"]}})") ==
        "process.capabilities.ambient[0]: \"NET_ADMIN\" is not a capability name (CAP_[A-Z_]+)");
  CHECK(msg(R"(["sh"])") == "process: must be an object");
  CHECK_THAT(msg(R"({"args": ["sh"],)"), Catch::StartsWith("invalid JSON: "));
  // a json document is accepted too, and to_json(Process) round-trips
  auto j = parse_process(json::parse(R"({"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]})"));
  REQUIRE(j);
  auto back = parse_process(to_json(*j));
  REQUIRE(back);
  CHECK(back->rlimits.at(0).type == "RLIMIT_CORE");
}

TEST_CASE("state: runc's format", "[spec][state]") {
  State s;
  s.ociVersion = "1.0.2-dev";
  s.id = "t2";
  s.pid = 2976;
  s.status = "created";
  s.bundle = "/tmp/rb";
  s.rootfs = "/tmp/rb/rootfs";
  s.created = "2026-11-21T21:48:09.657933138Z";
  CHECK(state_json_pretty(s) ==
        "{\n"
        "  \"ociVersion\": \"1.0.2-dev\",\n"
        "  \"id\": \"t2\",\n"
        "  \"pid\": 2976,\n"
        "  \"status\": \"created\",\n"
        "  \"bundle\": \"/tmp/rb\",\n"
        "  \"rootfs\": \"/tmp/rb/rootfs\",\n"
        "  \"created\": \"2026-11-21T21:48:09.657933138Z\",\n"
        "  \"owner\": \"\"\n"
        "}");
  s.annotations = {{"a", "b<&>"}};
  s.owner = "root";
  CHECK(state_json_compact(s) ==
        R"({"ociVersion":"1.0.2-dev","id":"t2","pid":2976,"status":"created","bundle":"/tmp/rb",)"
        R"("rootfs":"/tmp/rb/rootfs","created":"2026-11-21T21:48:09.657933138Z",)"
        R"("annotations":{"a":"b\u003c\u0026\u003e"},"owner":"root"})");
  CHECK_THAT(state_json_pretty(s), Catch::Contains("  \"annotations\": {\n    \"a\": \"b\\u003c\\u0026\\u003e\"\n  },\n"
                                                   "  \"owner\": \"root\"\n}"));
  // parse back
  auto r = parse_state(std::string_view(state_json_pretty(s)));
  REQUIRE(r);
  CHECK(r->annotations.at("a") == "b<&>");
  CHECK(r->owner == "root");
  CHECK(r->pid == 2976);
  CHECK(r->created == s.created);
  CHECK(state_json_pretty(*r) == state_json_pretty(s));
}

TEST_CASE("state: validation", "[spec][state]") {
  auto msg = [](const char* text) {
    auto p = parse_state(std::string_view(text));
    return p ? std::string() : p.error().msg;
  };
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"stopped","bundle":"/b"})").empty());
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"paused","bundle":"/b","pid":1})").empty());
  CHECK(msg(R"({"ociVersion":"1.0.0","status":"running","bundle":"/b"})") == "id: must be set");
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"running"})") == "bundle: must be set");
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"gone","bundle":"/b"})") ==
        "status: \"gone\" is not one of: creating, created, running, stopped, paused");
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"running","bundle":"/b","pid":-1})") ==
        "pid: must not be negative");
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"running","bundle":"/b","pid":"1"})") ==
        "pid: must be a 32-bit integer");
  CHECK(msg(R"({"ociVersion":"1.0.0","id":"x","status":"running","bundle":"/b","annotations":{"k":1}})") ==
        "annotations.k: must be a string");
}

TEST_CASE("go_json_dump escapes like Go", "[spec][state]") {
  nlohmann::ordered_json j = {{"s", "a\u2028b<c>"}};
  CHECK(go_json_dump(j) == R"({"s":"a\u2028b\u003cc\u003e"})");
  nlohmann::ordered_json bad = {{"s", std::string("x\xff")}};
  CHECK(go_json_dump(bad) == "{\"s\":\"x\xef\xbf\xbd\"}");
}

TEST_CASE("features: brig_features", "[spec][features]") {
  auto j = brig_features();
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"});
  CHECK(j["ociVersionMax"] == "1.3.0");
  CHECK(j["hooks"].size() == 6);
  CHECK(j["linux"]["namespaces"].size() == 8);
  CHECK(j["linux"]["cgroup"]["v2"] == true);
  CHECK(j["linux"]["mountExtensions"]["idmap"]["enabled"] == true);
  CHECK(j["linux"]["seccomp"]["actions"].size() == 9);
  auto opts = j["mountOptions"].get<std::vector<std::string>>();
  CHECK(std::is_sorted(opts.begin(), opts.end()));
  CHECK(std::find(opts.begin(), opts.end(), "rbind") != opts.end());
  // what we print we can read back, and it validates
  auto f = parse_features(json::parse(j.dump()));
  INFO((f ? "" : f.error().msg));
  REQUIRE(f);
  CHECK(to_json(*f) == j);

  FeatureSupport s;
  s.cgroupV1 = false;
  s.seccomp = false;
  s.apparmor = true;
  s.annotations["org.opencontainers.runc.version"] = "brig";
  s.potentiallyUnsafeConfigAnnotations = {"org.systemd.property."};
  auto k = brig_features(s);
  CHECK(k["linux"]["cgroup"]["v1"] == false);
  CHECK(k["linux"]["seccomp"] == nlohmann::ordered_json{{"enabled", false}});
  CHECK(k["linux"]["apparmor"]["enabled"] == true);
  CHECK(k["annotations"]["org.opencontainers.runc.version"] == "brig");
  CHECK(k["potentiallyUnsafeConfigAnnotations"][0] == "org.systemd.property.");
}

TEST_CASE("features: validation", "[spec][features]") {
  auto msg = [](const char* text) {
    auto p = parse_features(std::string_view(text));
    return p ? std::string() : p.error().msg;
  };
  CHECK(msg(R"({"ociVersionMax":"1.1.0"})") == "ociVersionMin: must be set");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","hooks":"all"})") == "hooks: must be an array");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","linux":{"namespaces":["pid","net"]}})") ==
        "linux.namespaces[1]: unknown value \"net\"");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","linux":{"capabilities":["CAP_KILL","kill"]}})") ==
        "linux.capabilities[1]: \"kill\" is not a capability name");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","linux":{"cgroup":{"v2":"yes"}}})") ==
        "linux.cgroup.v2: must be a boolean");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","linux":{"seccomp":{"actions":["ALLOW"]}}})") ==
        "linux.seccomp.actions[0]: unknown value \"ALLOW\"");
  CHECK(msg(R"({"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0","linux":{"mountExtensions":{"idmap":{"enabled":1}}}})") ==
        "linux.mountExtensions.idmap.enabled: must be a boolean");
}
