// spec::jdoc against nlohmann::json on one text: both accept it or both
// refuse it, and an accepted text is the same document to both (types,
// numbers bit for bit, strings byte for byte, the last of duplicate keys).
// Shared by the unit tests and fuzz_jdoc. No recursion: depth is the input's.
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "spec/jdoc.hpp"

namespace brig::spec::test {

// Empty when the two agree, else what differs.
inline std::string jdoc_differs(std::string_view text) {
  using spec::jdoc::Node;
  using spec::jdoc::Type;
  auto mine = spec::jdoc::parse(text);
  nlohmann::json theirs;
  bool ok = true;
  std::string why;
  try {
    theirs = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    ok = false;
    why = e.what();
  }
  // nlohmann stops at a NUL; jdoc refuses any (as brig always did before it).
  if (text.find('\0') != std::string_view::npos) return mine ? "a text with a NUL accepted" : "";
  if (!ok) return mine ? "accepted what nlohmann refuses: " + why : "";
  if (!mine) return "refused what nlohmann accepts: " + mine.error().msg;
  if (mine->root().text().data() == nullptr) return "no source text";

  // The pairs of values still to compare (an explicit stack: no recursion).
  std::vector<std::pair<const Node*, const nlohmann::json*>> pending{{&mine->root(), &theirs}};
  while (!pending.empty()) {
    auto [a, b] = pending.back();
    pending.pop_back();
    // Each value's source text is the value alone, no whitespace around it.
    std::string_view src = a->text();
    if (src.empty()) return "empty source text";
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    if (ws(src.front()) || ws(src.back())) return "source text with whitespace around it";
    if ((a->is_object() && (src.front() != '{' || src.back() != '}')) ||
        (a->is_array() && (src.front() != '[' || src.back() != ']')) ||
        (a->is_number() && src.front() != '-' && (src.front() < '0' || src.front() > '9')))
      return "source text of another value";
    switch (a->type()) {
      case Type::null:
        if (!b->is_null()) return "null";
        break;
      case Type::boolean:
        if (!b->is_boolean() || b->get<bool>() != a->boolean()) return "boolean";
        break;
      case Type::number_unsigned:
        if (!b->is_number_unsigned() || b->get<uint64_t>() != a->u64()) return "unsigned";
        break;
      case Type::number_integer:
        if (!b->is_number_integer() || b->is_number_unsigned() || b->get<int64_t>() != a->i64()) return "integer";
        break;
      case Type::number_float: {
        if (!b->is_number_float()) return "float type";
        double x = b->get<double>(), y = a->f64();
        if (std::memcmp(&x, &y, sizeof x) != 0) return "float value";
        break;
      }
      case Type::string:
        if (!b->is_string() || b->get_ref<const std::string&>() != a->str()) return "string";
        if (a->text().front() != '"' || a->text().back() != '"') return "string source";
        break;
      case Type::array: {
        if (!b->is_array() || b->size() != a->size()) return "array size";
        size_t i = 0;
        for (const Node& e : a->elements()) pending.emplace_back(&e, &(*b)[i++]);
        if (i != a->size()) return "array elements";
        break;
      }
      case Type::object: {
        if (!b->is_object()) return "object type";
        std::map<std::string_view, const Node*> last;
        size_t n = 0;
        a->for_each_member([&](const Node::Member& m) {
          last[m.key] = &m.value;
          ++n;
        });
        if (n != a->size()) return "object members";
        if (last.size() != b->size()) return "object size";
        for (auto [k, v] : last) {
          auto it = b->find(std::string(k));
          if (it == b->end()) return "object key";
          if (a->find(k) != (v->is_null() ? nullptr : v)) return "find";
          pending.emplace_back(v, &*it);
        }
        break;
      }
    }
  }
  return "";
}

}  // namespace brig::spec::test
