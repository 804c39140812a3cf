// A read-only JSON document for spec/'s typed reader: the whole text parsed
// once into one flat array of nodes, each container followed by its children,
// strings viewing the text itself unless they hold escapes.
//
// It accepts exactly the RFC 8259 texts nlohmann::json::parse accepts (a UTF-8
// byte order mark first, UTF-8 checked inside strings, surrogate pairs, no
// depth limit), with the same numbers: an integer without '-' is unsigned
// when it fits 64 bits, one with '-' signed when it fits, any other a double;
// a double that overflows is an error. A duplicate key is kept in the array;
// find() and the readers take the last one, as nlohmann does. The fuzz target
// fuzz_jdoc checks the two against each other.
//
// Why not nlohmann's document: for runc's default config, its parse (a
// std::map and a heap string per member) and its free were a third of brig's
// own instructions in a `run` (contrib/bench/README.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/core/error.hpp"

namespace brig::spec::jdoc {

enum class Type : uint8_t { null, boolean, number_integer, number_unsigned, number_float, string, array, object };

class Node {
 public:
  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_boolean() const { return type_ == Type::boolean; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }
  // As nlohmann: "integer" is either integer type, "unsigned" only the unsigned one.
  bool is_number_integer() const { return type_ == Type::number_integer || type_ == Type::number_unsigned; }
  bool is_number_unsigned() const { return type_ == Type::number_unsigned; }
  bool is_number() const { return is_number_integer() || type_ == Type::number_float; }

  bool boolean() const { return u_.b; }
  int64_t i64() const { return u_.i; }
  uint64_t u64() const { return u_.u; }
  double f64() const { return u_.d; }
  std::string_view str() const { return {s_, n_}; }

  // Elements of an array, members of an object (duplicates included).
  size_t size() const { return is_array() || is_object() ? n_ : 0; }
  // The node after this one's subtree.
  const Node* next() const { return this + span_; }
  // The JSON text this value was parsed from (its source, unchanged).
  std::string_view text() const { return src_; }

  // Children in order: for an array its elements, for an object each
  // member's key (a string node) and its value in turn.
  struct Iter {
    const Node* p;
    const Node& operator*() const { return *p; }
    Iter& operator++() {
      p = p->next();
      return *this;
    }
    bool operator!=(const Iter& o) const { return p != o.p; }
  };
  struct Range {
    const Node* b;
    const Node* e;
    Iter begin() const { return {b}; }
    Iter end() const { return {e}; }
  };
  Range elements() const { return {this + 1, next()}; }

  struct Member {
    std::string_view key;
    const Node& value;
  };
  template <class F>
  void for_each_member(F&& f) const {
    for (const Node* k = this + 1; k != next(); k = (k + 1)->next()) f(Member{k->str(), *(k + 1)});
  }
  // The last member named `key`, null or not, or nullptr.
  const Node* member(std::string_view key) const {
    const Node* found = nullptr;
    if (!is_object()) return nullptr;
    for (const Node* k = this + 1; k != next(); k = (k + 1)->next())
      if (k->str() == key) found = k + 1;
    return found;
  }
  // The same, but null counts as absent (as in Go's decoder).
  const Node* find(std::string_view key) const {
    const Node* v = member(key);
    return v && !v->is_null() ? v : nullptr;
  }

 private:
  friend class Parser;
  Type type_ = Type::null;
  uint32_t span_ = 1;  // nodes in this subtree, itself included
  uint32_t n_ = 0;     // string length, or children (array elements / object members)
  const char* s_ = nullptr;
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
  } u_{};
  std::string_view src_;
};

// A parsed text: its nodes, and what they point into. Moving it keeps them valid.
class Doc {
 public:
  const Node& root() const { return nodes_.front(); }

 private:
  friend class Parser;
  std::unique_ptr<char[]> text_;      // a copy of the text
  std::unique_ptr<char[]> decoded_;   // strings with escapes, decoded
  std::vector<Node> nodes_;
};

// Parses `text`, or fails with nlohmann's words for why it is not JSON
// ("invalid JSON: parse error at line 1, column 2: ...").
Result<Doc> parse(std::string_view text);

// A document made in code, as text to parse: bytes that are not UTF-8 (a
// flag's value, say) become U+FFFD rather than an exception.
std::string dump_of(const nlohmann::json& doc);

}  // namespace brig::spec::jdoc
