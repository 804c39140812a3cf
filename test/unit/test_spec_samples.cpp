// The runtime-spec's own good/bad samples (schema/test), copied to test/data.
#include <catch2/catch.hpp>

#include "spec/config.hpp"
#include "spec/features.hpp"
#include "spec/state.hpp"
#include "test_spec_util.hpp"

using namespace brig::spec;
namespace fs = std::filesystem;

static std::vector<fs::path> files(const std::string& sub) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(test::samples_dir() / sub)) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

TEST_CASE("spec samples: every good config parses", "[spec][samples]") {
  auto good = files("config/good");
  REQUIRE(good.size() >= 9);
  for (const auto& p : good) {
    INFO(p.filename().string());
    auto r = parse_config(test::slurp(p));
    if (!r) INFO(r.error().msg);
    CHECK(r.has_value());
  }
}

TEST_CASE("spec samples: every bad config is rejected naming the field", "[spec][samples]") {
  const std::map<std::string, std::string> expect = {
      {"freebsd-vnet-disable.json", "freebsd.jail.vnet: \"disable\" is not one of: new, inherit"},
      {"invalid-json.json", "invalid JSON: parse error at line 1, column 2"},
      {"linux-hugepage.json",
       "linux.resources.hugepageLimits[0].pageSize: \"64kB\" does not match ^[1-9][0-9]*[KMG]B$"},
      {"linux-netdevice.json", "linux.netDevices.eth0.name: must be a string"},
      {"linux-rdma.json", "linux.resources.rdma.mlx5_1.hcaHandles: must be an unsigned 32-bit integer"},
  };
  auto bad = files("config/bad");
  REQUIRE(bad.size() == expect.size());
  for (const auto& p : bad) {
    INFO(p.filename().string());
    auto r = parse_config(test::slurp(p));
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().msg, Catch::StartsWith(expect.at(p.filename().string())));
    CHECK(r.error().msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("spec samples: state", "[spec][samples]") {
  for (const auto& p : files("state/good")) {
    INFO(p.filename().string());
    auto r = parse_state(test::slurp(p));
    REQUIRE(r.has_value());
  }
  auto s = parse_state(test::slurp(test::samples_dir() / "state/good/spec-example.json"));
  REQUIRE(s);
  CHECK(s->id == "oci-container1");
  CHECK(s->status == "running");
  CHECK(s->pid == 4422);
  CHECK(s->bundle == "/containers/redis");
  CHECK(s->annotations.at("myKey") == "myValue");
  for (const auto& p : files("state/bad")) {
    INFO(p.filename().string());
    auto r = parse_state(test::slurp(p));
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().msg, Catch::StartsWith("invalid JSON: "));
  }
}

TEST_CASE("spec samples: features", "[spec][samples]") {
  for (const auto& p : files("features/good")) {
    INFO(p.filename().string());
    auto r = parse_features(test::slurp(p));
    if (!r) INFO(r.error().msg);
    CHECK(r.has_value());
  }
  auto runc = parse_features(test::slurp(test::samples_dir() / "features/good/runc.json"));
  REQUIRE(runc);
  CHECK(runc->ociVersionMax == "1.0.2-dev");
  REQUIRE(runc->linux);
  CHECK(runc->linux->cgroup->systemd == true);
  CHECK_FALSE(runc->linux->cgroup->rdma.has_value());
  CHECK(runc->annotations.at("org.opencontainers.runc.version") == "1.1.0+dev");
  auto bad = parse_features(test::slurp(test::samples_dir() / "features/bad/missing-ociVersionMax.json"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().msg == "ociVersionMax: must be set");
}
