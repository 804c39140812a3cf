// rtnetlink over libmnl: typed builders for the messages brig sends (links,
// addresses, routes), parsers for what the kernel answers, and a socket that
// turns a netlink error into one line naming the operation and the device:
//   "netlink: add veth vb1a2b3c4d: file exists".
// The builders are pure (unit-tested on their bytes); Socket talks to the
// kernel of the network namespace it was opened in.
#pragma once

#include <linux/netlink.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netns/addr.hpp"
#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

struct mnl_socket;
struct nlattr;

namespace brig::netns {

using Mac = std::array<uint8_t, 6>;

// One netlink request: header, family header, attributes. `what` names the
// operation for error messages ("add veth vb1a2b3c4d").
class Message {
 public:
  Message(uint16_t type, uint16_t flags, std::string what);
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const nlmsghdr* hdr() const { return reinterpret_cast<const nlmsghdr*>(buf_.data()); }
  std::span<const uint8_t> bytes() const;
  const std::string& what() const { return what_; }

  void* extra(size_t size);  // the family header, zeroed
  void put_u8(uint16_t type, uint8_t v);
  void put_u32(uint16_t type, uint32_t v);
  void put_str(uint16_t type, const std::string& s);
  void put(uint16_t type, const void* data, size_t len);
  nlattr* nest_start(uint16_t type);
  void nest_end(nlattr* n);

 private:
  std::vector<uint8_t> buf_;
  std::string what_;
};

// ---- builders (pure) -------------------------------------------------------

Message new_bridge(const std::string& name, uint32_t mtu);
// A veth pair `name` <-> `peer`; the peer is made directly in another network
// namespace when peer_netns_pid/fd is set (so it never exists on the host).
struct VethPeer {
  std::string name;
  std::optional<Mac> mac;
  std::optional<pid_t> netns_pid;
  std::optional<int> netns_fd;
};
Message new_veth(const std::string& name, const VethPeer& peer, uint32_t mtu);

// Changes to an existing link, by ifindex; unset fields are left alone.
struct LinkChange {
  std::optional<bool> up;
  std::optional<int> master;         // ifindex of the bridge; 0 detaches
  std::optional<uint32_t> mtu;
  std::optional<Mac> mac;
  std::optional<std::string> name;   // rename (with netns_*: the name there; "%d" templates allowed)
  std::optional<pid_t> netns_pid;    // move to the netns of this process
  std::optional<int> netns_fd;       // or of this namespace fd
};
// `label` names the device in errors (its name, usually).
Message set_link(int ifindex, const LinkChange& c, const std::string& label);
Message del_link(const std::string& name);
Message get_link(const std::string& name);
Message dump_links();

// IFA_F_NODAD is worth passing for IPv6: no tentative wait before use.
Message add_addr(int ifindex, const Cidr& a, uint32_t flags, const std::string& label);
Message del_addr(int ifindex, const Cidr& a, const std::string& label);
Message dump_addrs(int family);

struct Route {
  int family = 0;
  std::optional<Cidr> dst;     // nullopt: default route
  std::optional<Ip> gateway;
  int oif = 0;
  bool onlink = false;         // the gateway is on the link though no route says so
};
Message add_route(const Route& r, const std::string& label);
Message dump_routes(int family);

// Traffic control: an ingress qdisc on a device, and on it a filter of
// priority `prio` that takes every frame the device receives and sends it
// out of device `to` instead (u32 matching all, action mirred egress
// redirect): two of them, crossed, join a device and a tap.
Message add_ingress_qdisc(int ifindex, const std::string& label);
Message del_ingress_qdisc(int ifindex, const std::string& label);
Message add_redirect(int ifindex, int to_ifindex, uint16_t prio, const std::string& label);
Message del_filter(int ifindex, uint16_t prio, const std::string& label);

// ---- parsers (pure) --------------------------------------------------------

struct Link {
  int index = 0;
  std::string name;
  unsigned flags = 0;   // IFF_*
  uint32_t mtu = 0;
  int master = 0;
  std::string kind;     // "bridge", "veth", ... ("" for physical)
  std::optional<Mac> mac;
  bool up() const;
};
std::optional<Link> parse_link(const nlmsghdr* h);

struct Addr {
  int index = 0;
  Cidr cidr;
  uint8_t scope = 0;
  uint32_t flags = 0;   // IFA_F_* (IFA_FLAGS when present)
};
std::optional<Addr> parse_addr(const nlmsghdr* h);

// A route of the main table (others: nullopt).
struct RouteInfo {
  Route route;
  uint8_t scope = 0;
};
std::optional<RouteInfo> parse_route(const nlmsghdr* h);

// Attribute walks (libmnl's for_each macros are C only).
void for_each_attr(const nlmsghdr* h, size_t offset, const std::function<void(const nlattr*)>& f);
void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& f);

// The errno of an NLMSG_ERROR message (0 = ack), or nullopt for other types.
// A value no kernel sends (positive, or beyond the errno range) is EPROTO.
std::optional<int> ack_errno(const nlmsghdr* h);

// One datagram of answers to request `seq` of socket `portid`, walked message
// by message; messages of other requests are skipped, data messages
// go to `each`. Returns nullopt while the answer goes on (read another
// datagram), 0 when it is complete (the ack, or NLMSG_DONE of a dump), or the
// errno of an error ack. Never reads outside `buf` (fuzzed: fuzz_netlink).
std::optional<int> walk_answers(std::span<const uint8_t> buf, uint32_t seq, uint32_t portid,
                                const std::function<void(const nlmsghdr*)>* each);

// ---- the socket -------------------------------------------------------------

class Socket {
 public:
  // In the caller's network namespace.
  static Result<Socket> open();
  // In another network namespace: setns there, open, setns back (the socket
  // stays bound to the namespace it was made in).
  static Result<Socket> open_in(BorrowedFd netns);

  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  ~Socket();

  // Sends with NLM_F_ACK and waits for the ack:
  // "netlink: <what>: <errno text>" on error.
  Result<void> call(Message m);
  // A dump: every answer message goes to `each` (NLMSG_DONE ends it).
  Result<void> dump(Message m, const std::function<void(const nlmsghdr*)>& each);

  // Conveniences.
  Result<std::optional<Link>> link(const std::string& name);  // nullopt: no such device
  Result<Link> must_link(const std::string& name);            // "netlink: get link X: no such device"
  Result<std::vector<Link>> links();
  Result<std::vector<Addr>> addrs(int family, int ifindex = 0);
  Result<std::vector<RouteInfo>> routes(int family);

 private:
  Socket() = default;
  mnl_socket* nl_ = nullptr;
  uint32_t seq_ = 0;
  uint32_t portid_ = 0;
};

}  // namespace brig::netns
