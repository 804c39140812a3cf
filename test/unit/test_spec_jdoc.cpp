// spec::jdoc, the document spec/'s readers and the state file's reader use:
// it must take exactly the texts nlohmann takes, as the same documents.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "spec/config.hpp"
#include "spec/jdoc.hpp"
#include "test/unit/jdoc_diff.hpp"

using brig::spec::jdoc::Doc;
using brig::spec::jdoc::Node;
using brig::spec::jdoc::Type;
using brig::spec::test::jdoc_differs;
namespace jdoc = brig::spec::jdoc;

TEST_CASE("jdoc: the edges of JSON, as nlohmann takes them", "[spec][jdoc]") {
  const std::vector<std::string> texts = {
      "", " ", "{}", "[]", " [ ] ", "\t\r\n{}\n", "[1,]", "{\"a\":1,}", "[,1]", "{,}", "01", "-0", "-", "-a", "1.", ".5",
      "1e", "1e+", "1E-5", "1.5e3", "2.", "-01", "0.0e0", "18446744073709551615", "18446744073709551616",
      "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
      "123456789012345678901234567890", "-123456789012345678901234567890", "1e400", "-1e400", "1e-400",
      "4.4e24", "0x10", "+1", "Infinity", "NaN", "-Infinity", "[-]", "[1 2]", "1 2", "[1]x", "true", "false",
      "null", "tru", "nul", "falsey", "[true false]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{1:2}", "{\"a\"}",
      "{\"a\":}", "[[[[]]]]", "[[[[]]]", "[]]", "\"abc", "\"\"", "\"\\\"\"", "\"\\\\\"", "\"\\/\"", "\"\\x\"",
      "\"\\b\\f\\n\\r\\t\"", "\"a\nb\"", "\"\t\"", "\"\x7f\"", "\"\x1f\"", "\"\\u0000\"", "\"\\u0041\\u00e9\"",
      "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"", "\"\\ud800\\udc00\"", "\"\\udbff\\udfff\"", "\"\\udc00\"",
      "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\ud800\\\"", "\"\\uD83D\\uDE00\"", "\"\xc3\xa9\"", "\"\xc0\x80\"",
      "\"\xc1\xbf\"", "\"\xc2\x80\"", "\"\xe0\x80\x80\"", "\"\xe0\xa0\x80\"", "\"\xed\x9f\xbf\"", "\"\xed\xa0\x80\"",
      "\"\xee\x80\x80\"", "\"\xef\xbf\xbf\"", "\"\xf0\x8f\xbf\xbf\"", "\"\xf0\x90\x80\x80\"", "\"\xf4\x8f\xbf\xbf\"",
      "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\x80\"", "\"\xc3\"", "\"\xe2\x82\"",
      "\xef\xbb\xbf{}", "\xef\xbb\xbf", "\xef\xbb{}", "\xef{}", "{}\xef\xbb\xbf", "\xef\xbb\xbf\xef\xbb\xbf{}",
      "{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":null}", "{\"a\":null,\"a\":1}", "{\"\":0}", "{\"a\\u0000b\":1}",
      "[\"a\\nb\",\"c\\u00e9\",\"\\ud83d\\ude00\",{\"k\\\"\":[null,-1.25e-3,7]}]", "\xc3\xa9", "'a'", "[1,2,3", "/*c*/1",
  };
  for (const auto& t : texts) {
    INFO(t);
    CHECK(jdoc_differs(t).empty());
  }
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  CHECK(jdoc_differs(deep).empty());
  CHECK(jdoc_differs(deep.substr(1)).empty());
  CHECK(jdoc_differs(deep.substr(0, deep.size() - 1)).empty());
}

TEST_CASE("jdoc: random documents and their mutants, as nlohmann takes them", "[spec][jdoc]") {
  uint64_t seed = 20261206;
  auto next = [&seed] { return seed = seed * 6364136223846793005ULL + 1442695040888963407ULL, seed >> 33; };
  const std::vector<std::string> atoms = {"0", "-0", "7", "-12", "3.25", "1e3", "-2.5E-2", "18446744073709551615",
                                          "18446744073709551616", "-9223372036854775809", "true", "false", "null",
                                          "\"\"", "\"a\"", "\"\\u00e9\\n\"", "\"\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x82\xac\"",
                                          "\"\\\"\\\\\\/\"", "\"k\"", "\"\\u0000\""};
  const std::string noise = " \t\n\r{}[],:\"\\-+.0123456789eEtfnu\x01\x7f\x80\xbf\xc3\xe0\xed\xef\xf0\xf4\xff";
  auto gen = [&](auto& self, int depth) -> std::string {
    uint64_t r = next() % 10;
    if (depth > 5 || r < 5) return atoms[next() % atoms.size()];
    std::string s;
    bool obj = r < 8;
    s += obj ? '{' : '[';
    for (size_t n = next() % 5, i = 0; i < n; ++i) {
      if (i) s += next() % 7 ? "," : " , ";
      if (obj) s += atoms[13 + next() % 8].front() == '"' ? atoms[13 + next() % 8] + ":" : "\"x\":";
      s += self(self, depth + 1);
    }
    s += obj ? '}' : ']';
    return s;
  };
  size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string t = gen(gen, 0);
    for (size_t m = round % 4 == 0 ? 0 : next() % 3; m > 0 && !t.empty(); --m) {
      size_t at = next() % (t.size() + 1);
      switch (next() % 3) {
        case 0: t.insert(at, 1, noise[next() % noise.size()]); break;
        case 1: if (at < t.size()) t.erase(at, 1); break;
        default: if (at < t.size()) t[at] = noise[next() % noise.size()]; break;
      }
    }
    INFO(t);
    REQUIRE(jdoc_differs(t).empty());
    accepted += jdoc::parse(t) ? 1 : 0;
  }
  // Both kinds were tried, in numbers.
  CHECK(accepted > 5000);
  CHECK(accepted < 19000);
}

TEST_CASE("jdoc: nodes, members and source texts", "[spec][jdoc]") {
  auto d = jdoc::parse(" {\"a\" : [1, {\"b\":\"x\\ty\"}], \"n\":null, \"a\":true, \"s\":\"\\u00e9\"} ");
  REQUIRE(d);
  Doc moved = std::move(*d);  // the nodes point into what the Doc owns
  const Node& r = moved.root();
  CHECK(r.is_object());
  CHECK(r.size() == 4);
  CHECK(r.text() == "{\"a\" : [1, {\"b\":\"x\\ty\"}], \"n\":null, \"a\":true, \"s\":\"\\u00e9\"}");
  REQUIRE(r.find("a"));
  CHECK(r.find("a")->is_boolean());  // the last of two
  CHECK(r.find("n") == nullptr);     // null is absent to find()
  REQUIRE(r.member("n"));
  CHECK(r.member("n")->is_null());
  CHECK(r.find("s")->str() == "\xc3\xa9");
  CHECK(r.find("s")->text() == "\"\\u00e9\"");
  std::vector<std::string> keys;
  r.for_each_member([&](const Node::Member& m) { keys.emplace_back(m.key); });
  CHECK(keys == std::vector<std::string>{"a", "n", "a", "s"});
  const Node* arr = r.member("a");
  REQUIRE(arr);
  // member() is the last too: the first "a" is found by walking.
  const Node* first = nullptr;
  r.for_each_member([&](const Node::Member& m) {
    if (!first && m.key == "a") first = &m.value;
  });
  REQUIRE(first);
  CHECK(first->is_array());
  CHECK(first->text() == "[1, {\"b\":\"x\\ty\"}]");
  std::vector<Type> types;
  for (const Node& e : first->elements()) types.push_back(e.type());
  CHECK(types == std::vector<Type>{Type::number_unsigned, Type::object});
  CHECK(first->next()->str() == "n");  // after the array: the next member's key
}

TEST_CASE("jdoc: errors are nlohmann's words", "[spec][jdoc]") {
  auto e = jdoc::parse("{\n  \"a\": tru }");
  REQUIRE_FALSE(e);
  CHECK_THAT(e.error().msg, Catch::StartsWith("invalid JSON: parse error at line 2, column"));
  CHECK(jdoc::parse("[1e400]").error().msg == "invalid JSON: number overflow parsing '1e400'");
  CHECK(jdoc::parse(std::string_view("[1,\0]", 5)).error().msg == "invalid JSON: a NUL byte at offset 3");
}

TEST_CASE("config: duplicate keys, the last one counts as before", "[spec][config][jdoc]") {
  auto c = brig::spec::parse_config(
      R"({"ociVersion":"1.0.0","root":{"path":7},"root":{"path":"rootfs"},"hostname":"a","hostname":"b",)"
      R"("annotations":{"k":1,"k":"v","a":"x"}})");
  REQUIRE(c);
  CHECK(c->root.path == "rootfs");
  CHECK(c->hostname == "b");
  CHECK(c->annotations == std::map<std::string, std::string>{{"a", "x"}, {"k", "v"}});
  // Members of a map are read in key order: the first error is the smallest key's.
  auto bad = brig::spec::parse_config(R"({"ociVersion":"1.0.0","annotations":{"z":1,"b":2}})");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg == "annotations.b: must be a string");
}

TEST_CASE("jdoc: a document made in code with bytes that are not UTF-8 is read, not thrown", "[spec][jdoc]") {
  nlohmann::json doc = {{"ociVersion", "1.0.0"},
                        {"root", {{"path", "rootfs"}}},
                        {"linux", {{"resources", {{"cpu", {{"cpus", "\xff"}}}}}}}};
  auto c = brig::spec::parse_config(doc);
  REQUIRE(c);
  CHECK(c->linux->resources->cpu->cpus == "\xef\xbf\xbd");
  CHECK(jdoc::dump_of(nlohmann::json("a\xff" "b")) == "\"a\xef\xbf\xbd" "b\"");
}
