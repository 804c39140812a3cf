// IP addresses and prefixes as plain values: parsing, printing, the n-th
// host of a subnet. Pure code, unit-tested.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brig::netns {

struct Ip {
  int family = 0;                  // AF_INET or AF_INET6 (0: unset)
  std::array<uint8_t, 16> b{};     // network byte order; the first 4 for IPv4

  size_t size() const { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }
  bool v4() const { return family == AF_INET; }
  std::string str() const;
  static std::optional<Ip> parse(std::string_view s);
  bool operator==(const Ip&) const = default;
};

struct Cidr {
  Ip ip;
  int prefix = 0;

  std::string str() const;  // "10.87.0.2/16"
  // "10.87.0.0/16"; host bits of a network address must be zero when `strict`.
  static std::optional<Cidr> parse(std::string_view s, bool strict = false);
  Cidr network() const;                 // host bits cleared
  bool contains(const Ip& a) const;
  // Number of host offsets addressable (capped at 2^32): 2^(bits-prefix).
  uint64_t host_count() const;
  // The address at host offset n (network + n).
  Ip host(uint64_t n) const;
  // Offset of `a` from the network address (a must be inside).
  uint64_t offset_of(const Ip& a) const;
  bool operator==(const Cidr&) const = default;
};

}  // namespace brig::netns
