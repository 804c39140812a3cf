// process.json for `exec --process`: parse + validate (spec::parse_process).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spec/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = brig::spec::parse_process(text);
  if (!p) {
    if (p.error().msg.empty()) std::abort();
    return 0;
  }
  // A valid process validates again (validate is what exec calls on the merge).
  if (!brig::spec::validate(*p, "process")) std::abort();
  return 0;
}
