#include "netns/netlink.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <sched.h>

#include <cstring>

#include "runtime/core/sys.hpp"

namespace brig::netns {

// ---- Message ----------------------------------------------------------------

namespace {
constexpr size_t kMsgBuf = 8192;
}

Message::Message(uint16_t type, uint16_t flags, std::string what) : buf_(kMsgBuf), what_(std::move(what)) {
  nlmsghdr* h = mnl_nlmsg_put_header(buf_.data());
  h->nlmsg_type = type;
  h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
}

std::span<const uint8_t> Message::bytes() const { return {buf_.data(), hdr()->nlmsg_len}; }

void* Message::extra(size_t size) { return mnl_nlmsg_put_extra_header(hdr(), size); }
void Message::put_u8(uint16_t type, uint8_t v) { mnl_attr_put_u8(hdr(), type, v); }
void Message::put_u32(uint16_t type, uint32_t v) { mnl_attr_put_u32(hdr(), type, v); }
void Message::put_str(uint16_t type, const std::string& s) { mnl_attr_put_strz(hdr(), type, s.c_str()); }
void Message::put(uint16_t type, const void* data, size_t len) { mnl_attr_put(hdr(), type, len, data); }
nlattr* Message::nest_start(uint16_t type) { return mnl_attr_nest_start(hdr(), type); }
void Message::nest_end(nlattr* n) { mnl_attr_nest_end(hdr(), n); }

// ---- builders ---------------------------------------------------------------

namespace {

constexpr uint16_t kCreate = NLM_F_CREATE | NLM_F_EXCL;

ifinfomsg* put_ifinfo(Message& m, int index = 0) {
  auto* ifi = static_cast<ifinfomsg*>(m.extra(sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return ifi;
}

void put_kind(Message& m, const char* kind) {
  nlattr* li = m.nest_start(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, kind);
  m.nest_end(li);
}

const char* family_name(int f) { return f == AF_INET6 ? "ipv6" : "ipv4"; }

}  // namespace

Message new_bridge(const std::string& name, uint32_t mtu) {
  Message m(RTM_NEWLINK, kCreate, "add bridge " + name);
  put_ifinfo(m);
  m.put_str(IFLA_IFNAME, name);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  put_kind(m, "bridge");
  return m;
}

Message new_veth(const std::string& name, const VethPeer& peer, uint32_t mtu) {
  Message m(RTM_NEWLINK, kCreate, "add veth " + name);
  put_ifinfo(m);
  m.put_str(IFLA_IFNAME, name);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  nlattr* li = m.nest_start(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "veth");
  nlattr* data = m.nest_start(IFLA_INFO_DATA);
  nlattr* p = m.nest_start(VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside the nest.
  auto* pifi = static_cast<ifinfomsg*>(m.extra(sizeof(ifinfomsg)));
  std::memset(pifi, 0, sizeof *pifi);
  m.put_str(IFLA_IFNAME, peer.name);
  if (peer.mac) m.put(IFLA_ADDRESS, peer.mac->data(), peer.mac->size());
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  if (peer.netns_pid) m.put_u32(IFLA_NET_NS_PID, static_cast<uint32_t>(*peer.netns_pid));
  if (peer.netns_fd) m.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(*peer.netns_fd));
  m.nest_end(p);
  m.nest_end(data);
  m.nest_end(li);
  return m;
}

Message set_link(int ifindex, const LinkChange& c, const std::string& label) {
  std::string what = "set link " + label;
  if (c.netns_pid || c.netns_fd)
    what = "move link " + label + " to netns" + (c.name ? " as " + *c.name : "");
  else if (c.name)
    what = "rename link " + label + " to " + *c.name;
  else if (c.master)
    what = *c.master ? "set master of " + label : "release " + label + " from its master";
  else if (c.up && !c.mtu && !c.mac)
    what = (*c.up ? "set up " : "set down ") + label;
  Message m(RTM_NEWLINK, 0, what);
  ifinfomsg* ifi = put_ifinfo(m, ifindex);
  if (c.up) {
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = *c.up ? IFF_UP : 0;
  }
  if (c.name) m.put_str(IFLA_IFNAME, *c.name);
  if (c.master) m.put_u32(IFLA_MASTER, static_cast<uint32_t>(*c.master));
  if (c.mtu) m.put_u32(IFLA_MTU, *c.mtu);
  if (c.mac) m.put(IFLA_ADDRESS, c.mac->data(), c.mac->size());
  if (c.netns_pid) m.put_u32(IFLA_NET_NS_PID, static_cast<uint32_t>(*c.netns_pid));
  if (c.netns_fd) m.put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(*c.netns_fd));
  return m;
}

Message del_link(const std::string& name) {
  Message m(RTM_DELLINK, 0, "delete link " + name);
  put_ifinfo(m);
  m.put_str(IFLA_IFNAME, name);
  return m;
}

Message get_link(const std::string& name) {
  Message m(RTM_GETLINK, 0, "get link " + name);
  put_ifinfo(m);
  m.put_str(IFLA_IFNAME, name);
  return m;
}

Message dump_links() {
  Message m(RTM_GETLINK, NLM_F_DUMP, "list links");
  put_ifinfo(m);
  return m;
}

namespace {
Message addr_msg(uint16_t type, uint16_t flags, int ifindex, const Cidr& a, uint32_t ifa_flags, std::string what) {
  Message m(type, flags, std::move(what));
  auto* ifa = static_cast<ifaddrmsg*>(m.extra(sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(a.ip.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(a.prefix);
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_flags = static_cast<uint8_t>(ifa_flags & 0xff);
  m.put(IFA_LOCAL, a.ip.b.data(), a.ip.size());
  m.put(IFA_ADDRESS, a.ip.b.data(), a.ip.size());
  if (ifa_flags > 0xff) m.put_u32(IFA_FLAGS, ifa_flags);
  return m;
}
}  // namespace

Message add_addr(int ifindex, const Cidr& a, uint32_t flags, const std::string& label) {
  return addr_msg(RTM_NEWADDR, kCreate, ifindex, a, flags, fmt::format("add address {} to {}", a.str(), label));
}

Message del_addr(int ifindex, const Cidr& a, const std::string& label) {
  return addr_msg(RTM_DELADDR, 0, ifindex, a, 0, fmt::format("delete address {} from {}", a.str(), label));
}

Message dump_addrs(int family) {
  Message m(RTM_GETADDR, NLM_F_DUMP, fmt::format("list {} addresses", family_name(family)));
  auto* ifa = static_cast<ifaddrmsg*>(m.extra(sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(family);
  return m;
}

Message add_route(const Route& r, const std::string& label) {
  std::string dst = r.dst ? r.dst->str() : "default";
  std::string via = r.gateway ? " via " + r.gateway->str() : "";
  Message m(RTM_NEWROUTE, kCreate, fmt::format("add route {}{} dev {}", dst, via, label));
  auto* rt = static_cast<rtmsg*>(m.extra(sizeof(rtmsg)));
  rt->rtm_family = static_cast<uint8_t>(r.family);
  rt->rtm_dst_len = static_cast<uint8_t>(r.dst ? r.dst->prefix : 0);
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  if (r.dst) m.put(RTA_DST, r.dst->ip.b.data(), r.dst->ip.size());
  if (r.gateway) m.put(RTA_GATEWAY, r.gateway->b.data(), r.gateway->size());
  if (r.oif) m.put_u32(RTA_OIF, static_cast<uint32_t>(r.oif));
  if (r.onlink) rt->rtm_flags |= RTNH_F_ONLINK;
  return m;
}

Message dump_routes(int family) {
  Message m(RTM_GETROUTE, NLM_F_DUMP, fmt::format("list {} routes", family_name(family)));
  auto* rt = static_cast<rtmsg*>(m.extra(sizeof(rtmsg)));
  rt->rtm_family = static_cast<uint8_t>(family);
  return m;
}

namespace {

constexpr uint32_t kIngress = 0xffff0000;  // TC_H_MAKE(TC_H_INGRESS, 0): the ingress qdisc's handle

tcmsg* tc_header(Message& m, int ifindex) {
  auto* t = static_cast<tcmsg*>(m.extra(sizeof(tcmsg)));
  t->tcm_family = AF_UNSPEC;
  t->tcm_ifindex = ifindex;
  return t;
}

Message ingress_qdisc(uint16_t type, uint16_t flags, int ifindex, const std::string& what) {
  Message m(type, flags, what);
  tcmsg* t = tc_header(m, ifindex);
  t->tcm_handle = kIngress;
  t->tcm_parent = TC_H_INGRESS;
  m.put_str(TCA_KIND, "ingress");
  return m;
}

// tcm_info of a filter: its priority and the protocol it sees (all).
uint32_t filter_info(uint16_t prio) { return (static_cast<uint32_t>(prio) << 16) | htons(ETH_P_ALL); }

}  // namespace

Message add_ingress_qdisc(int ifindex, const std::string& label) {
  return ingress_qdisc(RTM_NEWQDISC, kCreate, ifindex, "add ingress qdisc on " + label);
}

Message del_ingress_qdisc(int ifindex, const std::string& label) {
  return ingress_qdisc(RTM_DELQDISC, 0, ifindex, "delete ingress qdisc of " + label);
}

Message add_redirect(int ifindex, int to_ifindex, uint16_t prio, const std::string& label) {
  Message m(RTM_NEWTFILTER, kCreate, fmt::format("redirect what {} receives", label));
  tcmsg* t = tc_header(m, ifindex);
  t->tcm_parent = kIngress;
  t->tcm_info = filter_info(prio);
  // A fixed node (800::800): a second one at this priority is EEXIST, not
  // appended behind the first.
  t->tcm_handle = 0x80000800;
  m.put_str(TCA_KIND, "u32");
  nlattr* opts = m.nest_start(TCA_OPTIONS);
  // One key matching any 32 bits at offset 0 with mask 0: every frame.
  // (tc_u32_sel ends in a flexible array of keys: laid out by hand.)
  std::array<uint8_t, sizeof(tc_u32_sel) + sizeof(tc_u32_key)> sel{};
  tc_u32_sel head{};
  head.flags = TC_U32_TERMINAL;  // a match runs the actions
  head.nkeys = 1;
  std::memcpy(sel.data(), &head, sizeof head);
  m.put(TCA_U32_SEL, sel.data(), sel.size());
  nlattr* acts = m.nest_start(TCA_U32_ACT);
  nlattr* first = m.nest_start(1);  // actions are numbered from 1, in order
  m.put_str(TCA_ACT_KIND, "mirred");
  nlattr* aopts = m.nest_start(TCA_ACT_OPTIONS);
  tc_mirred mir{};
  mir.action = TC_ACT_STOLEN;
  mir.eaction = TCA_EGRESS_REDIR;
  mir.ifindex = static_cast<uint32_t>(to_ifindex);
  m.put(TCA_MIRRED_PARMS, &mir, sizeof mir);
  m.nest_end(aopts);
  m.nest_end(first);
  m.nest_end(acts);
  m.nest_end(opts);
  return m;
}

Message del_filter(int ifindex, uint16_t prio, const std::string& label) {
  Message m(RTM_DELTFILTER, 0, fmt::format("delete the redirect of {}", label));
  tcmsg* t = tc_header(m, ifindex);
  t->tcm_parent = kIngress;
  t->tcm_info = filter_info(prio);
  return m;
}

// ---- parsers ----------------------------------------------------------------

bool Link::up() const { return flags & IFF_UP; }

// Attributes are walked up to the message's own length (not its aligned
// length: the last message of a datagram may end unaligned).
void for_each_attr(const nlmsghdr* h, size_t offset, const std::function<void(const nlattr*)>& f) {
  if (h->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(offset)) return;
  const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(h, offset));
  const auto* tail = reinterpret_cast<const char*>(h) + h->nlmsg_len;
  while (mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& f) {
  if (nest->nla_len < MNL_ATTR_HDRLEN) return;
  const auto* a = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
  const auto* end = reinterpret_cast<const char*>(nest) + nest->nla_len;
  while (mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

namespace {
// A string attribute up to its NUL or its end (the kernel's always have the
// NUL; a malformed one must not make us read past the attribute).
std::string attr_str(const nlattr* a) {
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, ::strnlen(p, mnl_attr_get_payload_len(a)));
}
// A u32 attribute, or nullopt when it is too short to hold one.
std::optional<uint32_t> attr_u32(const nlattr* a) {
  if (mnl_attr_get_payload_len(a) < sizeof(uint32_t)) return std::nullopt;
  return mnl_attr_get_u32(a);
}
}  // namespace

std::optional<Link> parse_link(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(h));
  Link l;
  l.index = ifi->ifi_index;
  l.flags = ifi->ifi_flags;
  for_each_attr(h, sizeof(ifinfomsg), [&](const nlattr* a) {
    switch (mnl_attr_get_type(a)) {
      case IFLA_IFNAME: l.name = attr_str(a); break;
      case IFLA_MTU: l.mtu = attr_u32(a).value_or(l.mtu); break;
      case IFLA_MASTER: l.master = static_cast<int>(attr_u32(a).value_or(0)); break;
      case IFLA_ADDRESS:
        if (mnl_attr_get_payload_len(a) == 6) {
          Mac mac;
          std::memcpy(mac.data(), mnl_attr_get_payload(a), 6);
          l.mac = mac;
        }
        break;
      case IFLA_LINKINFO:
        for_each_nested(a, [&](const nlattr* in) {
          if (mnl_attr_get_type(in) == IFLA_INFO_KIND) l.kind = attr_str(in);
        });
        break;
      default: break;
    }
  });
  return l;
}

std::optional<Addr> parse_addr(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return std::nullopt;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(h));
  Addr out;
  out.index = static_cast<int>(ifa->ifa_index);
  out.scope = ifa->ifa_scope;
  out.flags = ifa->ifa_flags;
  out.cidr.prefix = ifa->ifa_prefixlen;
  out.cidr.ip.family = ifa->ifa_family;
  bool have_local = false;
  for_each_attr(h, sizeof(ifaddrmsg), [&](const nlattr* a) {
    uint16_t t = mnl_attr_get_type(a);
    if (t == IFA_FLAGS) {
      out.flags = attr_u32(a).value_or(out.flags);
    } else if ((t == IFA_LOCAL || (t == IFA_ADDRESS && !have_local)) &&
               mnl_attr_get_payload_len(a) == out.cidr.ip.size()) {
      std::memcpy(out.cidr.ip.b.data(), mnl_attr_get_payload(a), out.cidr.ip.size());
      have_local = have_local || t == IFA_LOCAL;
    }
  });
  if (!out.cidr.ip.size()) return std::nullopt;
  return out;
}

std::optional<RouteInfo> parse_route(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return std::nullopt;
  const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(h));
  if (rt->rtm_table != RT_TABLE_MAIN || rt->rtm_type != RTN_UNICAST) return std::nullopt;
  if (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) return std::nullopt;
  RouteInfo out;
  out.route.family = rt->rtm_family;
  out.route.onlink = rt->rtm_flags & RTNH_F_ONLINK;
  out.scope = rt->rtm_scope;
  size_t len = rt->rtm_family == AF_INET ? 4 : 16;
  if (rt->rtm_dst_len > len * 8) return std::nullopt;
  auto ip_of = [&](const nlattr* a) {
    Ip ip;
    ip.family = rt->rtm_family;
    std::memcpy(ip.b.data(), mnl_attr_get_payload(a), len);
    return ip;
  };
  bool has_dst = false;
  for_each_attr(h, sizeof(rtmsg), [&](const nlattr* a) {
    uint16_t t = mnl_attr_get_type(a);
    if (t == RTA_DST && mnl_attr_get_payload_len(a) == len) {
      out.route.dst = Cidr{ip_of(a), rt->rtm_dst_len};
      has_dst = true;
    } else if (t == RTA_GATEWAY && mnl_attr_get_payload_len(a) == len) {
      out.route.gateway = ip_of(a);
    } else if (t == RTA_OIF) {
      out.route.oif = static_cast<int>(attr_u32(a).value_or(0));
    }
  });
  if (!has_dst && rt->rtm_dst_len != 0) return std::nullopt;
  return out;
}

std::optional<int> ack_errno(const nlmsghdr* h) {
  if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return std::nullopt;
  const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
  if (e->error > 0 || e->error < -4095) return EPROTO;  // (and -INT_MIN would overflow)
  return -e->error;
}

std::optional<int> walk_answers(std::span<const uint8_t> buf, uint32_t seq, uint32_t portid,
                                const std::function<void(const nlmsghdr*)>* each) {
  if (buf.size() > static_cast<size_t>(INT32_MAX)) return EMSGSIZE;
  int len = static_cast<int>(buf.size());
  // libmnl's mnl_nlmsg_ok compares the length as an int: an nlmsg_len of
  // 0xffffffff passes as -1, aligns to 0, and mnl_nlmsg_next never moves on
  // (an endless loop, found by fuzz_netlink). Lengths are checked unsigned here.
  auto ok = [&](const nlmsghdr* h) {
    return len >= static_cast<int>(sizeof(nlmsghdr)) && h->nlmsg_len >= sizeof(nlmsghdr) &&
           h->nlmsg_len <= static_cast<uint32_t>(len);
  };
  for (auto* h = reinterpret_cast<const nlmsghdr*>(buf.data()); ok(h); h = mnl_nlmsg_next(h, &len)) {
    if (h->nlmsg_seq != seq || h->nlmsg_pid != portid) continue;
    if (h->nlmsg_type == NLMSG_DONE) return 0;
    if (auto e = ack_errno(h)) return *e;
    if (each) (*each)(h);
  }
  return std::nullopt;
}

// ---- Socket -----------------------------------------------------------------

Socket::Socket(Socket&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)), seq_(o.seq_), portid_(o.portid_) {}
Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (nl_) mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
    seq_ = o.seq_;
    portid_ = o.portid_;
  }
  return *this;
}
Socket::~Socket() {
  if (nl_) mnl_socket_close(nl_);
}

Result<Socket> Socket::open() {
  Socket s;
  s.nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!s.nl_) return fail_errno("netlink: open socket");
  if (mnl_socket_bind(s.nl_, 0, MNL_SOCKET_AUTOPID) < 0) return fail_errno("netlink: bind socket");
  s.portid_ = mnl_socket_get_portid(s.nl_);
  s.seq_ = static_cast<uint32_t>(::getpid()) << 8;
  return s;
}

Result<Socket> Socket::open_in(BorrowedFd netns) {
  TRY(Fd self, sys::open("/proc/thread-self/ns/net", O_RDONLY));
  if (::setns(netns.get(), CLONE_NEWNET) < 0) return fail_errno("netlink: enter network namespace");
  auto s = open();
  if (::setns(self.get(), CLONE_NEWNET) < 0) {
    // We would go on in the wrong namespace: nothing is safe after this.
    fmt::print(stderr, "netlink: return to own network namespace: {}\n", Error::errno_text(errno));
    ::_exit(1);
  }
  return s;
}

namespace {

// Reads answers to `seq` until the ack (or NLMSG_DONE for dumps).
Result<void> receive(mnl_socket* nl, uint32_t seq, uint32_t portid, const std::string& what,
                     const std::function<void(const nlmsghdr*)>* each) {
  // Not zeroed: the kernel writes what is read, and an ack touches one page.
  const size_t size = MNL_SOCKET_BUFFER_SIZE * 4;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size]);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.get(), size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("netlink: {}: receive", what);
    }
    auto done = walk_answers({buf.get(), static_cast<size_t>(n)}, seq, portid, each);
    if (!done) continue;
    if (*done) return fail_err(*done, fmt::format("netlink: {}", what));
    return {};
  }
}

}  // namespace

Result<void> Socket::call(Message m) {
  nlmsghdr* h = m.hdr();
  h->nlmsg_flags |= NLM_F_ACK;
  h->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(nl_, h, h->nlmsg_len) < 0) return fail_errno("netlink: {}: send", m.what());
  return receive(nl_, h->nlmsg_seq, portid_, m.what(), nullptr);
}

Result<void> Socket::dump(Message m, const std::function<void(const nlmsghdr*)>& each) {
  nlmsghdr* h = m.hdr();
  h->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(nl_, h, h->nlmsg_len) < 0) return fail_errno("netlink: {}: send", m.what());
  return receive(nl_, h->nlmsg_seq, portid_, m.what(), &each);
}

Result<std::optional<Link>> Socket::link(const std::string& name) {
  std::optional<Link> out;
  // A GETLINK of one device answers with the link (no ack: not a dump).
  Message m = get_link(name);
  nlmsghdr* h = m.hdr();
  h->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(nl_, h, h->nlmsg_len) < 0) return fail_errno("netlink: {}: send", m.what());
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  const std::function<void(const nlmsghdr*)> take = [&](const nlmsghdr* r) {
    if (!out) out = parse_link(r);
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("netlink: {}: receive", m.what());
    }
    auto done = walk_answers({buf.data(), static_cast<size_t>(n)}, h->nlmsg_seq, portid_, &take);
    if (out) return out;
    if (!done) continue;
    if (*done && *done != ENODEV) return fail_err(*done, fmt::format("netlink: {}", m.what()));
    return std::optional<Link>{};
  }
}

Result<Link> Socket::must_link(const std::string& name) {
  TRY(auto l, link(name));
  if (!l) return fail_err(ENODEV, fmt::format("netlink: get link {}", name));
  return *l;
}

Result<std::vector<Link>> Socket::links() {
  std::vector<Link> out;
  TRY_VOID(dump(dump_links(), [&](const nlmsghdr* h) {
    if (auto l = parse_link(h)) out.push_back(std::move(*l));
  }));
  return out;
}

Result<std::vector<Addr>> Socket::addrs(int family, int ifindex) {
  std::vector<Addr> out;
  TRY_VOID(dump(dump_addrs(family), [&](const nlmsghdr* h) {
    auto a = parse_addr(h);
    if (a && (!ifindex || a->index == ifindex)) out.push_back(std::move(*a));
  }));
  return out;
}

Result<std::vector<RouteInfo>> Socket::routes(int family) {
  std::vector<RouteInfo> out;
  TRY_VOID(dump(dump_routes(family), [&](const nlmsghdr* h) {
    if (auto r = parse_route(h)) out.push_back(std::move(*r));
  }));
  return out;
}

}  // namespace brig::netns
