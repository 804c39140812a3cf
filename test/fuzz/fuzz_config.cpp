// config.json: parse + validate (spec::parse_config). A config that parses
// must survive the way back to JSON and parse again to the same document.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "spec/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = brig::spec::parse_config(text);
  if (!cfg) {
    if (cfg.error().msg.empty()) std::abort();  // every error names what is wrong
    return 0;
  }
  // The raw document is what brig stores in state.json and parses again in
  // start/exec/delete: it must parse the same way the second time.
  auto again = brig::spec::parse_config(cfg->raw);
  if (!again) std::abort();
  return 0;
}
