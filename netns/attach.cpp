#include "netns/attach.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "netns/lease.hpp"
#include "netns/netlink.hpp"
#include "netns/nft.hpp"
#include "netns/passthrough.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/raw.hpp"
#include "runtime/core/sys.hpp"

namespace brig::netns {

// ---- the record ---------------------------------------------------------------

nlohmann::json to_json(const Attachment& a) {
  nlohmann::json j = {{"network", a.network}, {"bridge", a.bridge}, {"hostDevice", a.host_dev},
                      {"hostDeviceMade", a.host_dev_made},
                      {"owner", a.owner},     {"mtu", a.mtu},       {"masquerade", a.masquerade},
                      {"ports", format_ports(a.ports)}};
  if (a.ip) j["ip"] = a.ip->str();
  if (a.ip6) j["ip6"] = a.ip6->str();
  if (a.gateway) j["gateway"] = a.gateway->str();
  if (a.gateway6) j["gateway6"] = a.gateway6->str();
  return j;
}

Result<Attachment> attachment_from_json(const nlohmann::json& j) {
  Attachment a;
  try {
    a.network = j.at("network").get<std::string>();
    a.bridge = j.at("bridge").get<std::string>();
    a.host_dev = j.at("hostDevice").get<std::string>();
    a.host_dev_made = j.at("hostDeviceMade").get<bool>();
    a.owner = j.at("owner").get<std::string>();
    a.mtu = j.at("mtu").get<uint32_t>();
    a.masquerade = j.at("masquerade").get<bool>();
    TRY(a.ports, parse_ports(j.at("ports").get<std::string>()));
    auto cidr = [&](const char* k, std::optional<Cidr>& out) {
      if (j.contains(k)) out = Cidr::parse(j[k].get<std::string>());
    };
    auto ip = [&](const char* k, std::optional<Ip>& out) {
      if (j.contains(k)) out = Ip::parse(j[k].get<std::string>());
    };
    cidr("ip", a.ip);
    cidr("ip6", a.ip6);
    ip("gateway", a.gateway);
    ip("gateway6", a.gateway6);
  } catch (const std::exception& e) {
    return fail_msg("corrupt network record: {}", e.what());
  }
  return a;
}

std::string record_path(const std::string& owner) { return owner + "/network.json"; }

std::string host_dev_name(const std::string& owner, const char* prefix) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : owner) h = (h ^ c) * 16777619u;
  return fmt::format("{}{:08x}", prefix, h);
}

std::string mac_for(const std::string& owner) {
  std::string h = host_dev_name(owner, "");
  return fmt::format("52:54:{}:{}:{}:{}", h.substr(0, 2), h.substr(2, 2), h.substr(4, 2), h.substr(6, 2));
}

namespace {

Mac mac_bytes(const std::string& s) {
  Mac m{};
  for (size_t i = 0; i < m.size(); i++) m[i] = static_cast<uint8_t>(std::stoul(s.substr(3 * i, 2), nullptr, 16));
  return m;
}

// What the container's bridge port may send.
nft::Guard guard_of(const std::string& dev, const std::string& owner, const std::optional<Cidr>& ip,
                    const std::optional<Cidr>& ip6) {
  nft::Guard g{dev, mac_for(owner), std::nullopt, std::nullopt};
  if (ip) g.v4 = ip->ip;
  if (ip6) g.v6 = ip6->ip;
  return g;
}

Result<void> save_attachment(const Attachment& a) {
  return sys::write_file_atomic(record_path(a.owner), to_json(a).dump());
}

std::string bridge_mark(const Network& net) { return state_dir() + "/" + net.name + "/bridge"; }

// The bridge, made if missing, with its gateway addresses, up.
Result<Link> ensure_bridge(Socket& s, const Network& net) {
  TRY(auto br, s.link(net.bridge));
  if (!br) {
    TRY_VOID(s.call(new_bridge(net.bridge, net.mtu)));
    TRY_VOID(sys::mkdir_p(state_dir() + "/" + net.name, 0700));
    TRY_VOID(sys::write_file_atomic(bridge_mark(net), net.bridge));
    TRY(br, s.link(net.bridge));
    if (!br) return fail_err(ENODEV, fmt::format("netlink: get link {}", net.bridge));
  } else if (br->kind != "bridge") {
    return fail_msg("network {}: device {} exists and is not a bridge", net.name, net.bridge);
  }
  auto ensure_addr = [&](const Cidr& want, uint32_t flags) -> Result<void> {
    TRY(auto have, s.addrs(want.ip.family, br->index));
    for (auto& a : have)
      if (a.cidr.ip == want.ip) return {};
    return s.call(add_addr(br->index, want, flags, net.bridge));
  };
  TRY_VOID(ensure_addr(Cidr{net.gateway, net.subnet.prefix}, 0));
  if (net.subnet6 && net.gateway6) TRY_VOID(ensure_addr(Cidr{*net.gateway6, net.subnet6->prefix}, IFA_F_NODAD));
  if (!br->up()) TRY_VOID(s.call(set_link(br->index, LinkChange{.up = true}, net.bridge)));
  return *br;
}

// The loopback of a new namespace is always its first device
// (LOOPBACK_IFINDEX): no lookup by name.
Result<void> loopback_up(Socket& s) { return s.call(set_link(1, LinkChange{.up = true}, "lo")); }

// Addresses and default routes on `dev` inside the container.
Result<void> configure_inside(Socket& in, const Attachment& a, const std::string& dev) {
  TRY_VOID(loopback_up(in));
  TRY(Link eth, in.must_link(dev));
  TRY_VOID(in.call(set_link(eth.index, LinkChange{.up = true}, dev)));
  if (a.ip) TRY_VOID(in.call(add_addr(eth.index, *a.ip, 0, dev)));
  if (a.ip6) TRY_VOID(in.call(add_addr(eth.index, *a.ip6, IFA_F_NODAD, dev)));
  // A gateway outside the address's subnet (a /32 with a link-local
  // gateway, as some CNI plugins hand out) is reachable on the link anyway.
  // (An IPv6 link-local gateway needs no saying so.)
  auto onlink = [](const std::optional<Cidr>& ip, const Ip& gw) {
    bool link_local6 = gw.family == AF_INET6 && gw.b[0] == 0xfe && (gw.b[1] & 0xc0) == 0x80;
    return !link_local6 && (!ip || !ip->contains(gw));
  };
  if (a.gateway)
    TRY_VOID(in.call(add_route(Route{AF_INET, std::nullopt, a.gateway, eth.index, onlink(a.ip, *a.gateway)}, dev)));
  if (a.gateway6)
    TRY_VOID(
        in.call(add_route(Route{AF_INET6, std::nullopt, a.gateway6, eth.index, onlink(a.ip6, *a.gateway6)}, dev)));
  return {};
}

// A reclaimed lease's address may still have published ports or masquerade
// (its container died without a delete): they go now, before the address is
// handed out again, so the new holder's rules are never the old one's.
void forget_nat(const Network& net, const std::vector<Lease>& dead) {
  if (dead.empty()) return;
  for (auto& l : dead) {
    // The dead one's guard: its port is gone with its netns (or its tap with
    // its shim's teardown), but the elements naming it are not.
    std::optional<Cidr> v6;
    if (net.subnet6) v6 = Cidr{net.subnet6->host(l.offset), net.subnet6->prefix};
    for (const char* prefix : {"vb", "tb"})
      if (auto r = nft::unguard(guard_of(host_dev_name(l.owner, prefix), l.owner,
                                         Cidr{net.subnet.host(l.offset), net.subnet.prefix}, v6));
          !r)
        log::warn(r.error().msg);
  }
  auto have = nft::table_exists();
  if (!have || !*have) return;
  for (auto& l : dead) {
    if (auto r = nft::remove(net.subnet.host(l.offset)); !r) log::warn(r.error().msg);
    if (!net.subnet6) continue;
    if (auto r = nft::remove(net.subnet6->host(l.offset)); !r) log::warn(r.error().msg);
  }
}

// Takes the lease and fills in the addresses of `a`.
Result<void> lease_for(Attachment& a, const Network& net, pid_t pid) {
  LeaseStore store(net);
  uint64_t start = sys::process_start_time(pid).value_or(0);
  std::vector<Lease> dead;
  TRY(Lease l, store.allocate(a.owner, pid, start, &dead));
  forget_nat(net, dead);
  a.ip = Cidr{net.subnet.host(l.offset), net.subnet.prefix};
  a.gateway = net.gateway;
  if (net.subnet6) {
    a.ip6 = Cidr{net.subnet6->host(l.offset), net.subnet6->prefix};
    a.gateway6 = net.gateway6;
  }
  return {};
}

Attachment plan_attachment(const Network& net, const std::string& owner, const std::string& dev,
                           const std::vector<PortMap>& ports) {
  Attachment a;
  a.network = net.name;
  a.bridge = net.bridge;
  a.host_dev = dev;
  a.owner = owner;
  a.mtu = net.mtu;
  a.ports = ports;
  a.masquerade = net.masquerade;
  return a;
}

Result<void> nat_for(const Attachment& a) {
  if (!a.ip || (a.ports.empty() && !a.masquerade)) return {};
  if (a.masquerade) TRY_CTX_VOID(sys::write_file("/proc/sys/net/ipv4/ip_forward", "1"), "network {}: enable forwarding", a.network);
  TRY_VOID(nft::add(a.ip->ip, a.ports, a.masquerade, a.bridge));
  if (!a.ip6) return {};
  if (a.masquerade)
    TRY_CTX_VOID(sys::write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1"), "network {}: enable IPv6 forwarding",
                 a.network);
  return nft::add(a.ip6->ip, a.ports, a.masquerade, a.bridge);
}

Result<void> attach_veth(const Request& rq, const std::string& owner, pid_t pid, BorrowedFd nsfd, Rollback& rb) {
  TRY(Network net, load_network(rq.network));
  TRY(NetLock lock, lock_networks());
  Attachment a = plan_attachment(net, owner, host_dev_name(owner), rq.ports);
  // The record goes first: whatever happens next, teardown knows what to look for.
  TRY_VOID(save_attachment(a));
  rb.push([owner] {
    if (auto r = teardown(owner); !r) log::warn(r.error().msg);
  });
  TRY(Socket host, Socket::open());
  TRY(Link br, ensure_bridge(host, net));
  TRY_VOID(lease_for(a, net, pid));
  TRY_VOID(save_attachment(a));
  BRIG_FAULT("network.after-lease");
  // The peer is born in the container's netns, named eth0: it never exists here.
  TRY_VOID(host.call(
      new_veth(a.host_dev, VethPeer{.name = "eth0", .mac = mac_bytes(mac_for(owner)), .netns_fd = nsfd.get()},
               net.mtu)));
  // Killed before this is saved, the veth still goes: its peer dies with the netns.
  a.host_dev_made = true;
  TRY_VOID(save_attachment(a));
  BRIG_FAULT("network.after-veth");
  // Guarded before it is on the bridge: no frame of it ever goes unchecked.
  TRY_VOID(nft::guard(guard_of(a.host_dev, owner, a.ip, a.ip6)));
  BRIG_FAULT("network.after-guard");
  TRY(Link hv, host.must_link(a.host_dev));
  TRY_VOID(host.call(set_link(hv.index, LinkChange{.master = br.index}, a.host_dev)));
  TRY_VOID(host.call(set_link(hv.index, LinkChange{.up = true}, a.host_dev)));
  BRIG_FAULT("network.after-bridge-port");
  TRY(Socket in, Socket::open_in(nsfd));
  TRY_VOID(configure_inside(in, a, "eth0"));
  BRIG_FAULT("network.after-address");
  TRY_VOID(nat_for(a));
  if (!a.ports.empty() || a.masquerade) {
    BRIG_FAULT("network.after-nft");
  }
  return {};
}

// linux.netDevices: move each named host device in, renamed as asked, with
// its permanent global addresses, and up (config-linux.md).
Result<void> move_devices(const std::map<std::string, spec::NetDevice>& devs, BorrowedFd nsfd) {
  TRY(Socket host, Socket::open());
  TRY(Socket in, Socket::open_in(nsfd));
  for (const auto& [name, d] : devs) {
    std::string target = d.name.value_or(name);
    auto l = host.link(name);
    if (!l) return fail(std::move(l.error()));
    if (!*l) return fail_msg("linux.netDevices: device {} not found", name);
    std::vector<Addr> keep;
    for (int fam : {AF_INET, AF_INET6}) {
      TRY(auto as, host.addrs(fam, (*l)->index));
      for (auto& a : as)
        if ((a.flags & IFA_F_PERMANENT) && a.scope == RT_SCOPE_UNIVERSE) keep.push_back(a);
    }
    TRY(auto before, in.links());
    std::set<int> old;
    for (auto& x : before) old.insert(x.index);
    TRY_VOID(host.call(set_link((*l)->index, LinkChange{.name = target, .netns_fd = nsfd.get()}, name)));
    // With a "%d" template the kernel picks the name: find the newcomer.
    std::optional<Link> moved;
    TRY(auto after, in.links());
    for (auto& x : after)
      if (!old.count(x.index) && (target.find('%') != std::string::npos || x.name == target)) moved = x;
    if (!moved) return fail_msg("linux.netDevices: {} vanished after the move", name);
    for (auto& a : keep)
      TRY_VOID(in.call(add_addr(moved->index, a.cidr, a.cidr.ip.family == AF_INET6 ? IFA_F_NODAD : 0, moved->name)));
    TRY_VOID(in.call(set_link(moved->index, LinkChange{.up = true}, moved->name)));
    BRIG_FAULT("network.after-device-move");
  }
  return {};
}

}  // namespace

Result<std::optional<Attachment>> load_attachment(const std::string& owner) {
  auto text = sys::read_file(record_path(owner));
  if (!text) {
    if (text.error().err == ENOENT) return std::optional<Attachment>{};
    return fail(std::move(text.error()));
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return fail_msg("{}: corrupt network record", record_path(owner));
  TRY(Attachment a, attachment_from_json(j));
  return a;
}

Result<void> loopback_up(BorrowedFd netns) {
  TRY(Socket s, Socket::open_in(netns));
  return loopback_up(s);
}

Result<void> RawLoopbackUp::prepare() {
  TRY(own_, sys::open("/proc/self/ns/net", O_RDONLY));
  auto* h = reinterpret_cast<nlmsghdr*>(msg_);
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 1;
  auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = 1;  // LOOPBACK_IFINDEX
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  len_ = h->nlmsg_len;
  return {};
}

namespace {
const char* const kOpen = "open";  // worded with the path by outcome()
}

void RawLoopbackUp::run(int pidfd, pid_t pid) noexcept {
  auto failed = [&](long rc, const char* step) {
    err_ = static_cast<int>(-rc);
    step_ = step;
  };
  long rc = raw::call(SYS_setns, pidfd, CLONE_NEWNET);
  if (rc == -EINVAL || rc == -EBADF) {
    // Before Linux 5.8 setns takes no pidfd: /proc/PID/ns/net, the path
    // written out by hand (no libc here).
    char num[24];
    const char* digits = raw::decimal(num + sizeof num - 1, static_cast<unsigned long>(pid));
    char path[48] = "/proc/";
    size_t n = 6;
    for (const char* t = digits; *t; t++) path[n++] = *t;
    for (const char* t = "/ns/net"; *t; t++) path[n++] = *t;
    path[n] = '\0';
    long fd = raw::call(SYS_openat, AT_FDCWD, raw::arg(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failed(fd, kOpen);
    rc = raw::call(SYS_setns, fd, CLONE_NEWNET);
    (void)raw::call(SYS_close, fd);
  }
  if (rc < 0) return failed(rc, "setns");
  long sock = raw::call(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  rc = raw::call(SYS_setns, own_.get(), CLONE_NEWNET);
  if (rc < 0) {
    if (sock >= 0) (void)raw::call(SYS_close, sock);
    return failed(rc, "setns back into the runtime's own");
  }
  if (sock < 0) return failed(sock, "netlink: socket");
  struct sockaddr_nl kernel {};
  kernel.nl_family = AF_NETLINK;
  rc = raw::call(SYS_sendto, sock, raw::arg(msg_), len_, 0, raw::arg(&kernel), sizeof kernel);
  alignas(8) unsigned char ack[256];
  while (rc >= 0) {
    rc = raw::call(SYS_recvfrom, sock, raw::arg(ack), sizeof ack, 0, 0, 0);
    if (rc == -EINTR) rc = 0;
    else if (rc >= static_cast<long>(NLMSG_LENGTH(sizeof(nlmsgerr)))) {
      auto* h = reinterpret_cast<const nlmsghdr*>(ack);
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != 1) continue;
      rc = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      break;
    } else if (rc >= 0) {
      rc = -EPROTO;
    }
  }
  (void)raw::call(SYS_close, sock);
  if (rc < 0) failed(rc, "netlink: set up lo");
}

Result<void> RawLoopbackUp::outcome(pid_t pid) const {
  if (!step_) return {};
  std::string step = step_ == kOpen ? fmt::format("open /proc/{}/ns/net", pid) : std::string(step_);
  return fail(Error::sys(err_, step).context(fmt::format("network namespace of init {}", pid)));
}

Result<void> setup(const Request& rq, const std::string& owner, pid_t pid, Rollback& rb) {
  if (rq.empty()) return {};
  TRY(Fd nsfd, sys::open(fmt::format("/proc/{}/ns/net", pid), O_RDONLY));
  if (rq.attach()) TRY_VOID(attach_veth(rq, owner, pid, nsfd, rb));
  if (!rq.net_devices.empty()) TRY_VOID(move_devices(rq.net_devices, nsfd));
  return {};
}

Result<void> teardown(const std::string& owner) {
  // A microVM's pass-through of a namespace it was given (no lease, no lock).
  // Never in the way of a delete: what is left is named in the warning.
  if (auto r = passthrough::stop_recorded(owner); !r) log::warn(r.error().msg);
  TRY(auto a, load_attachment(owner));
  if (!a) return {};
  TRY(NetLock lock, lock_networks());
  std::optional<Error> first;
  auto note = [&](Result<void> r) {
    if (!r && !first) first = std::move(r.error());
  };
  // Deleting the host end takes the peer with it. A device of that name that
  // brig did not make (the create failed on it) is not ours to delete.
  if (a->host_dev_made) {
    auto s = Socket::open();
    auto r = s ? s->call(del_link(a->host_dev)) : Result<void>(fail(std::move(s.error())));
    if (!r && r.error().err != ENODEV) note(std::move(r));
  }
  if (!first) {
    BRIG_FAULT("network.teardown-after-veth");
  }
  // Keyed by the port's name, which is this container's alone (a missing
  // table, or no nft at all, means no guard was ever made). The port is gone
  // by now: elements left behind guard nothing, so a failure only warns.
  if (auto r = nft::unguard(guard_of(a->host_dev, a->owner, a->ip, a->ip6)); !r) log::warn(r.error().msg);
  Network n;
  n.name = a->network;
  LeaseStore store(n);
  // A lease already reclaimed took its nft elements along: the address may be
  // someone else's by now, and so are the elements mapping to it.
  auto held = store.holds(owner);
  if (!held) note(fail(std::move(held.error())));
  if (held && *held && (!a->ports.empty() || a->masquerade)) {
    if (a->ip) note(nft::remove(a->ip->ip));
    if (a->ip6) note(nft::remove(a->ip6->ip));
  }
  if (!first) {
    BRIG_FAULT("network.teardown-after-nft");
  }
  note(store.release(owner));
  if (first) return fail(std::move(*first));
  if (::unlink(record_path(owner).c_str()) < 0 && errno != ENOENT) return fail_errno("remove {}", record_path(owner));
  return {};
}

Result<Attachment> attach_tap(const std::string& network, const std::string& tap, const std::string& owner,
                              pid_t pid, const std::vector<PortMap>& ports) {
  if (tap.empty() || tap.size() >= IFNAMSIZ) return fail_msg("tap device name \"{}\" is not valid", tap);
  TRY(Network net, load_network(network));
  Rollback rb;  // before the lock: teardown takes the lock again, after this one is released
  TRY(NetLock lock, lock_networks());
  Attachment a = plan_attachment(net, owner, tap, ports);
  TRY_VOID(save_attachment(a));
  rb.push([owner] { (void)teardown(owner); });
  TRY(Socket host, Socket::open());
  TRY(Link br, ensure_bridge(host, net));
  TRY_VOID(lease_for(a, net, pid));
  TRY_VOID(save_attachment(a));
  {
    TRY(Fd tun, sys::open("/dev/net/tun", O_RDWR));
    struct ifreq ifr {};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
    if (::ioctl(tun.get(), TUNSETIFF, &ifr) < 0) return fail_errno("create tap {}", tap);
    a.host_dev_made = true;
    TRY_VOID(save_attachment(a));
    if (::ioctl(tun.get(), TUNSETPERSIST, 1) < 0) return fail_errno("make tap {} persistent", tap);
  }
  TRY_VOID(nft::guard(guard_of(tap, owner, a.ip, a.ip6)));
  TRY(Link t, host.must_link(tap));
  TRY_VOID(host.call(set_link(t.index, LinkChange{.master = br.index, .mtu = net.mtu}, tap)));
  TRY_VOID(host.call(set_link(t.index, LinkChange{.up = true}, tap)));
  TRY_VOID(nat_for(a));
  rb.commit();
  return a;
}

Result<void> configure_here(const Attachment& a, const std::string& dev) {
  TRY(Socket s, Socket::open());
  return configure_inside(s, a, dev);
}

Result<NetworkStatus> status(const Network& net) {
  NetworkStatus st;
  st.net = net;
  TRY(NetLock lock, lock_networks());
  TRY(auto leases, LeaseStore(net).load());
  for (auto& l : leases) {
    NetworkStatus::Held h{l, Cidr{net.subnet.host(l.offset), net.subnet.prefix}, std::nullopt, lease_alive(l)};
    if (net.subnet6) h.ip6 = Cidr{net.subnet6->host(l.offset), net.subnet6->prefix};
    st.leases.push_back(std::move(h));
  }
  TRY(Socket s, Socket::open());
  TRY(auto br, s.link(net.bridge));
  st.bridge_exists = br.has_value();
  st.bridge_up = br && br->up();
  st.bridge_made_by_brig = sys::exists(bridge_mark(net));
  return st;
}

nlohmann::json to_json(const NetworkStatus& s) {
  nlohmann::json j = to_json(s.net);
  j["bridgeExists"] = s.bridge_exists;
  j["bridgeUp"] = s.bridge_up;
  j["bridgeMadeByBrig"] = s.bridge_made_by_brig;
  j["leases"] = nlohmann::json::array();
  for (auto& h : s.leases) {
    nlohmann::json l = {{"ip", h.ip.str()}, {"owner", h.lease.owner}, {"pid", h.lease.pid}, {"alive", h.alive}};
    if (h.ip6) l["ip6"] = h.ip6->str();
    j["leases"].push_back(std::move(l));
  }
  return j;
}

Result<void> prune(std::vector<std::string>& removed) {
  TRY(auto nets, list_networks());
  TRY(NetLock lock, lock_networks());
  TRY(Socket s, Socket::open());
  TRY(auto links, s.links());
  for (auto& net : nets) {
    LeaseStore store(net);
    TRY(auto dead, store.reclaim());
    forget_nat(net, dead);
    if (!dead.empty()) removed.push_back(fmt::format("network {}: {} stale lease(s)", net.name, dead.size()));
    TRY(auto live, store.load());
    if (!live.empty() || !sys::exists(bridge_mark(net))) continue;
    auto br = std::find_if(links.begin(), links.end(), [&](const Link& l) { return l.name == net.bridge; });
    if (br != links.end()) {
      bool ports = std::any_of(links.begin(), links.end(), [&](const Link& l) { return l.master == br->index; });
      if (ports) continue;
      TRY_VOID(s.call(del_link(net.bridge)));
      removed.push_back(fmt::format("network {}: bridge {}", net.name, net.bridge));
    }
    ::unlink(bridge_mark(net).c_str());
    ::unlink((store.dir() + "/leases.json").c_str());
    ::rmdir(store.dir().c_str());
  }
  // Without nft installed there is no table to drop.
  auto dropped = nft::drop_table_if_unused();
  if (dropped && *dropped) removed.push_back(fmt::format("nftables table(s) {}", nft::kTable));
  if (!dropped && dropped.error().msg.find("exec ") == std::string::npos) return fail(std::move(dropped.error()));
  return {};
}

Result<void> reload(std::vector<std::string>& done) {
  TRY(auto nets, list_networks());
  TRY(NetLock lock, lock_networks());
  std::vector<nft::Nat> nat;
  for (auto& net : nets) {
    LeaseStore store(net);
    TRY(auto dead, store.reclaim());
    forget_nat(net, dead);
    TRY(auto live, store.load());
    size_t guarded = 0, nats = 0;
    for (auto& l : live) {
      TRY(auto a, load_attachment(l.owner));
      if (!a || a->network != net.name) continue;  // its record is gone: nothing to go by
      if (a->host_dev_made) {
        TRY_VOID(nft::guard(guard_of(a->host_dev, a->owner, a->ip, a->ip6)));
        guarded++;
      }
      if (a->ports.empty() && !a->masquerade) continue;
      for (const auto* c : {&a->ip, &a->ip6})
        if (*c) nat.push_back({(*c)->ip, a->ports, a->masquerade, a->bridge});
      nats++;
    }
    if (!live.empty())
      done.push_back(fmt::format("network {}: {} port(s) guarded, NAT of {} container(s) restored", net.name,
                                 guarded, nats));
  }
  // Each family's table made or its rules rewritten, and every element put
  // back: whatever a flush (of the ruleset, a table or a chain) took.
  for (int family : {AF_INET, AF_INET6}) {
    bool any = std::any_of(nat.begin(), nat.end(), [&](const nft::Nat& n) { return n.ip.family == family; });
    if (any) TRY_VOID(nft::restore(family, nat));
  }
  return {};
}

}  // namespace brig::netns
