#include "spec/state.hpp"

#include "spec/json_reader.hpp"

namespace brig::spec {

std::string go_json_dump(const nlohmann::ordered_json& j, int indent) {
  std::string s = j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  // '<', '>', '&' and U+2028/2029 can only occur inside strings in JSON text.
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xe2' && i + 2 < s.size() && s[i + 1] == '\x80' && (s[i + 2] == '\xa8' || s[i + 2] == '\xa9')) {
      out += s[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else out += c;
  }
  return out;
}

nlohmann::ordered_json to_json(const State& s) {
  nlohmann::ordered_json j;
  j["ociVersion"] = s.ociVersion;
  j["id"] = s.id;
  j["pid"] = s.pid;
  j["status"] = s.status;
  j["bundle"] = s.bundle;
  j["rootfs"] = s.rootfs;
  j["created"] = s.created;
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  j["owner"] = s.owner;
  return j;
}

std::string state_json_pretty(const State& s) { return go_json_dump(to_json(s), 2); }
std::string state_json_compact(const State& s) { return go_json_dump(to_json(s)); }

static Result<State> read_state(const jr::json& doc) {
  return jr::guarded([&] {
    State s;
    jr::Obj o(doc, "");
    o.req("ociVersion", s.ociVersion);
    o.req("id", s.id);
    o.req("status", s.status);
    o.opt("pid", s.pid);
    o.req("bundle", s.bundle);
    o.opt("annotations", s.annotations);
    o.opt("rootfs", s.rootfs);
    o.opt("created", s.created);
    o.opt("owner", s.owner);
    if (s.pid < 0) jr::fail_at("pid", "must not be negative");
    for (std::string_view st : {"creating", "created", "running", "stopped", "paused"})
      if (s.status == st) return s;
    jr::fail_at("status", fmt::format("\"{}\" is not one of: creating, created, running, stopped, paused", s.status));
  });
}

Result<State> parse_state(std::string_view json_text) {
  TRY(jdoc::Doc doc, jdoc::parse(json_text));
  return read_state(doc.root());
}

Result<State> parse_state_json(const nlohmann::json& doc) { return parse_state(jdoc::dump_of(doc)); }

}  // namespace brig::spec
