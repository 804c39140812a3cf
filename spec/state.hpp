// The container state (runtime.md "State"), plus runc's extra fields, and the
// exact JSON runc prints for `runc state` / `runc list --format json`.
#pragma once

#include <concepts>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"

namespace brig::spec {

struct State {
  std::string ociVersion, id, status;  // creating | created | running | stopped (| paused, runc)
  int pid = 0;
  std::string bundle;
  std::map<std::string, std::string> annotations;
  // runc extras
  std::string rootfs, created, owner;
};

// Keys in runc's order: ociVersion id pid status bundle rootfs created
// [annotations, only when non-empty] owner.
nlohmann::ordered_json to_json(const State&);
// `runc state`: 2-space indent, no trailing newline, Go's escaping (<>& as \u003c...).
std::string state_json_pretty(const State&);
// One line, same keys (an element of `runc list --format json`), with Go's
// escaping; also a hook's stdin, which from runc has only the OCI fields
// (no rootfs, created, owner).
std::string state_json_compact(const State&);

// Validates per state-schema.json (ociVersion, id, status, bundle required).
Result<State> parse_state(std::string_view json_text);
Result<State> parse_state_json(const nlohmann::json& doc);
// A template so that strings never convert to json: only a json document lands here.
template <class J>
  requires std::same_as<J, nlohmann::json>
Result<State> parse_state(const J& doc) {
  return parse_state_json(doc);
}

// Go's encoding/json output style for any document: HTML-safe escaping of
// < > & and U+2028/U+2029, invalid UTF-8 replaced. indent < 0 = compact.
std::string go_json_dump(const nlohmann::ordered_json& j, int indent = -1);

}  // namespace brig::spec
