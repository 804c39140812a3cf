// Splitting text without iostreams. The first stream a process makes builds
// the C++ locale (every facet, and the pages of code behind them): ~0.1 ms
// per brig command on the machines the benchmark runs on
// (contrib/bench/README.md). The commands a container's life goes through
// use these instead.
#pragma once

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

}  // namespace brig::text
