// Splitting text without iostreams. The first stream a process makes builds
// the C++ locale (every facet, and the pages of code behind them): ~0.1 ms
// per brig command on the machines the benchmark runs on
// (contrib/bench/README.md). The commands a container's life goes through
// use these instead.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace brig::text {

// Every field between `sep`s, empty ones included ("a::b" -> a, "", b).
inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    size_t i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos) return out;
    s.remove_prefix(i + 1);
  }
}

// The words of `s` between blanks (spaces, tabs, newlines); no empty ones.
inline std::vector<std::string_view> words(std::string_view s) {
  constexpr std::string_view blanks = " \t\n\r\v\f";
  std::vector<std::string_view> out;
  for (;;) {
    size_t b = s.find_first_not_of(blanks);
    if (b == std::string_view::npos) return out;
    s.remove_prefix(b);
    size_t e = s.find_first_of(blanks);
    out.push_back(s.substr(0, e));
    if (e == std::string_view::npos) return out;
    s.remove_prefix(e);
  }
}

// The lines of `s`, without their '\n'; a last line without one counts.
inline std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out = split(s, '\n');
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0 if there is none.
inline size_t utf8_length_at(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;       // overlong
    else if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;       // overlong
    else if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  auto c1 = static_cast<unsigned char>(s[i + 1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    auto ck = static_cast<unsigned char>(s[i + k]);
    if (ck < 0x80 || ck > 0xbf) return 0;
  }
  return len;
}

// Whether `s` is well-formed UTF-8, the text a JSON document can hold.
inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0, n; i < s.size(); i += n)
    if ((n = utf8_length_at(s, i)) == 0) return false;
  return true;
}

// `s` with each byte that starts no well-formed sequence replaced by U+FFFD,
// as Go's encoder (and so runc) writes it: for an error that names a path.
inline std::string lossy_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length_at(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// A JSON text without the whitespace between its tokens (a text that is
// valid JSON: strings are copied as they are, escapes included). A document
// written indented reads back as fast as a compact one.
inline std::string json_minify(std::string_view json) {
  std::string out(json.size(), '\0');
  char* w = out.data();
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    // Outside strings, the only bytes up to ' ' valid JSON has are its four
    // whitespace characters.
    if (static_cast<unsigned char>(c) <= ' ') continue;
    *w++ = c;
    if (c != '"') continue;
    for (++i; i < json.size(); ++i) {  // the string, to its closing quote
      c = json[i];
      *w++ = c;
      if (c == '"') break;
      if (c == '\\' && i + 1 < json.size()) *w++ = json[++i];
    }
  }
  out.resize(static_cast<size_t>(w - out.data()));
  return out;
}

// Appends `s` to `out` as a JSON string, escaped as nlohmann's dump() does
// (\" \\ \b \f \n \r \t, other control characters as \u00xx, the rest as
// is) with a byte that starts no well-formed UTF-8 sequence written as U+FFFD.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // the start of the bytes not yet appended
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    size_t n = c < 0x80 ? 1 : utf8_length_at(s, i);
    if (n > 1) {  // a well-formed multi-byte sequence: kept
      i += n;
      continue;
    }
    out.append(s.substr(run, i - run));
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += "\xef\xbf\xbd";  // not UTF-8
        }
    }
    run = ++i;
  }
  out.append(s.substr(run));
  out += '"';
}

}  // namespace brig::text
