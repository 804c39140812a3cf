// netns/: address math, rtnetlink message encoding (no kernel), network
// definitions, annotations, port specs, lease picking, nft scripts.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <map>

#include <catch2/catch.hpp>

#include "netns/addr.hpp"
#include "netns/attach.hpp"
#include "netns/lease.hpp"
#include "netns/netlink.hpp"
#include "netns/network.hpp"
#include "netns/nft.hpp"
#include "netns/passthrough.hpp"

using namespace brig;
using namespace brig::netns;

namespace {

// Top-level attributes of a message after its family header: type -> attr.
std::map<uint16_t, const nlattr*> attrs(const Message& m, size_t hdr) {
  std::map<uint16_t, const nlattr*> out;
  for_each_attr(m.hdr(), hdr, [&](const nlattr* a) { out[mnl_attr_get_type(a)] = a; });
  return out;
}

std::map<uint16_t, const nlattr*> nested(const nlattr* n) {
  std::map<uint16_t, const nlattr*> out;
  for_each_nested(n, [&](const nlattr* a) { out[mnl_attr_get_type(a)] = a; });
  return out;
}

std::string str(const nlattr* a) { return mnl_attr_get_str(a); }

}  // namespace

TEST_CASE("IP addresses and prefixes", "[netns]") {
  auto c = *Cidr::parse("10.87.0.0/16", true);
  CHECK(c.str() == "10.87.0.0/16");
  CHECK(c.host(1).str() == "10.87.0.1");
  CHECK(c.host(258).str() == "10.87.1.2");
  CHECK(c.host_count() == 65536);
  CHECK(c.offset_of(*Ip::parse("10.87.1.2")) == 258);
  CHECK(c.contains(*Ip::parse("10.87.255.255")));
  CHECK_FALSE(c.contains(*Ip::parse("10.88.0.1")));
  CHECK_FALSE(c.contains(*Ip::parse("fd00::1")));
  CHECK_FALSE(Cidr::parse("10.87.0.1/16", true));
  CHECK(Cidr::parse("10.87.0.1/16")->network().str() == "10.87.0.0/16");
  CHECK_FALSE(Cidr::parse("10.87.0.0/33"));
  CHECK_FALSE(Cidr::parse("10.87.0.0"));
  CHECK_FALSE(Cidr::parse("10.87.0.0/x"));
  auto v6 = *Cidr::parse("fd00:87::/64", true);
  CHECK(v6.host(0x1234).str() == "fd00:87::1234");
  CHECK(v6.host_count() == (uint64_t{1} << 32));
  CHECK(v6.offset_of(*Ip::parse("fd00:87::1:2")) == 0x10002);
  CHECK(Cidr::parse("fd00:87::5/120")->network().str() == "fd00:87::/120");
}

TEST_CASE("rtnetlink: new bridge", "[netns][netlink]") {
  Message m = new_bridge("brig0", 1400);
  CHECK(m.what() == "add bridge brig0");
  const nlmsghdr* h = m.hdr();
  CHECK(h->nlmsg_type == RTM_NEWLINK);
  CHECK((h->nlmsg_flags & (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)) == (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL));
  CHECK(m.bytes().size() == h->nlmsg_len);
  auto a = attrs(m, sizeof(ifinfomsg));
  REQUIRE(a.count(IFLA_IFNAME));
  CHECK(str(a[IFLA_IFNAME]) == "brig0");
  CHECK(mnl_attr_get_u32(a[IFLA_MTU]) == 1400);
  auto li = nested(a[IFLA_LINKINFO]);
  CHECK(str(li[IFLA_INFO_KIND]) == "bridge");
}

TEST_CASE("rtnetlink: veth with its peer born in another netns", "[netns][netlink]") {
  Message m = new_veth("vb12345678", VethPeer{.name = "eth0", .netns_fd = 7}, 1500);
  CHECK(m.what() == "add veth vb12345678");
  auto a = attrs(m, sizeof(ifinfomsg));
  CHECK(str(a[IFLA_IFNAME]) == "vb12345678");
  auto li = nested(a[IFLA_LINKINFO]);
  CHECK(str(li[IFLA_INFO_KIND]) == "veth");
  auto data = nested(li[IFLA_INFO_DATA]);
  REQUIRE(data.count(VETH_INFO_PEER));
  // The peer: an ifinfomsg, then its own attributes.
  const nlattr* peer = data[VETH_INFO_PEER];
  const auto* base = static_cast<const uint8_t*>(mnl_attr_get_payload(peer));
  size_t len = mnl_attr_get_payload_len(peer);
  REQUIRE(len > sizeof(ifinfomsg));
  std::map<uint16_t, const nlattr*> pa;
  for (size_t off = MNL_ALIGN(sizeof(ifinfomsg)); off < len;) {
    const auto* x = reinterpret_cast<const nlattr*>(base + off);
    pa[mnl_attr_get_type(x)] = x;
    off += MNL_ALIGN(x->nla_len);
  }
  CHECK(str(pa[IFLA_IFNAME]) == "eth0");
  CHECK(mnl_attr_get_u32(pa[IFLA_NET_NS_FD]) == 7);
  CHECK_FALSE(pa.count(IFLA_NET_NS_PID));
  CHECK(mnl_attr_get_u32(pa[IFLA_MTU]) == 1500);
}

TEST_CASE("rtnetlink: link changes", "[netns][netlink]") {
  Message up = set_link(5, LinkChange{.up = true}, "vbx");
  CHECK(up.what() == "set up vbx");
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(up.hdr()));
  CHECK(ifi->ifi_index == 5);
  CHECK(ifi->ifi_change == IFF_UP);
  CHECK(ifi->ifi_flags == IFF_UP);
  CHECK((up.hdr()->nlmsg_flags & NLM_F_CREATE) == 0);

  Message down = set_link(5, LinkChange{.up = false}, "vbx");
  ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(down.hdr()));
  CHECK(ifi->ifi_change == IFF_UP);
  CHECK(ifi->ifi_flags == 0);

  Message master = set_link(5, LinkChange{.master = 3}, "vbx");
  CHECK(master.what() == "set master of vbx");
  CHECK(mnl_attr_get_u32(attrs(master, sizeof(ifinfomsg))[IFLA_MASTER]) == 3);

  Mac mac{0x02, 0, 0, 0, 0, 0x42};
  Message mm = set_link(5, LinkChange{.mtu = 9000, .mac = mac}, "vbx");
  auto a = attrs(mm, sizeof(ifinfomsg));
  CHECK(mnl_attr_get_u32(a[IFLA_MTU]) == 9000);
  REQUIRE(mnl_attr_get_payload_len(a[IFLA_ADDRESS]) == 6);
  CHECK(std::memcmp(mnl_attr_get_payload(a[IFLA_ADDRESS]), mac.data(), 6) == 0);

  Message mv = set_link(9, LinkChange{.name = "net%d", .netns_pid = 1234}, "dummy0");
  CHECK(mv.what() == "move link dummy0 to netns as net%d");
  a = attrs(mv, sizeof(ifinfomsg));
  CHECK(str(a[IFLA_IFNAME]) == "net%d");
  CHECK(mnl_attr_get_u32(a[IFLA_NET_NS_PID]) == 1234);

  Message rn = set_link(9, LinkChange{.name = "eth0"}, "vc1");
  CHECK(rn.what() == "rename link vc1 to eth0");

  Message del = del_link("vb1");
  CHECK(del.hdr()->nlmsg_type == RTM_DELLINK);
  CHECK(str(attrs(del, sizeof(ifinfomsg))[IFLA_IFNAME]) == "vb1");
  CHECK((dump_links().hdr()->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
}

TEST_CASE("rtnetlink: addresses and routes", "[netns][netlink]") {
  Message a4 = add_addr(4, *Cidr::parse("10.87.0.2/16"), 0, "eth0");
  CHECK(a4.what() == "add address 10.87.0.2/16 to eth0");
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(a4.hdr()));
  CHECK(ifa->ifa_family == AF_INET);
  CHECK(ifa->ifa_prefixlen == 16);
  CHECK(ifa->ifa_index == 4);
  auto at = attrs(a4, sizeof(ifaddrmsg));
  REQUIRE(mnl_attr_get_payload_len(at[IFA_LOCAL]) == 4);
  const uint8_t want[4] = {10, 87, 0, 2};
  CHECK(std::memcmp(mnl_attr_get_payload(at[IFA_LOCAL]), want, 4) == 0);

  Message a6 = add_addr(4, *Cidr::parse("fd00::2/64"), IFA_F_NODAD, "eth0");
  ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(a6.hdr()));
  CHECK(ifa->ifa_family == AF_INET6);
  CHECK(ifa->ifa_flags == IFA_F_NODAD);
  CHECK(mnl_attr_get_payload_len(attrs(a6, sizeof(ifaddrmsg))[IFA_ADDRESS]) == 16);

  Message r = add_route(Route{AF_INET, std::nullopt, Ip::parse("10.87.0.1"), 4}, "eth0");
  CHECK(r.what() == "add route default via 10.87.0.1 dev eth0");
  const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r.hdr()));
  CHECK(rt->rtm_dst_len == 0);
  CHECK(rt->rtm_table == RT_TABLE_MAIN);
  CHECK(rt->rtm_scope == RT_SCOPE_UNIVERSE);
  auto ra = attrs(r, sizeof(rtmsg));
  CHECK(ra.count(RTA_GATEWAY));
  CHECK_FALSE(ra.count(RTA_DST));
  CHECK(mnl_attr_get_u32(ra[RTA_OIF]) == 4);

  Message r2 = add_route(Route{AF_INET6, Cidr::parse("fd01::/64"), std::nullopt, 2}, "eth1");
  CHECK(r2.what() == "add route fd01::/64 dev eth1");
  rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r2.hdr()));
  CHECK(rt->rtm_dst_len == 64);
  CHECK(rt->rtm_scope == RT_SCOPE_LINK);
}

TEST_CASE("rtnetlink: routes read back, on-link gateways", "[netns][netlink]") {
  Message r = add_route(Route{AF_INET, std::nullopt, Ip::parse("169.254.1.1"), 7, true}, "eth0");
  const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r.hdr()));
  CHECK(rt->rtm_flags & RTNH_F_ONLINK);
  r.hdr()->nlmsg_type = RTM_NEWROUTE;  // as the kernel answers a dump
  auto back = parse_route(r.hdr());
  REQUIRE(back);
  CHECK(back->route.family == AF_INET);
  CHECK_FALSE(back->route.dst);
  CHECK(back->route.gateway->str() == "169.254.1.1");
  CHECK(back->route.oif == 7);
  CHECK(back->route.onlink);
  Message plain = add_route(Route{AF_INET, std::nullopt, Ip::parse("10.0.0.1"), 7}, "eth0");
  CHECK_FALSE(static_cast<const rtmsg*>(mnl_nlmsg_get_payload(plain.hdr()))->rtm_flags & RTNH_F_ONLINK);

  Message r6 = add_route(Route{AF_INET6, Cidr::parse("fd01::/64"), std::nullopt, 2}, "eth1");
  r6.hdr()->nlmsg_type = RTM_NEWROUTE;
  auto b6 = parse_route(r6.hdr());
  REQUIRE(b6);
  CHECK(b6->route.dst->str() == "fd01::/64");
  CHECK_FALSE(b6->route.gateway);
  CHECK(b6->scope == RT_SCOPE_LINK);
  // another table's route, or a prefix longer than the address: not ours to read
  auto* w = static_cast<rtmsg*>(mnl_nlmsg_get_payload(r6.hdr()));
  w->rtm_dst_len = 129;
  CHECK_FALSE(parse_route(r6.hdr()));
  w->rtm_dst_len = 64;
  w->rtm_table = RT_TABLE_LOCAL;
  CHECK_FALSE(parse_route(r6.hdr()));
}

TEST_CASE("traffic control: an ingress qdisc and a redirect of everything", "[netns][netlink]") {
  Message q = add_ingress_qdisc(3, "eth0");
  CHECK(q.what() == "add ingress qdisc on eth0");
  const auto* t = static_cast<const tcmsg*>(mnl_nlmsg_get_payload(q.hdr()));
  CHECK(t->tcm_ifindex == 3);
  CHECK(t->tcm_parent == TC_H_INGRESS);
  CHECK(t->tcm_handle == 0xffff0000u);
  CHECK(str(attrs(q, sizeof(tcmsg))[TCA_KIND]) == "ingress");
  CHECK(q.hdr()->nlmsg_flags & NLM_F_EXCL);  // an existing one is seen (EEXIST), never replaced

  Message f = add_redirect(3, 9, passthrough::kPrio, "eth0");
  t = static_cast<const tcmsg*>(mnl_nlmsg_get_payload(f.hdr()));
  CHECK(t->tcm_parent == 0xffff0000u);
  CHECK((t->tcm_info >> 16) == passthrough::kPrio);
  CHECK((t->tcm_info & 0xffff) == htons(ETH_P_ALL));
  CHECK(t->tcm_handle == 0x80000800u);  // a fixed node: a second redirect is EEXIST
  CHECK(f.hdr()->nlmsg_flags & NLM_F_EXCL);
  auto fa = attrs(f, sizeof(tcmsg));
  CHECK(str(fa[TCA_KIND]) == "u32");
  auto opts = nested(fa[TCA_OPTIONS]);
  REQUIRE(opts.count(TCA_U32_SEL));
  REQUIRE(mnl_attr_get_payload_len(opts[TCA_U32_SEL]) == sizeof(tc_u32_sel) + sizeof(tc_u32_key));
  tc_u32_sel sel;
  std::memcpy(&sel, mnl_attr_get_payload(opts[TCA_U32_SEL]), sizeof sel);
  CHECK(sel.flags == TC_U32_TERMINAL);
  CHECK(sel.nkeys == 1);
  tc_u32_key key;
  std::memcpy(&key, static_cast<const char*>(mnl_attr_get_payload(opts[TCA_U32_SEL])) + sizeof sel, sizeof key);
  CHECK(key.mask == 0);  // matches every frame
  auto first = nested(nested(opts[TCA_U32_ACT])[1]);
  CHECK(str(first[TCA_ACT_KIND]) == "mirred");
  auto parms = nested(first[TCA_ACT_OPTIONS]);
  REQUIRE(mnl_attr_get_payload_len(parms[TCA_MIRRED_PARMS]) == sizeof(tc_mirred));
  tc_mirred mir;
  std::memcpy(&mir, mnl_attr_get_payload(parms[TCA_MIRRED_PARMS]), sizeof mir);
  CHECK(mir.eaction == TCA_EGRESS_REDIR);
  CHECK(mir.action == TC_ACT_STOLEN);
  CHECK(mir.ifindex == 9);

  Message d = del_filter(3, passthrough::kPrio, "eth0");
  t = static_cast<const tcmsg*>(mnl_nlmsg_get_payload(d.hdr()));
  CHECK(d.hdr()->nlmsg_type == RTM_DELTFILTER);
  CHECK((t->tcm_info >> 16) == passthrough::kPrio);
}

TEST_CASE("pass-through record", "[netns]") {
  passthrough::Record r{"/run/netns/cni-1", "eth0", true, 4, 4026532000};
  auto back = passthrough::record_from_json(passthrough::to_json(r));
  REQUIRE(back);
  CHECK(back->netns == r.netns);
  CHECK(back->dev == "eth0");
  CHECK(back->qdisc_made);
  CHECK(back->ns_dev == 4);
  CHECK(back->ns_ino == 4026532000);
  CHECK_FALSE(passthrough::record_from_json(nlohmann::json::array()));
  CHECK_FALSE(passthrough::record_from_json(nlohmann::json{{"device", "eth0"}}));
  CHECK(passthrough::record_path("/run/brig/x") == "/run/brig/x/passthrough.json");
}

TEST_CASE("rtnetlink: parsing links, addresses and acks", "[netns][netlink]") {
  // A kernel-style RTM_NEWLINK answer, built with the same tools.
  Message m(RTM_NEWLINK, 0, "answer");
  auto* ifi = static_cast<ifinfomsg*>(m.extra(sizeof(ifinfomsg)));
  ifi->ifi_index = 12;
  ifi->ifi_flags = IFF_UP | IFF_BROADCAST;
  m.put_str(IFLA_IFNAME, "brig0");
  m.put_u32(IFLA_MTU, 1500);
  m.put_u32(IFLA_MASTER, 0);
  Mac mac{2, 1, 2, 3, 4, 5};
  m.put(IFLA_ADDRESS, mac.data(), 6);
  nlattr* li = m.nest_start(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "bridge");
  m.nest_end(li);
  auto l = parse_link(m.hdr());
  REQUIRE(l);
  CHECK(l->index == 12);
  CHECK(l->name == "brig0");
  CHECK(l->up());
  CHECK(l->mtu == 1500);
  CHECK(l->kind == "bridge");
  CHECK(*l->mac == mac);

  Message a = add_addr(3, *Cidr::parse("fd00::9/64"), IFA_F_PERMANENT, "x");
  a.hdr()->nlmsg_type = RTM_NEWADDR;
  auto ad = parse_addr(a.hdr());
  REQUIRE(ad);
  CHECK(ad->index == 3);
  CHECK(ad->cidr.str() == "fd00::9/64");
  CHECK(ad->flags & IFA_F_PERMANENT);

  Message e(NLMSG_ERROR, 0, "err");
  auto* err = static_cast<nlmsgerr*>(e.extra(sizeof(nlmsgerr)));
  err->error = -EEXIST;
  CHECK(ack_errno(e.hdr()) == EEXIST);
  err->error = 0;
  CHECK(ack_errno(e.hdr()) == 0);
  CHECK_FALSE(ack_errno(m.hdr()));
  CHECK_FALSE(parse_link(e.hdr()));
}

TEST_CASE("rtnetlink: malformed answers are read within their bounds", "[netns][netlink]") {
  // Raw datagrams as a broken (or hostile) peer could send them; under ASan a
  // read past an attribute or the datagram is a failure (fuzz_netlink found
  // these shapes).
  auto datagram = [](std::initializer_list<uint32_t> words) { return std::vector<uint32_t>(words); };
  auto bytes = [](const std::vector<uint32_t>& w, size_t n) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(w.data()), n);
  };
  std::vector<Link> got;
  const std::function<void(const nlmsghdr*)> each = [&](const nlmsghdr* h) {
    if (auto l = parse_link(h)) got.push_back(*l);
  };
  // RTM_NEWLINK, ifinfomsg, IFLA_IFNAME "abcd" without its NUL, IFLA_MTU of 2 bytes.
  auto w = datagram({16 + 16 + 8 + 8, RTM_NEWLINK, 7, 0, 0, 5, 0, 0,  // nlmsghdr (len, type|flags, seq, pid) + ifinfomsg
                     0x00030008, 0x64636261,                          // IFLA_IFNAME, "abcd"
                     0x00040006, 0x0000ffff});                        // IFLA_MTU, 2 bytes
  CHECK_FALSE(walk_answers(bytes(w, w.size() * 4), 7, 0, &each));
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "abcd");
  CHECK(got[0].mtu == 0);
  // The same message cut to an unaligned length: no attribute header fits
  // in the 3 bytes left, nothing past them is read.
  got.clear();
  w[0] = 16 + 16 + 8 + 3;
  CHECK_FALSE(walk_answers(bytes(w, 16 + 16 + 8 + 3), 7, 0, &each));
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "abcd");
  // An error ack with an errno no kernel sends (-INT_MIN overflows).
  auto e = datagram({36, NLMSG_ERROR, 9, 0, 0x80000000u, 0, 0, 0, 0});
  CHECK(walk_answers(bytes(e, 36), 9, 0, nullptr) == EPROTO);
  e[4] = static_cast<uint32_t>(-EEXIST);
  CHECK(walk_answers(bytes(e, 36), 9, 0, nullptr) == EEXIST);
  e[4] = 0;
  CHECK(walk_answers(bytes(e, 36), 9, 0, nullptr) == 0);
  // answers to another request are skipped
  CHECK_FALSE(walk_answers(bytes(e, 36), 10, 0, nullptr));
  // NLMSG_DONE ends a dump; a length running past the datagram ends the walk
  auto d = datagram({20, NLMSG_DONE, 3, 0, 0});
  CHECK(walk_answers(bytes(d, 20), 3, 0, nullptr) == 0);
  d[0] = 400;
  CHECK_FALSE(walk_answers(bytes(d, 20), 3, 0, nullptr));
  // a length of 0xffffffff after a first message: libmnl's own check lets it
  // through and its next() never advances (endless loop, found by fuzz_netlink)
  auto two = datagram({20, NLMSG_NOOP, 3, 0, 0, 0xffffffffu, NLMSG_DONE, 3, 0, 0});
  CHECK_FALSE(walk_answers(bytes(two, 40), 3, 0, nullptr));
}

TEST_CASE("network definitions", "[netns]") {
  auto d = default_network();
  CHECK(d.name == "brig");
  CHECK(d.bridge == "brig0");
  CHECK(d.subnet.str() == "10.87.0.0/16");
  CHECK(d.gateway.str() == "10.87.0.1");

  auto n = parse_network("lab", nlohmann::json::parse(
      R"({"bridge":"br-lab","subnet":"10.99.0.0/24","subnet6":"fd00:99::/64","mtu":1400,"masquerade":true})"));
  REQUIRE(n);
  CHECK(n->gateway.str() == "10.99.0.1");
  CHECK(n->gateway6->str() == "fd00:99::1");
  CHECK(n->mtu == 1400);
  CHECK(n->masquerade);
  auto j = to_json(*n);
  j.erase("name");
  CHECK(parse_network("lab", j)->subnet == n->subnet);

  auto bad = [](const char* text) {
    auto r = parse_network("x", nlohmann::json::parse(text));
    REQUIRE_FALSE(r);
    return r.error().msg;
  };
  CHECK(bad(R"({"subnet":"10.0.0.0/24"})") == "network x.bridge: must be a string");
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.1/24"})") ==
        "network x.subnet: \"10.0.0.1/24\" is not an IPv4 network address with prefix");
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.0/31"})") == "network x.subnet: /31 leaves no room for containers");
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.0/24","gateway":"10.0.1.1"})") ==
        "network x.gateway: must be an address inside 10.0.0.0/24");
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.0/24","gateway":"10.0.0.255"})") ==
        "network x.gateway: 10.0.0.255 is not a host address of 10.0.0.0/24");
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.0/24","colour":"red"})") == "network x: unknown key \"colour\"");
  CHECK(bad(R"({"bridge":"a-very-long-bridge-name","subnet":"10.0.0.0/24"})") ==
        "network x.bridge: \"a-very-long-bridge-name\" is not a valid interface name");
  for (const char* b : {"..", "br\\tx", "br%d", "a:b"})
    CHECK(bad(fmt::format(R"({{"bridge":"{}","subnet":"10.0.0.0/24"}})", b).c_str()).find("is not a valid interface name") !=
          std::string::npos);
  CHECK(bad(R"({"bridge":"b","subnet":"10.0.0.0/24","mtu":10})") ==
        "network x.mtu: must be a number between 576 and 65535");
  CHECK(valid_network_name("brig"));
  CHECK_FALSE(valid_network_name("../etc"));
  CHECK_FALSE(valid_network_name(""));
}

TEST_CASE("published ports", "[netns]") {
  auto p = parse_ports("8080:80/tcp,5353:53/udp,9000:9000");
  REQUIRE(p);
  REQUIRE(p->size() == 3);
  CHECK((*p)[0] == PortMap{8080, 80, "tcp"});
  CHECK((*p)[1] == PortMap{5353, 53, "udp"});
  CHECK((*p)[2] == PortMap{9000, 9000, "tcp"});
  CHECK(format_ports(*p) == "8080:80/tcp,5353:53/udp,9000:9000/tcp");
  CHECK(parse_ports("")->empty());
  for (const char* bad : {"80", "80:", ":80", "0:80", "70000:80", "80:80/sctp", "a:b", "80:80,", "80:1,80:2"})
    CHECK_FALSE(parse_ports(bad));
  CHECK(parse_ports("80:1/tcp,80:2/udp"));
  CHECK(parse_ports("1:2/icmp").error().msg ==
        "annotation io.brig.network.ports: \"1:2/icmp\": protocol must be tcp or udp "
        "(want hostPort:containerPort[/tcp|/udp])");
}

TEST_CASE("who gets brig networking", "[netns]") {
  spec::Config cfg;
  cfg.linux.emplace();
  cfg.linux->namespaces = {{"mount", std::nullopt}, {"network", std::nullopt}};
  CHECK(request_for(cfg)->empty());  // no annotation: nothing
  cfg.annotations[kNetworkAnnotation] = "lab";
  cfg.annotations[kPortsAnnotation] = "8080:80";
  auto r = request_for(cfg);
  REQUIRE(r);
  CHECK(r->network == "lab");
  CHECK(r->ports.size() == 1);
  // A netns given by path (podman, CRI) is never touched.
  cfg.linux->namespaces[1].path = "/run/netns/x";
  CHECK(request_for(cfg)->empty());
  // No network namespace at all: the host's network, untouched.
  cfg.linux->namespaces.pop_back();
  CHECK(request_for(cfg)->empty());
  // netDevices need a network namespace.
  cfg.linux->netDevices["dummy0"] = spec::NetDevice{"eth1"};
  CHECK(request_for(cfg).error().msg == "linux.netDevices: needs a network namespace (linux.namespaces)");
  cfg.linux->namespaces.push_back({"network", std::nullopt});
  r = request_for(cfg);
  CHECK(r->net_devices.size() == 1);
  cfg.annotations[kNetworkAnnotation] = "../x";
  CHECK_FALSE(request_for(cfg));
}

TEST_CASE("lease offsets skip network, gateway and broadcast", "[netns]") {
  Network n = default_network();
  n.subnet = *Cidr::parse("10.9.0.0/29", true);  // offsets 0..7
  n.gateway = n.subnet.host(1);
  CHECK(pick_offset(n, {}) == 2);
  CHECK(pick_offset(n, {2, 3}) == 4);
  CHECK(pick_offset(n, {2, 3, 4, 5, 6}) == std::nullopt);  // 7 is broadcast
  n.gateway = n.subnet.host(6);
  CHECK(pick_offset(n, {}) == 1);
  CHECK(pick_offset(n, {1, 2, 3, 4, 5}) == std::nullopt);

  std::vector<Lease> ls = {{2, "/run/brig/a", 10, 99}, {3, "/run/brig/b", 11, 100}};
  auto back = leases_from_json(leases_to_json(ls));
  REQUIRE(back);
  CHECK(*back == ls);
  CHECK_FALSE(leases_from_json("{}"));
  CHECK_FALSE(lease_alive(Lease{2, "/nonexistent/brig/state", 0, 0}));
}

TEST_CASE("attachment record and device names", "[netns]") {
  CHECK(host_dev_name("/run/brig/a").size() == 10);
  CHECK(host_dev_name("/run/brig/a") == host_dev_name("/run/brig/a"));
  CHECK(host_dev_name("/run/brig/a") != host_dev_name("/run/brig/b"));
  CHECK(host_dev_name("/x", "tp").substr(0, 2) == "tp");
  Attachment a;
  a.network = "brig";
  a.bridge = "brig0";
  a.host_dev = "vb00000001";
  a.owner = "/run/brig/a";
  a.ip = Cidr::parse("10.87.0.2/16");
  a.gateway = Ip::parse("10.87.0.1");
  a.ip6 = Cidr::parse("fd00::2/64");
  a.ports = *parse_ports("80:8080/udp");
  a.masquerade = true;
  a.mtu = 1500;
  auto b = attachment_from_json(to_json(a));
  REQUIRE(b);
  CHECK(b->ip == a.ip);
  CHECK(b->ip6 == a.ip6);
  CHECK(b->gateway == a.gateway);
  CHECK_FALSE(b->gateway6);
  CHECK(b->ports == a.ports);
  CHECK(b->host_dev == a.host_dev);
  CHECK_FALSE(b->host_dev_made);
  CHECK(b->masquerade);
}

TEST_CASE("nftables scripts", "[netns][nft]") {
  std::string t = nft::table_script();
  CHECK(t.find("add table ip brig\n") == 0);
  CHECK(t.find("dnat ip to meta l4proto . th dport map @ports") != std::string::npos);
  CHECK(t.find("ip saddr @masq masquerade") != std::string::npos);
  auto ip = *Ip::parse("10.87.0.2");
  CHECK(nft::add_script(ip, *parse_ports("8080:80,53:53/udp"), true, "brig0") ==
        "create element ip brig ports { tcp . 8080 : 10.87.0.2 . 80 }\n"
        "create element ip brig ports { udp . 53 : 10.87.0.2 . 53 }\n"
        "add element ip brig masq { 10.87.0.2 }\n"
        "add element ip brig bridges { \"brig0\" }\n");
  CHECK(nft::add_script(ip, {}, false, "brig0").empty());
  // put back by `network reload`: `add`, which leaves an element that is there
  CHECK(nft::add_script(ip, *parse_ports("8080:80"), false, "brig0", true) ==
        "add element ip brig ports { tcp . 8080 : 10.87.0.2 . 80 }\n");
  // the table script runs again as it is: the rules are rewritten, never doubled
  CHECK(t.find("flush chain ip brig prerouting\n") < t.find("add rule"));
  CHECK(t.find("flush chain ip brig postrouting\n") < t.find("add rule"));
  std::string t6 = nft::table_script(AF_INET6);
  CHECK(t6.find("add table ip6 brig\n") == 0);
  CHECK(t6.find("type inet_proto . inet_service : ipv6_addr . inet_service") != std::string::npos);
  CHECK(t6.find("dnat ip6 to meta l4proto . th dport map @ports") != std::string::npos);
  CHECK(t6.find("ip6 saddr @masq masquerade") != std::string::npos);
  auto ip6 = *Ip::parse("fd00:67::2");
  CHECK(nft::add_script(ip6, *parse_ports("8080:80"), false, "br") ==
        "create element ip6 brig ports { tcp . 8080 : fd00:67::2 . 80 }\n");
  std::string ports6 = R"({"nftables": [{"map": {"family": "ip6", "name": "ports",
    "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["fd00:67::2", 80]}]]}}]})";
  CHECK(nft::delete_script(ip6, ports6, "{}") == "delete element ip6 brig ports { tcp . 8080 }\n");
  std::string ports = R"({"nftables": [{"metainfo": {}}, {"map": {"family": "ip", "name": "ports", "table": "brig",
    "elem": [[{"concat": ["udp", 53]}, {"concat": ["10.87.0.3", 53]}],
             [{"concat": ["tcp", 8080]}, {"concat": ["10.87.0.2", 80]}]]}}]})";
  std::string masq = R"({"nftables": [{"set": {"name": "masq", "elem": ["10.87.0.2", "10.87.0.3"]}}]})";
  CHECK(nft::delete_script(ip, ports, masq) ==
        "delete element ip brig ports { tcp . 8080 }\n"
        "delete element ip brig masq { 10.87.0.2 }\n");
  CHECK(nft::delete_script(*Ip::parse("10.87.0.9"), ports, masq).empty());
  CHECK(nft::delete_script(ip, "garbage", "{}").empty());
  CHECK(nft::element_count(ports) == 2);
  CHECK(nft::element_count(R"({"nftables": [{"set": {"name": "masq"}}]})") == 0);
}

TEST_CASE("anti-spoofing guard: MACs and nftables scripts", "[netns][nft]") {
  CHECK(mac_for("/run/brig/a") == mac_for("/run/brig/a"));
  CHECK(mac_for("/run/brig/a") != mac_for("/run/brig/b"));
  // 52:54: and the 8 hex digits of the device names' hash
  CHECK(mac_for("/run/brig/a") == "52:54:" + host_dev_name("/run/brig/a", "").substr(0, 2) + ":" +
                                      host_dev_name("/run/brig/a", "").substr(2, 2) + ":" +
                                      host_dev_name("/run/brig/a", "").substr(4, 2) + ":" +
                                      host_dev_name("/run/brig/a", "").substr(6, 2));
  std::string t = nft::guard_table_script();
  CHECK(t.find("add table bridge brig\n") == 0);
  CHECK(t.find("type filter hook prerouting priority -200 ; policy accept ;") != std::string::npos);
  // the rules are rewritten on every run, in the same transaction: never twice
  CHECK(t.find("flush chain bridge brig guard\n") < t.find("add rule"));
  // unguarded ports pass; a guarded one only with its own MAC and addresses
  CHECK(t.find("guard iifname != @ports accept\n") != std::string::npos);
  for (const char* rule : {"iifname . ether saddr != @macs drop", "ether type != { arp, ip, ip6 } drop",
                           "iifname . arp saddr ether != @macs drop", "iifname . arp saddr ip != @v4 drop",
                           "iifname . ip saddr != @v4 drop", "ip6 saddr != :: iifname . ip6 saddr != @v6 drop",
                           "icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } drop",
                           "icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @na6 drop"})
    CHECK(t.find(rule) != std::string::npos);
  CHECK(t.find("fe80::/10") == std::string::npos);  // no link-local address but its own
  nft::Guard g{"vb00000001", "52:54:00:00:00:01", Ip::parse("10.87.0.2"), Ip::parse("fd00::2")};
  std::string add = nft::guard_add_script(g);
  // the link-local address of 52:54:00:00:00:01 (EUI-64): fe80::5054:ff:fe00:1
  CHECK(add ==
        "add element bridge brig ports { \"vb00000001\" }\n"
        "add element bridge brig macs { \"vb00000001\" . 52:54:00:00:00:01 }\n"
        "add element bridge brig v4 { \"vb00000001\" . 10.87.0.2 }\n"
        "add element bridge brig v6 { \"vb00000001\" . fe80::5054:ff:fe00:1 }\n"
        "add element bridge brig na6 { \"vb00000001\" . 0xfe80000000000000505400fffe000001 }\n"
        "add element bridge brig v6 { \"vb00000001\" . fd00::2 }\n"
        "add element bridge brig na6 { \"vb00000001\" . 0xfd000000000000000000000000000002 }\n");
  // removal adds first: idempotent in one transaction
  std::string del = nft::guard_remove_script(g);
  CHECK(del.find(add) == 0);
  CHECK(del.find("delete element bridge brig na6 { \"vb00000001\" . 0xfd000000000000000000000000000002 }\n") !=
        std::string::npos);
  g.v6.reset();
  CHECK(nft::guard_add_script(g).find("fd00::2") == std::string::npos);
  CHECK(nft::guard_add_script(g).find("fe80::5054:ff:fe00:1") != std::string::npos);
}

// The kernel-facing part, in a throwaway network namespace of this process
// (entered with unshare, left with setns): nothing touches the host's.
namespace {
struct ThrowawayNetns {
  int self = -1;
  bool ok = false;
  ThrowawayNetns() {
    self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ok = self >= 0 && ::unshare(CLONE_NEWNET) == 0;
  }
  ~ThrowawayNetns() {
    if (ok) ::setns(self, CLONE_NEWNET);
    if (self >= 0) ::close(self);
  }
};
}  // namespace

TEST_CASE("rtnetlink against the kernel, in a throwaway netns", "[netns][kernel]") {
  if (::geteuid() != 0) {
    WARN("needs root: skipped");
    return;
  }
  ThrowawayNetns tn;
  REQUIRE(tn.ok);
  auto s = Socket::open();
  REQUIRE(s);
  REQUIRE(s->call(new_bridge("brt0", 1400)));
  auto dup = s->call(new_bridge("brt0", 1400));
  REQUIRE_FALSE(dup);
  CHECK(dup.error().msg == "netlink: add bridge brt0: file exists");
  auto br = s->must_link("brt0");
  REQUIRE(br);
  CHECK(br->kind == "bridge");
  CHECK(br->mtu == 1400);
  CHECK_FALSE(br->up());
  REQUIRE(s->call(add_addr(br->index, *Cidr::parse("10.5.0.1/24"), 0, "brt0")));
  REQUIRE(s->call(add_addr(br->index, *Cidr::parse("fd00:5::1/64"), IFA_F_NODAD, "brt0")));
  REQUIRE(s->call(set_link(br->index, LinkChange{.up = true}, "brt0")));
  CHECK(s->must_link("brt0")->up());
  auto a4 = s->addrs(AF_INET, br->index);
  REQUIRE(a4);
  REQUIRE(a4->size() == 1);
  CHECK((*a4)[0].cidr.str() == "10.5.0.1/24");

  // A veth whose peer is born in a second namespace (by fd), then the host end on the bridge.
  int host_ns = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  REQUIRE(::unshare(CLONE_NEWNET) == 0);
  int inner_ns = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  REQUIRE(::setns(host_ns, CLONE_NEWNET) == 0);
  REQUIRE(s->call(new_veth("vbt0", VethPeer{.name = "eth0", .netns_fd = inner_ns}, 1400)));
  auto v = s->must_link("vbt0");
  REQUIRE(v);
  CHECK(v->kind == "veth");
  REQUIRE(s->call(set_link(v->index, LinkChange{.master = br->index}, "vbt0")));
  REQUIRE(s->call(set_link(v->index, LinkChange{.up = true}, "vbt0")));
  CHECK(s->must_link("vbt0")->master == br->index);
  CHECK_FALSE(*s->link("eth0"));  // never existed here

  auto in = Socket::open_in(inner_ns);
  REQUIRE(in);
  auto eth = in->must_link("eth0");
  REQUIRE(eth);
  REQUIRE(in->call(set_link(eth->index, LinkChange{.up = true}, "eth0")));
  REQUIRE(in->call(add_addr(eth->index, *Cidr::parse("10.5.0.2/24"), 0, "eth0")));
  REQUIRE(in->call(add_route(Route{AF_INET, std::nullopt, Ip::parse("10.5.0.1"), eth->index}, "eth0")));
  auto again = in->call(add_route(Route{AF_INET, std::nullopt, Ip::parse("10.5.0.1"), eth->index}, "eth0"));
  REQUIRE_FALSE(again);
  CHECK(again.error().msg == "netlink: add route default via 10.5.0.1 dev eth0: file exists");
  // rename and move back by pid (ours: the namespace we are in)
  REQUIRE(in->call(set_link(eth->index, LinkChange{.up = false}, "eth0")));
  REQUIRE(in->call(set_link(eth->index, LinkChange{.name = "moved0", .netns_pid = ::getpid()}, "eth0")));
  CHECK(*s->link("moved0"));
  CHECK_FALSE(*in->link("eth0"));

  // Deleting one end takes the peer with it.
  REQUIRE(s->call(del_link("vbt0")));
  CHECK_FALSE(*s->link("moved0"));
  auto gone = s->call(del_link("vbt0"));
  REQUIRE_FALSE(gone);
  CHECK(gone.error().err == ENODEV);
  CHECK(gone.error().msg == "netlink: delete link vbt0: no such device");
  auto ml = s->must_link("nope0");
  CHECK(ml.error().msg == "netlink: get link nope0: no such device");
  ::close(inner_ns);
  ::close(host_ns);
}

TEST_CASE("lo of another process's new netns, up in raw syscalls", "[netns][kernel]") {
  if (::geteuid() != 0) {
    WARN("needs root: skipped");
    return;
  }
  // A child in a new network namespace, alive until `hold` closes.
  int ready[2], hold[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    ::close(hold[1]);
    char c = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    (void)::write(ready[1], &c, 1);
    (void)::read(hold[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(hold[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  REQUIRE(pidfd >= 0);
  auto own = std::filesystem::read_symlink("/proc/thread-self/ns/net");
  auto lo_up = [&] {
    auto in = Socket::open_in(Fd(::open(fmt::format("/proc/{}/ns/net", pid).c_str(), O_RDONLY | O_CLOEXEC)));
    REQUIRE(in);
    auto lo = in->must_link("lo");
    REQUIRE(lo);
    return lo->up();
  };
  CHECK_FALSE(lo_up());
  SECTION("through the pidfd") {
    RawLoopbackUp r;
    REQUIRE(r.prepare());
    r.run(pidfd, 0);  // no pid: the /proc fallback would fail
    CHECK(r.outcome(pid));
    CHECK(lo_up());
  }
  SECTION("through /proc/PID/ns/net, as before Linux 5.8 (a pidfd setns refuses)") {
    RawLoopbackUp r;
    REQUIRE(r.prepare());
    r.run(-1, pid);
    CHECK(r.outcome(pid));
    CHECK(lo_up());
  }
  CHECK(std::filesystem::read_symlink("/proc/thread-self/ns/net") == own);
  ::close(hold[1]);
  ::waitpid(pid, nullptr, 0);
  // The namespace gone: the step and the errno, and we are still in ours.
  RawLoopbackUp gone;
  REQUIRE(gone.prepare());
  gone.run(-1, pid);
  auto o = gone.outcome(pid);
  REQUIRE_FALSE(o);
  CHECK(o.error().msg ==
        fmt::format("network namespace of init {}: open /proc/{}/ns/net: no such file or directory", pid, pid));
  CHECK(std::filesystem::read_symlink("/proc/thread-self/ns/net") == own);
  ::close(pidfd);
  ::close(ready[0]);
}

TEST_CASE("a tap for the microVM backend, on the bridge with a lease", "[netns][kernel]") {
  if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0) {
    WARN("needs root and /dev/net/tun: skipped");
    return;
  }
  char tmpl[] = "/tmp/brig-unit-tap.XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  std::string dir = tmpl;
  std::string owner = dir + "/owner";
  REQUIRE(::mkdir(owner.c_str(), 0700) == 0);
  ::setenv("BRIG_CONFIG_DIR", (dir + "/config").c_str(), 1);
  ::setenv("BRIG_NETWORK_STATE_DIR", (dir + "/state").c_str(), 1);
  {
    ThrowawayNetns tn;
    REQUIRE(tn.ok);
    auto a = attach_tap("brig", "tpunit0", owner, ::getpid());
    REQUIRE(a);
    CHECK(a->ip->str() == "10.87.0.2/16");
    CHECK(a->gateway->str() == "10.87.0.1");
    CHECK(a->host_dev_made);
    auto s = Socket::open();
    REQUIRE(s);
    auto tap = s->must_link("tpunit0");
    REQUIRE(tap);
    CHECK(tap->master == s->must_link("brig0")->index);
    CHECK(tap->up());
    auto held = LeaseStore(default_network()).load();
    REQUIRE(held);
    REQUIRE(held->size() == 1);
    CHECK((*held)[0].owner == owner);
    REQUIRE(teardown(owner));
    CHECK_FALSE(*s->link("tpunit0"));
    CHECK(LeaseStore(default_network()).load()->empty());
    CHECK_FALSE(load_attachment(owner)->has_value());
  }
  ::unsetenv("BRIG_CONFIG_DIR");
  ::unsetenv("BRIG_NETWORK_STATE_DIR");
  std::filesystem::remove_all(dir);
}
