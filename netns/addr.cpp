#include "netns/addr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace brig::netns {

std::string Ip::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (!family || !::inet_ntop(family, b.data(), buf, sizeof buf)) return "";
  return buf;
}

std::optional<Ip> Ip::parse(std::string_view s) {
  std::string z(s);
  Ip ip;
  if (::inet_pton(AF_INET, z.c_str(), ip.b.data()) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (::inet_pton(AF_INET6, z.c_str(), ip.b.data()) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

std::string Cidr::str() const { return fmt::format("{}/{}", ip.str(), prefix); }

std::optional<Cidr> Cidr::parse(std::string_view s, bool strict) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = Ip::parse(s.substr(0, slash));
  if (!ip) return std::nullopt;
  std::string_view p = s.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > static_cast<int>(ip->size() * 8))
    return std::nullopt;
  Cidr c{*ip, prefix};
  if (strict && !(c.network() == c)) return std::nullopt;
  return c;
}

Cidr Cidr::network() const {
  Cidr c = *this;
  for (size_t i = 0; i < ip.size(); i++) {
    int bits = std::clamp(prefix - static_cast<int>(i * 8), 0, 8);
    c.ip.b[i] &= static_cast<uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
  }
  return c;
}

bool Cidr::contains(const Ip& a) const {
  if (a.family != ip.family) return false;
  Cidr x{a, prefix};
  return x.network().ip == network().ip;
}

uint64_t Cidr::host_count() const {
  int bits = static_cast<int>(ip.size() * 8) - prefix;
  return bits >= 32 ? (uint64_t{1} << 32) : (uint64_t{1} << bits);
}

Ip Cidr::host(uint64_t n) const {
  Ip out = network().ip;
  // Add n to the low 64 bits, big-endian, with carry.
  for (size_t i = out.size(); i-- > 0 && n;) {
    uint64_t v = out.b[i] + (n & 0xff);
    out.b[i] = static_cast<uint8_t>(v);
    n = (n >> 8) + (v >> 8);
  }
  return out;
}

uint64_t Cidr::offset_of(const Ip& a) const {
  Ip base = network().ip;
  uint64_t off = 0;
  size_t start = a.size() > 8 ? a.size() - 8 : 0;
  for (size_t i = start; i < a.size(); i++) off = (off << 8) | a.b[i];
  uint64_t b0 = 0;
  for (size_t i = start; i < base.size(); i++) b0 = (b0 << 8) | base.b[i];
  return off - b0;
}

}  // namespace brig::netns
