#include <catch2/catch.hpp>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "cmd/units.hpp"

#include <regex>

using brig::cli::Flag;
using brig::cli::parse;

namespace {
const std::vector<Flag> kFlags = {
    {{"bundle", "b"}, true, "bundle", ""},
    {{"detach", "d"}, false, "detach", ""},
    {{"env", "e"}, true, "env", "", true},
};
std::vector<std::string> v(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }
}  // namespace

TEST_CASE("flags take one or two dashes, =value or a separate value", "[cli]") {
  for (auto args : {v({"-b", "/x", "id"}), v({"--bundle", "/x", "id"}), v({"--bundle=/x", "id"}), v({"-b=/x", "id"})}) {
    auto p = parse(kFlags, args, true);
    REQUIRE(p);
    CHECK(p->get("bundle") == "/x");
    CHECK(p->args == v({"id"}));
  }
}

TEST_CASE("flags after positional arguments are reordered like urfave/cli", "[cli]") {
  auto p = parse(kFlags, v({"id", "-d", "--bundle", "/b"}), true);
  REQUIRE(p);
  CHECK(p->flag("detach"));
  CHECK(p->get("bundle") == "/b");
  CHECK(p->args == v({"id"}));
}

TEST_CASE("pass-through commands stop at the first positional argument", "[cli]") {
  auto p = parse(kFlags, v({"-d", "id", "sh", "-c", "echo -d"}), false);
  REQUIRE(p);
  CHECK(p->flag("detach"));
  CHECK(p->args == v({"id", "sh", "-c", "echo -d"}));
}

TEST_CASE("-- ends the flags", "[cli]") {
  auto p = parse(kFlags, v({"id", "--", "-d"}), true);
  REQUIRE(p);
  CHECK_FALSE(p->flag("detach"));
  CHECK(p->args == v({"id", "-d"}));
}

TEST_CASE("boolean flags accept =true/=false", "[cli]") {
  auto p = parse(kFlags, v({"--detach=false"}), true);
  REQUIRE(p);
  CHECK(p->has("detach"));
  CHECK_FALSE(p->flag("detach"));
  auto bad = parse(kFlags, v({"--detach=maybe"}), true);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg == "invalid boolean value \"maybe\" for -detach");
}

TEST_CASE("repeatable flags keep every value; others keep the last", "[cli]") {
  auto p = parse(kFlags, v({"-e", "A=1", "--env", "B=2", "-b", "x", "-b", "y"}), true);
  REQUIRE(p);
  CHECK(p->all("env") == v({"A=1", "B=2"}));
  CHECK(p->get("bundle") == "y");
}

TEST_CASE("unknown flags and missing values are errors worded as Go's flag package", "[cli]") {
  auto u = parse(kFlags, v({"--bogus"}), true);
  REQUIRE_FALSE(u);
  CHECK(u.error().msg == "flag provided but not defined: -bogus");
  auto m = parse(kFlags, v({"id", "--bundle"}), true);
  REQUIRE_FALSE(m);
  CHECK(m.error().msg == "flag needs an argument: -bundle");
}

TEST_CASE("arity messages match runc's", "[cli]") {
  brig::cli::Command exact{.name = "run", .min_args = 1, .max_args = 1};
  CHECK(*brig::cli::check_arity(exact, 0) == "\"run\" requires exactly 1 argument(s)");
  CHECK_FALSE(brig::cli::check_arity(exact, 1));
  brig::cli::Command range{.name = "kill", .min_args = 1, .max_args = 2};
  CHECK(*brig::cli::check_arity(range, 0) == "\"kill\" requires a minimum of 1 argument(s)");
  CHECK(*brig::cli::check_arity(range, 3) == "\"kill\" requires a maximum of 2 argument(s)");
  brig::cli::Command none{.name = "list", .min_args = 0, .max_args = 0};
  CHECK(*brig::cli::check_arity(none, 1) == "\"list\" requires exactly 0 argument(s)");
}

TEST_CASE("every runc command of the skeleton is registered with help", "[cli]") {
  for (const char* name : {"create", "start", "run", "kill", "delete", "state", "list", "spec"}) {
    auto& all = brig::cli::commands();
    auto it = std::find_if(all.begin(), all.end(), [&](auto& c) { return c.name == name; });
    REQUIRE(it != all.end());
    std::string h = brig::cli::command_help(*it);
    CHECK(h.find(std::string("brig ") + name) != std::string::npos);
  }
}

TEST_CASE("the registry's names are the commands' own, and lookup makes the one named", "[cli]") {
  // Commands are made lazily from the registry: an entry's name and aliases
  // must be those of the command its function makes.
  REQUIRE(brig::cli::registry().size() == brig::cli::commands().size());
  for (const auto& e : brig::cli::registry()) {
    auto c = e.make();
    CHECK(c.name == e.name);
    REQUIRE(c.aliases.size() == e.aliases.size());
    for (size_t i = 0; i < c.aliases.size(); ++i) CHECK(c.aliases[i] == e.aliases[i]);
  }
  auto ls = brig::cli::find_command("ls");
  REQUIRE(ls);
  CHECK(ls->name == "list");
  REQUIRE(brig::cli::find_command("run"));
  CHECK(brig::cli::find_command("run")->name == "run");
  CHECK_FALSE(brig::cli::find_command("checkpoint"));
  CHECK_FALSE(brig::cli::find_command(""));
}

TEST_CASE("delete --regex matches ids like crun: POSIX extended, unanchored", "[cli]") {
  std::vector<std::string> ids = {"xab1", "ab2", "zz3", "pod-a.b"};
  CHECK(*brig::cmd::match_ids("ab", ids) == std::vector<std::string>{"xab1", "ab2"});
  CHECK(*brig::cmd::match_ids("^zz", ids) == std::vector<std::string>{"zz3"});
  CHECK(*brig::cmd::match_ids("a\\.b$", ids) == std::vector<std::string>{"pod-a.b"});
  CHECK(*brig::cmd::match_ids("^(xa|z+)[b3]", ids) == std::vector<std::string>{"xab1", "zz3"});
  CHECK(brig::cmd::match_ids("nomatch", ids)->empty());
  auto bad = brig::cmd::match_ids("(", ids);
  REQUIRE(!bad);
  CHECK(bad.error().msg.starts_with("invalid regex \"(\": "));
}

TEST_CASE("--preserve-fds above the open files limit is refused", "[cli]") {
  const std::vector<Flag> flags = {{{"preserve-fds"}, true, "", ""}};
  auto p = parse(flags, v({"--preserve-fds", "2147483000", "id"}), true);
  REQUIRE(p);
  auto r = brig::cmd::preserve_fds(*p);
  REQUIRE_FALSE(r);
  CHECK(r.error().msg.find("above the open files limit") != std::string::npos);
  auto q = parse(flags, v({"--preserve-fds", "0", "id"}), true);
  REQUIRE(q);
  CHECK(brig::cmd::preserve_fds(*q).value_or(-1) == 0);
}

TEST_CASE("sizes and durations parse by hand as docker's and Go's syntax, long ones too", "[cli]") {
  using brig::cmd::parse_duration_ms;
  using brig::cmd::ram_in_bytes;
  CHECK(*ram_in_bytes("512") == 512);
  CHECK(*ram_in_bytes("64m") == 64 << 20);
  CHECK(*ram_in_bytes("1.5G") == 3LL << 29);
  CHECK(*ram_in_bytes("100MiB") == 100LL << 20);
  CHECK(*ram_in_bytes("2 kb") == 2048);
  CHECK_FALSE(ram_in_bytes("1.2.3"));  // docker's regex allows it, its float parse does not
  CHECK(ram_in_bytes("abc").error().msg == "invalid size: 'abc'");
  CHECK_FALSE(ram_in_bytes("99999999999999999999999"));  // past int64: no undefined cast
  CHECK_FALSE(ram_in_bytes("8E"));
  CHECK(*ram_in_bytes("7p") == 7LL << 50);
  CHECK_FALSE(ram_in_bytes("8192p"));
  CHECK_FALSE(ram_in_bytes(std::string(100000, '1')));  // was a stack overflow in std::regex
  CHECK(*parse_duration_ms("5s") == 5000);
  CHECK(*parse_duration_ms("500ms") == 500);
  CHECK(*parse_duration_ms("1m30s") == 90000);
  CHECK(*parse_duration_ms("1.5s") == 1500);
  CHECK(*parse_duration_ms(".5h") == 1800000);
  CHECK(*parse_duration_ms("0") == 0);
  CHECK(*parse_duration_ms("2000000us") == 2000);
  CHECK(*parse_duration_ms("3000000\xc2\xb5s") == 3000);
  CHECK(parse_duration_ms("5").error().msg == "time: invalid duration \"5\"");
  CHECK_FALSE(parse_duration_ms(""));
  CHECK_FALSE(parse_duration_ms("1e3s"));
  CHECK_FALSE(parse_duration_ms(std::string(60000, '1') + "ns"));  // past int64, no overflow
  // Go's arithmetic: integer nanoseconds, the fraction scaled into the unit.
  CHECK(*parse_duration_ms("1.001s") == 1001);
  CHECK(*parse_duration_ms("1.005s") == 1005);
  CHECK(*parse_duration_ms("+5s") == 5000);
  CHECK(*parse_duration_ms("-1m") == -60000);
  CHECK(*parse_duration_ms("-0") == 0);
  CHECK(*parse_duration_ms("4000000\xce\xbcs") == 4000);  // Greek mu, U+03BC
  CHECK(*parse_duration_ms("2562047h") == 2562047LL * 3600000);
  CHECK_FALSE(parse_duration_ms("2562048h"));  // 2^63 ns is the limit
  CHECK_FALSE(parse_duration_ms("3000000h"));
  CHECK(*parse_duration_ms("1.s") == 1000);
  CHECK_FALSE(parse_duration_ms(".s"));
  CHECK_FALSE(parse_duration_ms("1"));
  CHECK_FALSE(parse_duration_ms("1x"));
  CHECK(*parse_duration_ms("600h") == 600LL * 3600000);  // past INT_MAX ms: events takes it whole
  // The old regexes as oracles, on every string of up to 5 characters from
  // alphabets that reach each branch (the duration one matched part by part).
  const std::regex ram(R"(^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$)");  // one '.': what the float parse takes
  const std::regex part(R"((\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h))");
  auto old_duration_ok = [&](const std::string& s) {
    if (s == "0") return true;
    if (s.empty()) return false;
    size_t pos = 0;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), part); it != std::sregex_iterator(); ++it) {
      if (static_cast<size_t>(it->position()) != pos) return false;
      pos += static_cast<size_t>(it->length());
    }
    return pos == s.size();
  };
  for (const std::string alphabet : {"10. kKmiIbBpx", "1.0nusmh"}) {  // no value here reaches 2^63
    std::vector<std::string> all = {""};
    for (size_t b = 0; b < all.size(); ++b) {
      if (all[b].size() < 5)
        for (char c : alphabet) all.push_back(all[b] + c);
      const std::string& s = all[b];
      INFO(s);
      CHECK(static_cast<bool>(ram_in_bytes(s)) == std::regex_match(s, ram));
      CHECK(static_cast<bool>(parse_duration_ms(s)) == old_duration_ok(s));
    }
  }
}
