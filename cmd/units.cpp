#include "cmd/units.hpp"

#include <cstdlib>
#include <string_view>

namespace brig::cmd {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Past the digits at s[i]: the index of the first non-digit.
size_t skip_digits(std::string_view s, size_t i) {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

// Below 2^63: a double that converts to int64_t without overflow.
constexpr double kInt64Bound = 9223372036854775808.0;

}  // namespace

Result<int64_t> ram_in_bytes(const std::string& s) {
  auto bad = [&] { return fail_msg("invalid size: '{}'", s); };
  std::string_view v = s;
  size_t i = skip_digits(v, 0);
  if (i == 0) return bad();
  while (i < v.size() && v[i] == '.') {  // (\.\d+)*
    size_t j = skip_digits(v, i + 1);
    if (j == i + 1) return bad();
    i = j;
  }
  const size_t number_end = i;
  if (i < v.size() && v[i] == ' ') ++i;
  int shifts = 0;
  if (i < v.size()) {
    static constexpr std::string_view units = "kmgtp";
    char c = v[i];
    char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (auto u = units.find(lower); u != std::string_view::npos) {
      shifts = static_cast<int>(u) + 1;
      ++i;
    }
  }
  if (i < v.size() && (v[i] == 'i' || v[i] == 'I')) ++i;
  if (i < v.size() && (v[i] == 'b' || v[i] == 'B')) ++i;
  if (i != v.size()) return bad();
  double bytes = std::strtod(std::string(v.substr(0, number_end)).c_str(), nullptr);
  for (int k = 0; k < shifts; ++k) bytes *= 1024.0;  // exact: no libm needed for pow
  if (!(bytes < kInt64Bound)) return bad();  // also inf, from a number strtod cannot hold
  return static_cast<int64_t>(bytes);
}

Result<int64_t> parse_duration_ms(const std::string& s) {
  auto bad = [&] { return fail_msg("time: invalid duration \"{}\"", s); };
  if (s == "0") return 0;
  if (s.empty()) return bad();
  std::string_view v = s;
  double total = 0;
  for (size_t i = 0; i < v.size();) {
    // \d+(\.\d*)? or \.\d+
    size_t j = skip_digits(v, i);
    bool int_part = j > i;
    if (j < v.size() && v[j] == '.') {
      size_t k = skip_digits(v, j + 1);
      if (!int_part && k == j + 1) return bad();
      j = k;
    } else if (!int_part) {
      return bad();
    }
    double n = std::strtod(std::string(v.substr(i, j - i)).c_str(), nullptr);
    std::string_view rest = v.substr(j);
    double ms = 0;
    size_t len = 0;
    for (auto [unit, per] : {std::pair<std::string_view, double>{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3},
                             {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}}) {
      if (rest.starts_with(unit)) {
        ms = per;
        len = unit.size();
        break;
      }
    }
    if (len == 0) return bad();
    total += n * ms;
    i = j + len;
  }
  if (!(total < kInt64Bound)) return bad();
  return static_cast<int64_t>(total);
}

}  // namespace brig::cmd
