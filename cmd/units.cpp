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
  if (i < v.size() && v[i] == '.') {  // the regex allows more; the float parse one
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
  // Go's time.ParseDuration, step for step: integer nanoseconds, the
  // fraction scaled into the unit, overflow past 2^63 ns an error.
  auto bad = [&] { return fail_msg("time: invalid duration \"{}\"", s); };
  std::string_view v = s;
  bool neg = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  if (v == "0") return 0;
  if (v.empty()) return bad();
  constexpr uint64_t kMax = uint64_t{1} << 63;
  uint64_t total = 0;
  while (!v.empty()) {
    if (!(v[0] == '.' || is_digit(v[0]))) return bad();
    uint64_t whole = 0;
    size_t i = 0;
    for (; i < v.size() && is_digit(v[i]); ++i) {
      if (whole > (kMax - 1) / 10) return bad();  // overflow
      whole = whole * 10 + static_cast<uint64_t>(v[i] - '0');
      if (whole > kMax - 1) return bad();
    }
    bool pre = i > 0, post = false;
    uint64_t frac = 0;
    double scale = 1;
    if (i < v.size() && v[i] == '.') {
      size_t k = ++i;
      bool overflow = false;
      for (; i < v.size() && is_digit(v[i]); ++i) {
        if (overflow) continue;
        if (frac > (kMax - 1) / 10) {
          overflow = true;  // the digits past what fits are dropped
          continue;
        }
        uint64_t y = frac * 10 + static_cast<uint64_t>(v[i] - '0');
        if (y > kMax - 1) {
          overflow = true;
          continue;
        }
        frac = y;
        scale *= 10;
      }
      post = i > k;
    }
    if (!pre && !post) return bad();
    size_t u = i;
    while (u < v.size() && v[u] != '.' && !is_digit(v[u])) ++u;
    std::string_view unit = v.substr(i, u - i);
    uint64_t per = 0;
    for (auto [name, ns] : {std::pair<std::string_view, uint64_t>{"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000},
                            {"\xce\xbcs", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000},
                            {"h", 3600000000000}}) {
      if (unit == name) per = ns;
    }
    if (per == 0) return bad();  // no unit, or an unknown one
    if (whole > (kMax - 1) / per) return bad();
    whole *= per;
    if (frac > 0) {
      whole += static_cast<uint64_t>(static_cast<double>(frac) * (static_cast<double>(per) / scale));
      if (whole > kMax - 1) return bad();
    }
    total += whole;
    if (total > kMax - 1) return bad();
    v.remove_prefix(u);
  }
  auto ns = static_cast<int64_t>(total);
  return (neg ? -ns : ns) / 1000000;
}

}  // namespace brig::cmd
