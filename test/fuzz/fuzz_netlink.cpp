// rtnetlink answers as the kernel would send them (one datagram): the walk
// over messages (netns::walk_answers, what Socket::call/dump/link run on
// every recv) and the parsers of links, addresses and error acks. The input
// is a datagram; the request it answers is the first message's (seq, port),
// so the fuzzer reaches the parsers without guessing them.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "netns/netlink.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A recv buffer holds exactly the datagram, 4-aligned like the kernel's.
  std::vector<uint32_t> words((size + 3) / 4);
  if (size) std::memcpy(words.data(), data, size);
  std::span<const uint8_t> buf(reinterpret_cast<const uint8_t*>(words.data()), size);
  uint32_t seq = 0, port = 0;
  if (size >= sizeof(nlmsghdr)) {
    const auto* first = reinterpret_cast<const nlmsghdr*>(buf.data());
    seq = first->nlmsg_seq;
    port = first->nlmsg_pid;
  }
  size_t seen = 0;
  const std::function<void(const nlmsghdr*)> each = [&](const nlmsghdr* h) {
    ++seen;
    if (auto l = brig::netns::parse_link(h)) {
      // a name never runs past its message, nor carries a NUL
      if (l->name.size() > h->nlmsg_len || l->name.find('\0') != std::string::npos) std::abort();
      if (l->kind.size() > h->nlmsg_len) std::abort();
      (void)l->up();
    }
    if (auto a = brig::netns::parse_addr(h)) {
      if (a->cidr.ip.size() != 4 && a->cidr.ip.size() != 16) std::abort();
      (void)a->cidr.str();
    }
    if (auto r = brig::netns::parse_route(h)) {
      size_t bits = r->route.family == AF_INET ? 32 : 128;
      if (r->route.dst && (r->route.dst->prefix < 0 || static_cast<size_t>(r->route.dst->prefix) > bits)) std::abort();
      if (r->route.dst) (void)r->route.dst->str();
      if (r->route.gateway) (void)r->route.gateway->str();
    }
    (void)brig::netns::ack_errno(h);
  };
  auto done = brig::netns::walk_answers(buf, seq, port, &each);
  if (done && (*done < 0 || *done > 4095)) std::abort();
  if (seen * sizeof(nlmsghdr) > size) std::abort();
  return 0;
}
