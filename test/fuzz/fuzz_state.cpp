// state.json: the OCI state (spec::parse_state, what hooks and callers read)
// and brig's own state record (runtime::record_from_text, read by every
// command from ROOT/ID/state.json, which may be truncated or corrupt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/state.hpp"
#include "spec/state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto s = brig::spec::parse_state(text)) {
    // What brig prints for `state` parses back.
    if (!brig::spec::parse_state(brig::spec::state_json_pretty(*s))) std::abort();
  }
  if (auto r = brig::runtime::record_from_text(text)) {
    // What brig writes back (state_text) reads back the same, config included.
    auto back = brig::runtime::record_from_text(brig::runtime::state_text(*r));
    if (!back || back->id != r->id || back->pid != r->pid || back->config != r->config ||
        back->annotations != r->annotations)
      std::abort();
  }
  return 0;
}
