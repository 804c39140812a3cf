#include "netns/passthrough.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "netns/netlink.hpp"
#include "runtime/core/rollback.hpp"
#include "runtime/core/sys.hpp"

namespace brig::netns::passthrough {

nlohmann::json to_json(const Record& r) {
  return {{"netns", r.netns}, {"device", r.dev}, {"qdiscMade", r.qdisc_made}, {"nsDev", r.ns_dev},
          {"nsIno", r.ns_ino}};
}

std::optional<Record> record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
  auto u64 = [&](const char* k) {
    return j.contains(k) && j[k].is_number_unsigned() ? j[k].get<uint64_t>() : uint64_t{0};
  };
  Record r{str("netns"), str("device"), j.contains("qdiscMade") && j["qdiscMade"].is_boolean() && j["qdiscMade"],
           u64("nsDev"), u64("nsIno")};
  if (r.netns.empty()) return std::nullopt;
  return r;
}

std::string record_path(const std::string& owner) { return owner + "/passthrough.json"; }

namespace {

// This thread inside another network namespace until it goes out of scope
// (brig is single-threaded where it does this).
class Entered {
 public:
  // `id`: where set, the namespace must be this one (st_dev, st_ino), or
  // nothing is entered (nullopt).
  static Result<std::optional<Entered>> enter(const std::string& path, std::pair<uint64_t, uint64_t>* id = nullptr) {
    TRY(Fd back, sys::open("/proc/thread-self/ns/net", O_RDONLY));
    TRY(Fd to, sys::open(path, O_RDONLY));
    struct stat st;
    if (::fstat(to.get(), &st) < 0) return fail_errno("vm: stat network namespace {}", path);
    if (id && id->second && (id->first != st.st_dev || id->second != st.st_ino)) return std::optional<Entered>{};
    if (id) *id = {st.st_dev, st.st_ino};
    if (::setns(to.get(), CLONE_NEWNET) < 0) return fail_errno("vm: enter network namespace {}", path);
    return std::optional<Entered>{Entered(std::move(back))};
  }
  Entered(Entered&&) = default;
  ~Entered() {
    if (back_ && ::setns(back_.get(), CLONE_NEWNET) < 0) {
      // Going on in the wrong namespace would touch it: nothing is safe.
      fmt::print(stderr, "vm: return to own network namespace: {}\n", Error::errno_text(errno));
      ::_exit(1);
    }
  }

 private:
  explicit Entered(Fd back) : back_(std::move(back)) {}
  Fd back_;
};

std::string mac_text(const Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

// The interface's first global address of a family, and the gateway of its
// default route.
Result<void> addressing(Socket& s, const Link& dev, int family, std::optional<Cidr>& ip, std::optional<Ip>& gw) {
  TRY(auto addrs, s.addrs(family, dev.index));
  for (const auto& a : addrs)
    if (a.scope == RT_SCOPE_UNIVERSE) {
      ip = a.cidr;
      break;
    }
  TRY(auto routes, s.routes(family));
  for (const auto& r : routes)
    if (!r.route.dst && r.route.gateway && r.route.oif == dev.index) {
      gw = r.route.gateway;
      break;
    }
  return {};
}

bool gone(const Error& e) { return e.err == ENOENT || e.err == ENODEV || e.err == EINVAL; }

}  // namespace

Result<Joined> start(const std::string& path, const std::string& owner) {
  Joined j;
  j.record.netns = path;
  std::pair<uint64_t, uint64_t> id{0, 0};
  TRY(auto in, Entered::enter(path, &id));
  j.record.ns_dev = id.first;
  j.record.ns_ino = id.second;
  TRY(Socket s, Socket::open());
  TRY(auto links, s.links());
  std::vector<Link> ifs;
  std::string names;
  for (auto& l : links) {
    if (l.name == kTap)
      return fail_msg("vm: network namespace {}: its interface is carried into another microVM already ({} exists)",
                      path, kTap);
    if ((l.flags & IFF_LOOPBACK) || !l.up() || !l.mac) continue;
    names += (names.empty() ? "" : ", ") + l.name;
    ifs.push_back(l);
  }
  if (ifs.empty()) return j;  // lo alone (podman --network=none): no NIC
  if (ifs.size() > 1)
    return fail_msg("vm: network namespace {} has {} interfaces up ({}): a microVM carries one", path, ifs.size(),
                    names);
  const Link& dev = ifs[0];
  j.mac = mac_text(*dev.mac);
  Attachment& a = j.addressing;
  a.owner = owner;
  a.host_dev = kTap;
  a.mtu = dev.mtu;
  TRY_VOID(addressing(s, dev, AF_INET, a.ip, a.gateway));
  TRY_VOID(addressing(s, dev, AF_INET6, a.ip6, a.gateway6));

  // The tap: made by this fd, gone with its last copy (QEMU's).
  TRY(Fd tun, sys::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  struct ifreq ifr {};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) < 0) return fail_errno("vm: create tap {} in {}", kTap, path);
  TRY(Link tap, s.must_link(kTap));
  TRY_VOID(s.call(set_link(tap.index, LinkChange{.up = true, .mtu = dev.mtu}, kTap)));

  // The record goes first: from here on the interface (not ours) changes.
  j.record.dev = dev.name;
  auto save = [&] { return sys::write_file_atomic(record_path(owner), to_json(j.record).dump()); };
  TRY_VOID(save());
  Rollback rb;
  rb.push([&] {
    (void)stop(j.record);
    ::unlink(record_path(owner).c_str());
  });
  auto q = s.call(add_ingress_qdisc(dev.index, dev.name));
  if (!q && q.error().err != EEXIST) return fail(std::move(q.error()));
  if (q) {
    j.record.qdisc_made = true;
    TRY_VOID(save());
  }
  TRY_VOID(s.call(add_ingress_qdisc(tap.index, kTap)));
  TRY_VOID(s.call(add_redirect(tap.index, dev.index, kPrio, kTap)));
  auto r = s.call(add_redirect(dev.index, tap.index, kPrio, dev.name));
  if (!r && r.error().err == EEXIST)
    return fail_msg("vm: network namespace {}: {} is carried into another microVM already", path, dev.name);
  if (!r) return fail(std::move(r.error()));
  j.tap = std::move(tun);
  rb.commit();
  return j;
}

Result<void> stop(const Record& r) {
  if (r.dev.empty()) return {};
  std::pair<uint64_t, uint64_t> id{r.ns_dev, r.ns_ino};
  auto in = Entered::enter(r.netns, &id);
  // The namespace went (its path gone, or an unmounted nsfs file: EINVAL),
  // and with it all of this; or the path names another namespace now.
  if (!in && (in.error().err == ENOENT || in.error().err == EINVAL)) return {};
  if (!in) return fail(std::move(in.error()));
  if (!*in) return {};
  TRY(Socket s, Socket::open());
  TRY(auto dev, s.link(r.dev));
  if (!dev) return {};
  if (auto d = s.call(del_filter(dev->index, kPrio, r.dev)); !d && !gone(d.error())) return fail(std::move(d.error()));
  if (r.qdisc_made)
    if (auto d = s.call(del_ingress_qdisc(dev->index, r.dev)); !d && !gone(d.error()))
      return fail(std::move(d.error()));
  return {};
}

Result<void> stop_recorded(const std::string& owner) {
  auto text = sys::read_file(record_path(owner));
  if (!text) return text.error().err == ENOENT ? Result<void>{} : fail(std::move(text.error()));
  auto r = record_from_json(nlohmann::json::parse(*text, nullptr, false));
  auto done = r ? stop(*r) : Result<void>{};
  if (::unlink(record_path(owner).c_str()) < 0 && errno != ENOENT)
    return fail_errno("remove {}", record_path(owner));
  return done;
}

}  // namespace brig::netns::passthrough
