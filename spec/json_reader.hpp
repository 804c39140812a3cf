// Internal to spec/: a small typed JSON reader that knows the JSON path of what
// it reads, so every type error names the field ("linux.devices[2].major: must
// be a 64-bit integer"). It reads a spec::jdoc document (jdoc::parse). It
// throws ReadError internally; the public functions catch it and return
// Result. JSON null counts as absent (as in Go's decoder).
#pragma once

#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"
#include "spec/jdoc.hpp"

namespace brig::spec::jr {

using json = jdoc::Node;

struct ReadError {
  std::string msg;
};

// "a.b" / "a[3]" / a["key.with.dots"]
inline std::string member(std::string_view base, std::string_view key) {
  bool plain = !key.empty();
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) plain = false;
  if (!plain) return fmt::format("{}[{}]", base, nlohmann::json(std::string(key)).dump());
  return base.empty() ? std::string(key) : fmt::format("{}.{}", base, key);
}
inline std::string index(std::string_view base, size_t i) { return fmt::format("{}[{}]", base, i); }

// Where a value sits in the document: a fixed text ("" for the document
// itself, or "process"), or a member or an element of another Path, which it
// points to. The text ("linux.devices[2].major") is made only when an error
// names it: made for every value read, the texts were two thirds of the typed
// reader's instructions (callgrind, runc's default config).
// A Path points at its parent, so it is derived only from a Path that lives
// on (a parameter, a local, an Obj's own): key() and at() of a temporary do
// not compile. Its views (the text, a key) must outlive it too; keys come
// from literals or from the document being read.
class Path {
 public:
  Path() = default;
  Path(const char* text) : text_(text) {}               // NOLINT: a literal is a path
  Path(std::string_view text) : text_(text) {}          // NOLINT
  Path(const std::string& text) : text_(text) {}        // NOLINT

  Path key(std::string_view k) const& {
    Path p;
    p.up_ = this;
    p.kind_ = Kind::key;
    p.text_ = k;
    return p;
  }
  Path at(size_t i) const& {
    Path p;
    p.up_ = this;
    p.kind_ = Kind::index;
    p.index_ = i;
    return p;
  }
  Path key(std::string_view) const&& = delete;
  Path at(size_t) const&& = delete;

  bool empty() const { return kind_ == Kind::text && text_.empty(); }
  std::string str() const {
    switch (kind_) {
      case Kind::key: return member(up_->str(), text_);
      case Kind::index: return index(up_->str(), index_);
      case Kind::text: break;
    }
    return std::string(text_);
  }

 private:
  enum class Kind { text, key, index };
  const Path* up_ = nullptr;
  Kind kind_ = Kind::text;
  std::string_view text_;  // the text, or the member's key
  size_t index_ = 0;
};

[[noreturn]] inline void fail_at(const Path& path, std::string_view why) {
  std::string p = path.str();
  throw ReadError{p.empty() ? std::string(why) : fmt::format("{}: {}", p, why)};
}

// ---- scalars -------------------------------------------------------------

inline void read(const json& j, const Path& p, std::string& out) {
  if (!j.is_string()) fail_at(p, "must be a string");
  out = j.str();
  // A C string ends at the first NUL: "/tmp\0/x" would reach a syscall as "/tmp".
  if (out.find('\0') != std::string::npos) fail_at(p, "must not contain a NUL byte");
}
inline void read(const json& j, const Path& p, bool& out) {
  if (!j.is_boolean()) fail_at(p, "must be a boolean");
  out = j.boolean();
}

template <class T>
inline const char* int_name() {
  if constexpr (std::is_same_v<T, uint64_t>) return "an unsigned 64-bit integer";
  else if constexpr (std::is_same_v<T, uint32_t>) return "an unsigned 32-bit integer";
  else if constexpr (std::is_same_v<T, uint16_t>) return "an unsigned 16-bit integer";
  else if constexpr (std::is_same_v<T, uint8_t>) return "an unsigned 8-bit integer";
  else if constexpr (std::is_same_v<T, int64_t>) return "a 64-bit integer";
  else return "a 32-bit integer";
}

template <class T>
  requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
inline void read(const json& j, const Path& p, T& out) {
  bool ok = false;
  if (j.is_number_unsigned()) {
    uint64_t v = j.u64();
    ok = v <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (ok) out = static_cast<T>(v);
  } else if (j.is_number_integer()) {
    int64_t v = j.i64();
    if constexpr (std::is_signed_v<T>)
      ok = v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           v <= static_cast<int64_t>(std::numeric_limits<T>::max());
    else
      ok = v >= 0 && static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (ok) out = static_cast<T>(v);
  }
  if (!ok) fail_at(p, fmt::format("must be {}", int_name<T>()));
}

// ---- containers ----------------------------------------------------------

template <class T>
void read(const json& j, const Path& p, std::vector<T>& out);
template <class T>
void read(const json& j, const Path& p, std::map<std::string, T>& out);
template <class T>
void read(const json& j, const Path& p, std::optional<T>& out);

template <class T>
void read(const json& j, const Path& p, std::vector<T>& out) {
  if (!j.is_array()) fail_at(p, "must be an array");
  out.clear();
  out.resize(j.size());
  size_t i = 0;
  for (const json& e : j.elements()) {
    read(e, p.at(i), out[i]);
    ++i;
  }
}
template <class T>
void read(const json& j, const Path& p, std::map<std::string, T>& out) {
  if (!j.is_object()) fail_at(p, "must be an object");
  out.clear();
  // As nlohmann's document did: of duplicate keys the last one counts, and
  // members are read in key order (the first error is the same).
  std::map<std::string_view, const json*> last;
  j.for_each_member([&](const json::Member& m) { last[m.key] = &m.value; });
  for (auto [key, v] : last) {
    if (key.find('\0') != std::string_view::npos) fail_at(p, "keys must not contain a NUL byte");
    read(*v, p.key(key), out[std::string(key)]);
  }
}
template <class T>
void read(const json& j, const Path& p, std::optional<T>& out) {
  T v{};
  read(j, p, v);
  out = std::move(v);
}

// An object being read: o.req("path", x) / o.opt("umask", y).
struct Obj {
  const json& j;
  Path path;

  Obj(const json& doc, const Path& p) : j(doc), path(p) {
    if (!j.is_object()) fail_at(path.empty() ? Path("document") : path, "must be an object");
  }
  const json* find(std::string_view key) const { return j.find(key); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  Path at(std::string_view key) const { return path.key(key); }

  template <class T>
  void req(std::string_view key, T& out) const {
    const json* v = find(key);
    if (!v) fail_at(at(key), "must be set");
    read(*v, at(key), out);
  }
  template <class T>
  void opt(std::string_view key, T& out) const {
    if (const json* v = find(key)) read(*v, at(key), out);
  }
};

// Runs a reader body, turning ReadError / nlohmann errors into Result.
template <class F>
auto guarded(F&& f) -> Result<decltype(f())> {
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const ReadError& e) {
    return fail(Error::plain(e.msg));
  } catch (const std::exception& e) {
    return fail(Error::plain(e.what()));
  }
}

}  // namespace brig::spec::jr
