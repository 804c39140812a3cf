#include <fcntl.h>
#include <signal.h>
#include <cstdio>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <functional>

#include "cgroup/manager.hpp"
#include "namespaces/namespaces.hpp"
#include "runtime/container.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"
#include "runtime/selfexe.hpp"
#include "runtime/state.hpp"
#include "runtime/sync.hpp"

using namespace brig;

TEST_CASE("signals parse by name, SIG name, number, RT offsets", "[signals]") {
  CHECK(*runtime::parse_signal("KILL") == SIGKILL);
  CHECK(*runtime::parse_signal("SIGTERM") == SIGTERM);
  CHECK(*runtime::parse_signal("sigusr1") == SIGUSR1);
  CHECK(*runtime::parse_signal("9") == 9);
  CHECK(*runtime::parse_signal("RTMIN+2") == SIGRTMIN + 2);
  CHECK(*runtime::parse_signal("SIGRTMAX-1") == SIGRTMAX - 1);
  for (const char* bad : {"FOO", "0", "-1", "999", "", "RTMIN+99"}) {
    auto r = runtime::parse_signal(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().msg == fmt::format("unknown signal \"{}\"", bad));
  }
}

TEST_CASE("read_all stops at its limit with EFBIG", "[sys]") {
  for (size_t size : {0, 5, 8191, 8192, 8193, 20000}) {
    int fd = ::memfd_create("t", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    Fd f(fd);
    std::string data(size, 'x');
    REQUIRE(sys::write_all(f, data));
    for (size_t limit : {size_t{0}, size > 0 ? size - 1 : 0, size, size + 1, SIZE_MAX}) {
      ::lseek(fd, 0, SEEK_SET);
      auto r = sys::read_all(f, limit);
      if (size <= limit) {
        REQUIRE(r);
        CHECK(*r == data);
      } else {
        REQUIRE_FALSE(r);
        CHECK(r.error().err == EFBIG);
      }
    }
  }
}

TEST_CASE("clean_path is lexically_normal, on every short path", "[sys]") {
  // Every path of up to 10 characters from {a, ., /}: names, ".", "..",
  // "...", ".a", "a.", runs of slashes, leading and trailing ones.
  const char alphabet[] = {'a', '.', '/'};
  size_t checked = 0;
  std::string p;
  auto walk = [&](auto&& self, size_t len) -> void {
    if (p.size() == len) {
      std::string want = std::filesystem::path(p).lexically_normal().string();
      std::string got = sys::clean_path(p);
      if (got != want) FAIL_CHECK("clean_path(\"" << p << "\") = \"" << got << "\", want \"" << want << "\"");
      ++checked;
      return;
    }
    for (char c : alphabet) {
      p.push_back(c);
      self(self, len);
      p.pop_back();
    }
  };
  for (size_t len = 0; len <= 10; ++len) walk(walk, len);
  CHECK(checked == 88573);
  CHECK(sys::clean_path("/x//y/./../z/") == "/x/z/");
  CHECK(sys::clean_path("/../..//etc") == "/etc");
}

TEST_CASE("container IDs are validated as runc does", "[state]") {
  for (const char* ok : {"a", "abc-DEF_1.2+3", "x.y"}) CHECK(runtime::validate_id(ok));
  CHECK(runtime::validate_id("").error().msg == "container id cannot be empty");
  for (const char* bad : {".", "..", "a/b", "../x", "a b", "a\nb", "é"}) {
    auto r = runtime::validate_id(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().msg == "invalid container ID format");
  }
}

TEST_CASE("the state record round-trips through JSON", "[state]") {
  runtime::Record r;
  r.id = "c";
  r.pid = 42;
  r.pid_start = 777;
  r.phase = "created";
  r.bundle = "/b";
  r.rootfs = "/b/rootfs";
  r.created = "2026-01-01T00:00:00.000000001Z";
  r.annotations = {{"k", "v"}};
  r.cgroup_path = "/brig/c";
  r.own_pidns = true;
  r.config = R"({"ociVersion":"1.3.0"})";
  auto back = runtime::record_from_json(runtime::to_json(r));
  REQUIRE(back);
  CHECK(back->pid == 42);

  CHECK(back->pid_start == 777);
  CHECK(back->annotations.at("k") == "v");
  CHECK(back->config == r.config);
  CHECK(back->cgroup_hierarchies.empty());  // none kept: later commands read mountinfo
  // The hierarchies create found come back for later commands.
  r.cgroup_hierarchies = {{"/sys/fs/cgroup/cpu,cpuacct", "/", {"cpu", "cpuacct"}, false},
                          {"/sys/fs/cgroup/unified", "/", {}, true}};
  back = runtime::record_from_json(runtime::to_json(r));
  REQUIRE(back);
  REQUIRE(back->cgroup_hierarchies.size() == 2);
  CHECK(back->cgroup_hierarchies[0].mountpoint == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(back->cgroup_hierarchies[0].root == "/");
  CHECK(back->cgroup_hierarchies[0].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK_FALSE(back->cgroup_hierarchies[0].v2);
  CHECK(back->cgroup_hierarchies[1].v2);
  // Kept hierarchies are used while each is a cgroup filesystem of its
  // kind; these two are not mounted here, so mountinfo is read instead.
  auto fresh = cgroup::open_fs("/brig/c");
  auto cg = cgroup::open_fs("/brig/c", back->cgroup_hierarchies);
  REQUIRE(bool(cg) == bool(fresh));
  if (fresh) {
    CHECK((*cg)->dirs() == (*fresh)->dirs());
    // One real hierarchy kept alone is used as kept (no mountinfo).
    std::vector<cgroup::Hierarchy> one{(*fresh)->hierarchies().front()};
    auto kept = cgroup::open_fs("/brig/c", one);
    REQUIRE(kept);
    CHECK((*kept)->dirs() == std::vector<std::string>{one.front().mountpoint + "/brig/c"});
  }
  // Paths later commands write under: only clean absolute ones, and no v1
  // controllers on a cgroup2 mount (nor none on a v1 one).
  for (auto [key, v] : std::vector<std::pair<const char*, nlohmann::json>>{
           {"mountpoint", "sys/fs/cgroup/cpu"}, {"mountpoint", "/sys/fs/cgroup/../../etc"},
           {"mountpoint", "/"}, {"mountpoint", "/sys/fs/cgroup/cpu/"}, {"mountpoint", ""},
           {"controllers", nlohmann::json::array()}, {"v2", true}}) {
    auto j = runtime::to_json(r);
    j["cgroupHierarchies"][0][key] = v;
    CHECK_FALSE(runtime::record_from_json(j));
  }
  // state.json's text is the record's JSON, the config's text beside the
  // other fields, and reads back the same.
  r.pid_ino = 9;
  r.creator = 7;
  r.creator_start = 8;
  r.config = R"({"ociVersion":"1.3.0","process":{"args":["sh","-c","a\"b"]}})";
  auto text = runtime::state_text(r);
  CHECK(nlohmann::json::parse(text) == runtime::to_json(r));
  auto again = runtime::record_from_text(text);
  REQUIRE(again);
  CHECK(again->config == r.config);
  CHECK(again->creator_start == 8);
  CHECK(again->pid_ino == 9);
  // A path that is not UTF-8 (a cgroup mount point, say) is written with
  // U+FFFD for its bad byte, not thrown at the save.
  r.bundle = "/b\xff";
  text = runtime::state_text(r);
  CHECK(nlohmann::json::parse(text)["bundle"] == "/b\xef\xbf\xbd");
  // Of duplicate annotations the last counts, as in nlohmann's document.
  auto dup = runtime::record_from_text(
      R"({"annotations":{"a":1,"a":"x"},"bundle":"/b","cgroupPath":"/c","config":{},"created":"t","id":"i",)"
      R"("ownPidns":true,"phase":"created","pid":1,"pidStart":2,"rootfs":"/r"})");
  REQUIRE(dup);
  CHECK(dup->annotations == std::map<std::string, std::string>{{"a", "x"}});
  CHECK(dup->config == "{}");
  auto bad = runtime::record_from_json(nlohmann::json{{"id", "x"}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg.rfind("corrupt state", 0) == 0);
  // numbers of the wrong kind or range are corrupt, not converted (a float
  // out of int's range was undefined behaviour; found by fuzz_state)
  for (auto [key, v] : std::vector<std::pair<const char*, nlohmann::json>>{
           {"pid", 4.41e24}, {"pid", 1.5}, {"pid", 1ULL << 40}, {"pid", -(1LL << 40)}, {"pidStart", -1},
           {"pidStart", 1e30}, {"pid", "42"}}) {
    auto j = runtime::to_json(r);
    j[key] = v;
    auto c = runtime::record_from_json(j);
    CHECK_FALSE(c);
  }
}

TEST_CASE("namespace plan: create vs join, unknown and duplicate types", "[namespaces]") {
  std::vector<spec::Namespace> nss = {{"mount", std::nullopt}, {"network", "/run/netns/x"},
                                      {"user", std::nullopt},  {"pid", "/proc/1/ns/pid"},
                                      {"uts", ""}};
  auto p = ns::plan(nss);
  REQUIRE(p);
  CHECK(p->clone_flags == (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWUTS));
  REQUIRE(p->joins.size() == 2);
  CHECK(p->joins[0].type == "pid");  // joins in kernel-friendly order
  CHECK(p->joins[1].type == "network");
  CHECK(p->has("network"));
  CHECK_FALSE(p->creates("network"));
  CHECK(p->new_user());
  CHECK_FALSE(p->new_pid());

  auto unknown = ns::plan({{"mount", std::nullopt}, {"foo", std::nullopt}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().msg == "linux.namespaces[1].type: unknown namespace \"foo\"");
  auto dup = ns::plan({{"pid", std::nullopt}, {"pid", std::nullopt}});
  REQUIRE_FALSE(dup);
  CHECK(dup.error().msg == "linux.namespaces[1].type: duplicate namespace \"pid\"");
}

TEST_CASE("id maps are formatted one mapping a line", "[namespaces]") {
  CHECK(ns::format_id_map({{0, 100000, 65536}, {65536, 1000, 1}}) == "0 100000 65536\n65536 1000 1\n");
}

TEST_CASE("id maps: who writes which, and setgroups", "[namespaces]") {
  using M = std::vector<spec::IdMapping>;
  const M own_u{{0, 1000, 1}}, own_g{{0, 2000, 1}}, wide{{0, 1000, 1}, {1, 100000, 65536}};
  auto plan = [](const M& u, const M& g, bool unpriv) { return ns::plan_id_maps(u, g, unpriv, 1000, 2000); };
  auto is = [](ns::IdMapPlan p, bool uh, bool gh, bool deny) {
    return p.uid_helper == uh && p.gid_helper == gh && p.deny_setgroups == deny;
  };
  // root writes every map itself and leaves setgroups alone
  CHECK(is(plan(wide, wide, false), false, false, false));
  // the caller's own ids: directly, setgroups denied for the gid map
  CHECK(is(plan(own_u, own_g, true), false, false, true));
  CHECK(is(plan(M{{5, 1000, 1}}, own_g, true), false, false, true));  // own id at any container id
  // only the uid map beyond: newuidmap, the gid map ours (so setgroups denied)
  CHECK(is(plan(wide, own_g, true), true, false, true));
  // only the gid map beyond: newgidmap decides setgroups
  M wide_g{{0, 2000, 1}, {1, 200000, 10}};
  CHECK(is(plan(own_u, wide_g, true), false, true, false));
  CHECK(is(plan(wide, wide_g, true), true, true, false));
  // another user's single id, or more than one id, is beyond
  CHECK(plan(M{{0, 1001, 1}}, own_g, true).uid_helper);
  CHECK(plan(M{{0, 1000, 2}}, own_g, true).uid_helper);
  CHECK(plan(own_u, M{{0, 1000, 1}}, true).gid_helper);  // the uid is not the gid
  // no map at all: no helper
  CHECK(is(plan({}, {}, true), false, false, true));
}

TEST_CASE("cgroup hierarchies come from mountinfo", "[cgroup]") {
  const std::string mi =
      "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
      "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
      "32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "34 25 0:28 /sub /mnt/again rw - cgroup cgroup rw,memory\n"
      "35 25 0:30 / /proc rw - proc proc rw\n"
      // Not cgroup mounts, whatever their paths or types say.
      "36 25 0:31 / /x\\040-\\040cgroup\\040cgroup rw - tmpfs tmpfs rw\n"
      "37 25 0:32 / /y rw - cgroupfs none rw,memory\n"
      "garbage without a separator\n";
  auto hs = cgroup::parse_mountinfo(mi);
  REQUIRE(hs.size() == 4);
  CHECK(hs[0].v2);
  CHECK(hs[1].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(hs[2].mountpoint == "/sys/fs/cgroup/memory");
  CHECK(hs[3].controllers == std::vector<std::string>{"name=systemd"});
  CHECK(cgroup::layout_of(hs) == cgroup::Layout::hybrid);
  CHECK(cgroup::layout_of({hs[0]}) == cgroup::Layout::v2);
  CHECK(cgroup::layout_of({hs[2]}) == cgroup::Layout::v1);
}

TEST_CASE("text: split, words and lines without iostreams", "[text]") {
  using V = std::vector<std::string_view>;
  CHECK(text::split("a::b", ':') == V{"a", "", "b"});
  CHECK(text::split("", ':') == V{""});
  CHECK(text::split(":", ':') == V{"", ""});
  CHECK(text::split("/usr/bin", ':') == V{"/usr/bin"});
  CHECK(text::words("  12\t34\n\n56 ") == V{"12", "34", "56"});
  CHECK(text::words(" \n\t").empty());
  CHECK(text::words("").empty());
  CHECK(text::lines("a\n\nb\n") == V{"a", "", "b"});
  CHECK(text::lines("a\nb") == V{"a", "b"});
  CHECK(text::lines("").empty());
  // A mountinfo whose last line has no newline still counts that line.
  auto hs = cgroup::parse_mountinfo("32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory");
  REQUIRE(hs.size() == 1);
  CHECK(hs[0].controllers == std::vector<std::string>{"memory"});
}

TEST_CASE("state_text is the record's document, dumped, byte for byte but the config last", "[state]") {
  // The expected text: to_json(r) without its config, dumped as nlohmann
  // does, the config appended as the last key.
  auto expected = [](const runtime::Record& r) {
    auto j = runtime::to_json(r);
    j.erase("config");
    std::string e = j.dump();
    e.pop_back();
    return e + ",\"config\":" + (r.config.empty() ? "null" : r.config) + "}";
  };
  // Strings from every ASCII byte, quotes, backslashes, controls, DEL and
  // well-formed multi-byte UTF-8 (ill-formed is below: nlohmann throws).
  const std::vector<std::string> pieces = {"a", "\"", "\\", "/", "\x01", "\x1f", "\b", "\f", "\n", "\r", "\t",
                                           "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80", " ", "}", "%s{}"};
  uint64_t seed = 12345;
  auto next = [&seed] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL, seed >> 33; };
  auto some = [&] {
    std::string out;
    for (size_t n = next() % 6; n > 0; --n) out += pieces[next() % pieces.size()];
    return out;
  };
  for (int c = 0; c < 128; ++c) {  // every ASCII byte, alone, in a path
    runtime::Record r;
    r.bundle = std::string("/b") + static_cast<char>(c);
    REQUIRE(runtime::state_text(r) == expected(r));
  }
  for (int round = 0; round < 2000; ++round) {
    runtime::Record r;
    r.id = some();
    r.pid = static_cast<pid_t>(next()) - (1 << 30);
    r.pid_start = next() << 31 | next();
    r.pid_ino = round % 3 ? next() : 0;
    r.phase = some();
    r.bundle = some();
    r.rootfs = some();
    r.created = some();
    for (size_t n = next() % 4; n > 0; --n) r.annotations[some()] = some();
    r.cgroup_path = some();
    for (size_t n = next() % 3; n > 0; --n) {
      cgroup::Hierarchy h{some(), "/", {}, next() % 2 == 0};
      for (size_t m = next() % 3; m > 0; --m) h.controllers.push_back(some());
      r.cgroup_hierarchies.push_back(h);
    }
    r.own_pidns = next() % 2;
    r.no_cgroup = next() % 2;
    r.creator = round % 2 ? static_cast<pid_t>(next()) : 0;
    r.creator_start = next();
    if (round % 5 == 0) {
      r.rdt_tasks = some();
      for (size_t n = next() % 3; n > 0; --n) r.rdt_remove.push_back(some());
    }
    r.config = nlohmann::json{{"ociVersion", some()}, {"n", static_cast<int64_t>(next())}}.dump();
    std::string text = runtime::state_text(r);
    REQUIRE(text == expected(r));
    // And it reads back: the fields, and the config's text as it was (the
    // hierarchies made up here are no paths a record may hold).
    if (!r.cgroup_hierarchies.empty()) continue;
    auto back = runtime::record_from_text(text);
    REQUIRE(back);
    CHECK(back->id == r.id);
    CHECK(back->pid == r.pid);
    CHECK(back->annotations == r.annotations);
    CHECK(back->config == r.config);
  }
}

TEST_CASE("json_minify of an indented dump is the compact dump", "[text]") {
  uint64_t seed = 99;
  auto next = [&seed] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL, seed >> 33; };
  const std::vector<std::string> pieces = {"a", " ", "\"", "\\", "\n", "\t", "\r", "\x01", "\xc3\xa9", "{", "]", ":", ","};
  auto str = [&] {
    std::string out;
    for (size_t n = next() % 5; n > 0; --n) out += pieces[next() % pieces.size()];
    return out;
  };
  std::function<nlohmann::json(int)> doc = [&](int depth) -> nlohmann::json {
    switch (depth > 3 ? next() % 4 : next() % 6) {
      case 0: return str();
      case 1: return static_cast<int64_t>(next()) - (1LL << 31);
      case 2: return next() % 2 == 0;
      case 3: return nullptr;
      case 4: {
        auto a = nlohmann::json::array();
        for (size_t n = next() % 4; n > 0; --n) a.push_back(doc(depth + 1));
        return a;
      }
      default: {
        auto o = nlohmann::json::object();
        for (size_t n = next() % 4; n > 0; --n) o[str()] = doc(depth + 1);
        return o;
      }
    }
  };
  for (int round = 0; round < 2000; ++round) {
    auto j = doc(0);
    std::string compact = j.dump();
    CHECK(text::json_minify(j.dump(2)) == compact);
    CHECK(text::json_minify(" \r\n" + j.dump(1, '\t') + "\n ") == compact);
  }
}

TEST_CASE("text: valid_utf8 accepts what a JSON dump can hold; lossy_utf8 marks the rest", "[text]") {
  auto dumps = [](const std::string& s) {
    try {
      (void)nlohmann::json(s).dump();
      return true;
    } catch (const nlohmann::json::type_error&) {
      return false;
    }
  };
  // Every string of one and two bytes, and three and four byte strings built
  // around the edges of each lead byte's ranges.
  std::vector<std::string> all;
  for (int a = 0; a < 256; ++a) {
    all.emplace_back(1, static_cast<char>(a));
    for (int b = 0; b < 256; ++b) all.push_back({static_cast<char>(a), static_cast<char>(b)});
  }
  const int edges[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                       0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  for (int a : edges)
    for (int b : edges)
      for (int c : edges) {
        all.push_back({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
        for (int d : edges)
          all.push_back({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c), static_cast<char>(d)});
      }
  size_t valid = 0;
  for (const auto& s : all) {
    if (text::valid_utf8(s) != dumps(s)) {
      std::string hex;
      for (unsigned char ch : s) hex += fmt::format("{:02x}", ch);
      FAIL("valid_utf8 and nlohmann disagree on " << hex);
    }
    valid += text::valid_utf8(s);
    std::string l = text::lossy_utf8(s);
    CHECK(text::valid_utf8(l));
    if (text::valid_utf8(s)) CHECK(l == s);
  }
  CHECK(valid > 1000);
  // One U+FFFD a byte that starts no sequence, as Go writes it.
  CHECK(text::lossy_utf8("a\xe2\x82z\xff") == "a\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd");
  CHECK(text::lossy_utf8("\xe2\x82\xac") == "\xe2\x82\xac");
  CHECK_FALSE(text::valid_utf8("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(text::valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(text::valid_utf8("\xc0\x80"));          // overlong
  CHECK(text::valid_utf8("\xf4\x8f\xbf\xbf"));
  // A JSON string of any bytes parses, with U+FFFD for each ill-formed byte.
  for (const auto& s : all) {
    std::string q;
    text::append_json_string(q, s);
    auto back = nlohmann::json::parse(q).get<std::string>();
    CHECK(back == text::lossy_utf8(s));
  }
}

TEST_CASE("cgroup path: absent, relative and absolute cgroupsPath", "[cgroup]") {
  CHECK(cgroup::resolve_path(std::nullopt, "c1") == "/brig/c1");
  CHECK(cgroup::resolve_path(std::string(""), "c1") == "/brig/c1");
  CHECK(cgroup::resolve_path(std::string("pod/c1"), "c1") == "/brig/pod/c1");
  CHECK(cgroup::resolve_path(std::string("/kubepods//x/"), "c1") == "/kubepods/x/");
}

TEST_CASE("log text quoting follows Go's strconv.Quote", "[log]") {
  CHECK(log::quote("a \"b\"\n") == "\"a \\\"b\\\"\\n\"");
  CHECK(log::quote("tab\there") == "\"tab\\there\"");
}

TEST_CASE("created timestamps are Go's RFC3339Nano", "[state]") {
  for (int i = 0; i < 200; i++) {
    std::string t = sys::now_rfc3339_nano();
    REQUIRE(t.back() == 'Z');
    auto dot = t.find('.');
    if (dot != std::string::npos) {
      CHECK(t[t.size() - 2] != '0');  // no trailing zeros in the fraction
      CHECK(t.size() - dot - 2 <= 9);
    }
  }
  // The seconds, in UTC, as strftime writes them.
  auto expect = [](time_t t) {
    struct tm tm;
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
  };
  time_t before = ::time(nullptr);
  std::string secs = sys::rfc3339_seconds(), nano = sys::now_rfc3339_nano();
  time_t after = ::time(nullptr);
  CHECK((secs == expect(before) || secs == expect(after)));
  std::string nano_secs = nano.substr(0, 19) + "Z";
  CHECK((nano_secs == expect(before) || nano_secs == expect(after)));
}

TEST_CASE("brig runs from a read-only view of itself unless the container has a user namespace", "[selfexe]") {
  spec::Config cfg;
  CHECK(runtime::needs_protected_exe(cfg));
  cfg.linux.emplace();
  cfg.linux->namespaces.push_back({"pid", std::nullopt});
  cfg.linux->namespaces.push_back({"user", std::nullopt});  // a new one: its root is not ours
  CHECK_FALSE(runtime::needs_protected_exe(cfg));
  cfg.linux->namespaces.back().path = "/proc/self/ns/user";  // joining our own is no user namespace
  CHECK(runtime::needs_protected_exe(cfg));
  cfg.linux->namespaces.pop_back();
  CHECK(runtime::needs_protected_exe(cfg));
}

namespace {
int selfexe_global = 41;  // in the data segment, which protect_exe() copies

// How many of the pages in [lo, lo + len) this process has mapped
// (/proc/self/pagemap: bit 63 of each page's entry, readable by anyone).
size_t pages_mapped(uintptr_t lo, size_t len) {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<uint64_t> e(len / 4096);
  ssize_t n = ::pread(fd, e.data(), e.size() * 8, static_cast<off_t>(lo / 4096 * 8));
  ::close(fd);
  if (n != static_cast<ssize_t>(e.size() * 8)) return 0;
  return static_cast<size_t>(std::count_if(e.begin(), e.end(), [](uint64_t v) { return (v >> 63) & 1; }));
}
}  // namespace

TEST_CASE("set_hot_text maps the whole range in at once", "[selfexe]") {
  int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  constexpr size_t len = 64 * 4096;
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  REQUIRE(p != MAP_FAILED);
  auto lo = reinterpret_cast<uintptr_t>(p);
  CHECK(pages_mapped(lo, len) == 0);  // nothing touched yet
  runtime::set_hot_text(lo + 100, lo + len - 100);  // widened to whole pages
  CHECK(pages_mapped(lo, len) == len / 4096);
  runtime::set_hot_text(0, 0);
  ::munmap(p, len);
}

TEST_CASE("protect_exe moves the process onto a read-only view of its binary without an exec", "[selfexe]") {
  // A re-exec (the fallback) would start this binary over, with the child's
  // environment: main() ends it at once, and the parent sees status 30.
  if (::geteuid() != 0) {
    WARN("needs root (open_tree, PR_SET_MM_MAP): skipped");
    return;
  }
  // Both moves: in one call where the architecture has it (x86_64), and a
  // mapping at a time, which test builds can ask for there too.
#if defined(__x86_64__) && defined(BRIG_FAULT_INJECTION)
  bool one_call = GENERATE(true, false);
#elif defined(__x86_64__)
  bool one_call = true;
#else
  bool one_call = false;
#endif
  INFO((one_call ? "in one call" : "a mapping at a time"));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!one_call) ::setenv("BRIG_SELFEXE_ONE_CALL", "0", 1);
    struct stat before, after;
    if (::stat("/proc/self/exe", &before) < 0) ::_exit(10);
    // The mappings of the binary: "range perms" and the path, by inode;
    // `all`, if given, gets every mapping's "range perms".
    auto exe_maps = [&](std::vector<std::string>& ranges, std::vector<std::string>& paths,
                        std::vector<std::string>* all = nullptr) {
      auto maps = sys::read_file("/proc/self/maps");
      if (!maps) ::_exit(17);
      for (size_t i = 0, eol; i < maps->size(); i = eol + 1) {
        eol = maps->find('\n', i);
        if (eol == std::string::npos) eol = maps->size();
        char range[64] = {}, perms[8] = {}, path[256] = {};
        unsigned long ino = 0;
        if (std::sscanf(maps->substr(i, eol - i).c_str(), "%63s %7s %*s %*s %lu %255s", range, perms, &ino, path) < 3)
          continue;
        if (all) all->push_back(std::string(range) + " " + perms);
        if (ino != before.st_ino) continue;
        ranges.push_back(std::string(range) + " " + perms);
        paths.push_back(path);
      }
    };
    std::vector<std::string> ranges_before, paths_before, ranges_after, paths_after;
    exe_maps(ranges_before, paths_before);
    // The first 256 KiB of the text stand for the hot code: mapped in again
    // right after the move, not left to fault in page by page.
    uintptr_t text = 0;
    for (const auto& r : ranges_before)
      if (r.ends_with("r-xp")) text = std::stoul(r.substr(0, r.find('-')), nullptr, 16);
    if (text == 0) ::_exit(21);
    constexpr size_t hot = 64 * 4096;
    runtime::set_hot_text(text, text + hot);
    bool was = runtime::exe_protected();
    selfexe_global += 1;
    std::string heap = "kept";  // the heap is not touched
    ::setenv("BRIG_TEST_SELFEXE_CHILD", "1", 1);
    if (!runtime::protect_exe()) ::_exit(11);
    if (!runtime::exe_protected()) ::_exit(12);
    if (was) ::_exit(0);  // run from a read-only mount: nothing to do
    if (selfexe_global != 42 || heap != "kept") ::_exit(14);
    if (::stat("/proc/self/exe", &after) < 0) ::_exit(15);
    if (before.st_ino != after.st_ino || before.st_dev != after.st_dev) ::_exit(16);  // the same file
    // The same ranges with the same permissions (RELRO still read-only, text
    // not writable): the text and read-only data now the view's, whose path
    // is "/" (the root of its detached mount), the pages the loader wrote
    // anonymous copies; none of the writable path is left.
    std::vector<std::string> all_after;
    exe_maps(ranges_after, paths_after, &all_after);
    if (ranges_after.empty()) ::_exit(18);
    for (const auto& r : ranges_before) {
      bool view = std::find(ranges_after.begin(), ranges_after.end(), r) != ranges_after.end();
      bool kept = std::find(all_after.begin(), all_after.end(), r) != all_after.end();
      if (!kept || (r.ends_with("r-xp") && !view)) ::_exit(18);
    }
    for (const auto& p : paths_after)
      if (p != "/") ::_exit(19);
    // access() asks the filesystem, not the running text (open would say
    // ETXTBSY, protected or not): the view is read-only.
    if (::access("/proc/self/exe", W_OK) == 0 || errno != EROFS) ::_exit(20);
    if (pages_mapped(text, hot) != hot / 4096) ::_exit(22);
    // Replaced with one mmap of the view, the loader-written pages put back
    // from a memfd (runtime/selfexe.cpp, replace_in_one_call), present; a
    // mapping at a time, they are anonymous copies and no memfd is made.
    auto maps = sys::read_file("/proc/self/maps");
    if (!maps || (maps->find(" /memfd:brig-relocated") != std::string::npos) != one_call) ::_exit(23);
    for (size_t i = 0, eol; maps && i < maps->size(); i = eol + 1) {
      eol = maps->find('\n', i);
      if (eol == std::string::npos) eol = maps->size();
      std::string line = maps->substr(i, eol - i);
      if (line.find(" /memfd:brig-relocated") == std::string::npos) continue;
      uintptr_t lo = std::stoul(line, nullptr, 16), hi = std::stoul(line.substr(line.find('-') + 1), nullptr, 16);
      if (pages_mapped(lo, hi - lo) != (hi - lo) / 4096) ::_exit(24);
    }
    ::_exit(0);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

#if defined(__x86_64__) && defined(BRIG_FAULT_INJECTION)
TEST_CASE("protect_exe puts the loader-written pages back when a call after the view's mmap fails", "[selfexe]") {
  if (::geteuid() != 0) {
    WARN("needs root (open_tree, PR_SET_MM_MAP): skipped");
    return;
  }
  // 1: the memfd's mmap over RELRO and data; 2: the first mprotect after it.
  // Either way the pages come back from the memfd, libc works again, and
  // protect_exe re-executes this binary from the view: main() sees
  // BRIG_TEST_SELFEXE_CHILD and exits 30. A failed undo would exit 125, a
  // GOT left unrelocated would crash.
  auto call = GENERATE("1", "2");
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("BRIG_TEST_SELFEXE_CHILD", "1", 1);
    ::setenv("BRIG_SELFEXE_BREAK", call, 1);
    if (runtime::exe_protected()) ::_exit(0);  // run from a read-only mount: nothing to do
    auto r = runtime::protect_exe();
    ::_exit(r ? 12 : 11);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  INFO("call " << call);
  REQUIRE(WIFEXITED(st));
  if (WEXITSTATUS(st) != 0) CHECK(WEXITSTATUS(st) == 30);
}
#endif

TEST_CASE("process_is: the same process by start time, not a zombie, not a reused pid", "[state]") {
  auto me = brig::sys::process_start_time(::getpid());
  REQUIRE(me);
  CHECK(brig::sys::process_is(::getpid(), *me));
  CHECK_FALSE(brig::sys::process_is(::getpid(), *me + 1));  // a pid reused by another process
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  auto born = brig::sys::process_start_time(child);
  REQUIRE(born);
  // A zombie until reaped: no longer the process that was started.
  for (int i = 0; i < 1000 && brig::sys::process_is(child, *born); ++i) ::usleep(1000);
  CHECK_FALSE(brig::sys::process_is(child, *born));
  CHECK(brig::sys::process_start_time(child) == born);  // the zombie is still there
  ::waitpid(child, nullptr, 0);
  CHECK_FALSE(brig::sys::process_start_time(child));
  CHECK_FALSE(brig::sys::process_is(child, *born));

  // The name (field 2) may hold spaces and parentheses: fields count from its last ')'.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_NAME, "x) R 1 2 (y", 0, 0, 0);
    (void)!::write(ready[1], "k", 1);
    ::pause();
    ::_exit(0);
  }
  char k;
  REQUIRE(::read(ready[0], &k, 1) == 1);
  auto odd = brig::sys::process_start_time(child);
  CHECK((odd && *odd >= *me && *odd <= *born + 100000));
  CHECK((odd && brig::sys::process_is(child, *odd)));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("own_start_time: what read_own_stat saw, for this process only", "[state]") {
  auto me = brig::sys::process_start_time(::getpid());
  REQUIRE(me);
  CHECK(brig::sys::own_start_time(::getpid()) == me);  // nothing remembered yet, or the same
  auto text = brig::sys::read_own_stat();
  REQUIRE(text);
  CHECK(text->starts_with(std::to_string(::getpid()) + " ("));
  CHECK(text->ends_with("\n"));
  CHECK(brig::sys::own_start_time(::getpid()) == me);
  // A forked child shares the remembered value but not the pid: it reads its own.
  int out[2];
  REQUIRE(::pipe(out) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    auto mine = brig::sys::own_start_time(::getpid());
    uint64_t v = mine ? *mine : 0;
    (void)!::write(out[1], &v, sizeof v);
    ::_exit(0);
  }
  REQUIRE(child > 0);
  uint64_t got = 0;
  REQUIRE(::read(out[0], &got, sizeof got) == static_cast<ssize_t>(sizeof got));
  auto real = brig::sys::process_start_time(child);  // a zombie until reaped
  ::waitpid(child, nullptr, 0);
  CHECK((real && got == *real));
  CHECK_FALSE(brig::sys::own_start_time(child));  // reaped: gone, never the parent's value
  ::close(out[0]);
  ::close(out[1]);
}

TEST_CASE("read_attribute: one read for a small kernel file, all of a longer file", "[state]") {
  auto a = brig::sys::read_attribute("/proc/sys/kernel/cap_last_cap");
  auto f = brig::sys::read_file("/proc/sys/kernel/cap_last_cap");
  REQUIRE(a);
  REQUIRE(f);
  CHECK(*a == *f);
  auto st = brig::sys::read_attribute("/proc/self/status");
  REQUIRE(st);
  CHECK(st->starts_with("Name:\t"));
  CHECK(st->find("\nSigCgt:\t") != std::string::npos);
  CHECK(st->ends_with("\n"));
  // Longer than the one buffer: read on to the end (an unnamed file, read
  // through its /proc/self/fd link: nothing left behind if a check fails).
  brig::Fd file(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  REQUIRE(file);
  std::string big(20000, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + (i / 97) % 26);
  REQUIRE(::write(file.get(), big.data(), big.size()) == static_cast<ssize_t>(big.size()));
  auto got = brig::sys::read_attribute("/proc/self/fd/" + std::to_string(file.get()));
  REQUIRE(got);
  CHECK(*got == big);
  auto missing = brig::sys::read_attribute("/proc/self/no-such-file");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().err == ENOENT);
}

TEST_CASE("process_is with a pidfs inode: two processes of one clock tick told apart", "[state]") {
  auto self = brig::sys::pidfd_open(::getpid());
  REQUIRE(self);
  uint64_t mine = brig::sys::pidfs_ino(*self);
  struct utsname u;
  REQUIRE(::uname(&u) == 0);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major < 6 || (major == 6 && minor < 9)) {
    CHECK(mine == 0);  // no pidfs: pidfds share one anonymous inode
    return;
  }
  REQUIRE(mine != 0);
  auto again = brig::sys::pidfd_open(::getpid());
  REQUIRE(again);
  CHECK(brig::sys::pidfs_ino(*again) == mine);  // one process, one inode
  auto me = brig::sys::process_start_time(::getpid());
  REQUIRE(me);
  CHECK(brig::sys::process_is(::getpid(), *me, mine));
  CHECK_FALSE(brig::sys::process_is(::getpid(), *me, mine + 1));  // same pid and tick, another process
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  REQUIRE(child > 0);
  auto cfd = brig::sys::pidfd_open(child);
  REQUIRE(cfd);
  CHECK(brig::sys::pidfs_ino(*cfd) != mine);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST_CASE("/proc/PID/maps lines parse by hand as the kernel writes them", "[selfexe]") {
  using brig::runtime::parse_maps_line;
  auto m = parse_maps_line("55a4c305c000-55a4c3375000 r-xp 000c1000 fe:01 1312042                    /usr/bin/brig");
  REQUIRE(m);
  CHECK(m->lo == 0x55a4c305c000);
  CHECK(m->hi == 0x55a4c3375000);
  CHECK(m->prot == (PROT_READ | PROT_EXEC));
  CHECK(m->offset == 0xc1000);
  CHECK(m->dev == makedev(0xfe, 1));
  CHECK(m->inode == 1312042);
  CHECK(m->path == "/usr/bin/brig");
  m = parse_maps_line("7f42cb12c000-7f42cb130000 rw-p 001cf000 103:02 99 /a dir/with spaces (deleted)");
  REQUIRE(m);
  CHECK(m->prot == (PROT_READ | PROT_WRITE));
  CHECK(m->dev == makedev(0x103, 2));
  CHECK(m->path == "/a dir/with spaces (deleted)");
  m = parse_maps_line("7ffd2fb54000-7ffd2fb75000 rw-p 00000000 00:00 0                          [stack]");
  REQUIRE(m);
  CHECK(m->inode == 0);
  CHECK(m->path == "[stack]");
  m = parse_maps_line("7f42cb132000-7f42cb13f000 ---p 00000000 00:00 0 ");
  REQUIRE(m);
  CHECK(m->prot == 0);
  CHECK(m->path.empty());
  CHECK(parse_maps_line("7f42cb132000-7f42cb13f000 ---p 00000000 00:00 0")->path.empty());
  // Not maps lines.
  for (const char* bad : {"", "55a4c305c000", "55a4c305c000-55a4c3375000", "zz-55 r-xp 0 fe:01 1 /x",
                          "1-2 r-xp 0 fe:01", "1-2 r-x 0 fe:01 1 /x", "1-2 r-xp 0 fe01 1 /x", "1-2 r-xp 0 fe:01 x /x"})
    CHECK_FALSE(parse_maps_line(bad));
  // Every line of our own maps parses, and the whole of it agrees with the kernel's count.
  auto text = brig::sys::read_file("/proc/self/maps");
  REQUIRE(text);
  size_t lines = 0, parsed = 0;
  for (size_t i = 0; i < text->size();) {
    size_t nl = text->find('\n', i);
    ++lines;
    parsed += parse_maps_line(std::string_view(*text).substr(i, nl - i)).has_value();
    i = nl + 1;
  }
  CHECK(lines > 5);
  CHECK(parsed == lines);
}

TEST_CASE("await_go: waits for the go only when one is coming, else checks the parent", "[sync]") {
  using namespace brig::runtime;
  {
    auto p = make_sync_pair();
    REQUIRE(p);
    REQUIRE(send(p->parent, Msg::go));
    CHECK(await_go(p->child, true));
  }
  {
    auto p = make_sync_pair();
    REQUIRE(p);
    REQUIRE(send(p->parent, Msg::ready));
    auto r = await_go(p->child, true);
    REQUIRE_FALSE(r);
    CHECK(r.error().msg == "sync: unexpected message from parent");
  }
  {
    auto p = make_sync_pair();
    REQUIRE(p);
    CHECK(await_go(p->child, false));  // parent there, nothing sent: no wait
    p->parent.reset();
    auto r = await_go(p->child, false);
    REQUIRE_FALSE(r);
    CHECK(r.error().msg == "sync: the runtime is gone");
  }
}

TEST_CASE("run_program: input in, output and status out, no fd of ours, an empty signal mask", "[sys]") {
  // An fd of ours without O_CLOEXEC, and a blocked signal: neither may reach the program.
  int leak = ::open("/dev/null", O_RDONLY);
  REQUIRE(leak >= 0);
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &usr1, &old);
  auto r = sys::run_program({"sh", "-c",
                             "cat; ls /proc/self/fd | tr '\\n' ' ' >&2; grep SigBlk /proc/self/status >&2; exit 3"},
                            "in\n");
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ::close(leak);
  REQUIRE(r);
  CHECK(r->out == "in\n");
  CHECK(r->err == "0 1 2 3 SigBlk:\t0000000000000000\n");  // 3: ls's own directory
  CHECK_FALSE(r->ok());
  CHECK(r->exit_text() == "exit status 3");

  auto killed = sys::run_program({"sh", "-c", "kill -9 $$"});
  REQUIRE(killed);
  CHECK(killed->exit_text() == "signal: killed");  // Go's name, as runc prints it
  auto by_name = [](int sig) { return sys::Ran{.status = sig}.exit_text(); };  // as termsig N
  CHECK(by_name(SIGSEGV) == "signal: segmentation fault");
  CHECK(by_name(SIGTERM) == "signal: terminated");
  CHECK(by_name(SIGXCPU) == "signal: CPU time limit exceeded");
  CHECK(by_name(SIGIO) == "signal: I/O possible");
  CHECK(by_name(SIGRTMIN + 1) == fmt::format("signal: signal {}", SIGRTMIN + 1));
  auto ok = sys::run_program({"true"});
  REQUIRE(ok);
  CHECK(ok->ok());
  CHECK(ok->err.empty());
  CHECK_FALSE(sys::run_program(std::vector<std::string>{}));

  auto missing = sys::run_program({"brig-no-such-program"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().err == ENOENT);
  CHECK(missing.error().msg == "exec brig-no-such-program: no such file or directory");
}

TEST_CASE("run_program: a path run as given, an env of its own, a timeout, an output limit", "[sys]") {
  // path is not searched on PATH; argv[0] is only the name the program sees.
  auto named = sys::run_program(sys::Program{.argv = {"not-sh", "-c", "echo $0"}, .path = "/bin/sh"});
  REQUIRE(named);
  CHECK(named->out == "not-sh\n");
  CHECK_FALSE(named->timed_out);
  auto own_env = sys::run_program(sys::Program{.argv = {"env"}, .path = "/usr/bin/env", .env = std::vector<std::string>{"HOOKVAR=v"}});
  REQUIRE(own_env);
  CHECK(own_env->out == "HOOKVAR=v\n");
  auto no_env = sys::run_program(sys::Program{.argv = {"env"}, .path = "/usr/bin/env", .env = std::vector<std::string>{}});
  REQUIRE(no_env);
  CHECK(no_env->out.empty());
  auto relative = sys::run_program(sys::Program{.argv = {"sh"}, .path = "sh"});
  REQUIRE_FALSE(relative);
  CHECK(relative.error().msg == "exec sh: no such file or directory");
  // Without an env of its own, it has ours.
  ::setenv("BRIG_RUN_PROGRAM_TEST", "ours", 1);
  auto inherited = sys::run_program(sys::Program{.argv = {"sh", "-c", "echo $BRIG_RUN_PROGRAM_TEST"}});
  ::unsetenv("BRIG_RUN_PROGRAM_TEST");
  REQUIRE(inherited);
  CHECK(inherited->out == "ours\n");

  int64_t t0 = sys::monotonic_ms();
  auto slow = sys::run_program(sys::Program{.argv = {"sh", "-c", "echo begun; exec sleep 30"}, .timeout_ms = 200});
  REQUIRE(slow);
  CHECK(slow->timed_out);
  CHECK(slow->exit_text() == "signal: killed");
  CHECK(slow->out == "begun\n");
  CHECK(sys::monotonic_ms() - t0 < 10'000);
  auto quick = sys::run_program(sys::Program{.argv = {"true"}, .timeout_ms = 10'000});
  REQUIRE(quick);
  CHECK_FALSE(quick->timed_out);
  CHECK(quick->ok());

  // A child left running in the background with our stdout does not hold us up.
  t0 = sys::monotonic_ms();
  auto bg = sys::run_program(sys::Program{.argv = {"sh", "-c", "sleep 30 & echo $!"}});
  REQUIRE(bg);
  CHECK(sys::monotonic_ms() - t0 < 10'000);
  ::kill(std::stoi(bg->out), SIGKILL);

  auto chatty = sys::run_program(sys::Program{.argv = {"sh", "-c", "head -c 100000 /dev/zero; head -c 5 /dev/zero >&2"},
                                  .output_limit = 1000});
  REQUIRE(chatty);
  CHECK(chatty->out.size() == 1000);
  CHECK(chatty->err.size() == 5);
}
