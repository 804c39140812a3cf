// spec::jdoc, brig's JSON reader (config.json, process.json, state.json),
// against nlohmann::json: both accept or both refuse every input, and an
// accepted one is the same document to both (jdoc_diff.hpp).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "test/unit/jdoc_diff.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why = brig::spec::test::jdoc_differs(text);
  if (!why.empty()) {
    std::fprintf(stderr, "jdoc and nlohmann disagree: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
