// Helpers shared by the spec/ unit tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace brig::spec::test {

// test/data/oci-samples, found from this file's location (CI has no ../shared).
inline std::filesystem::path samples_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / "oci-samples";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A small valid Linux config to mutate in tests.
inline nlohmann::json base_config() {
  return nlohmann::json::parse(R"({
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
  })");
}

}  // namespace brig::spec::test
