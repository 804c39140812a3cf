#include "netns/lease.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runtime/core/sys.hpp"

namespace brig::netns {

std::optional<uint64_t> pick_offset(const Network& net, const std::set<uint64_t>& used) {
  uint64_t count = net.subnet.host_count();
  uint64_t gw = net.subnet.offset_of(net.gateway);
  std::optional<uint64_t> gw6;
  if (net.subnet6 && net.gateway6) gw6 = net.subnet6->offset_of(*net.gateway6);
  for (uint64_t off = 1; off + 1 < count; off++) {
    if (off == gw || (gw6 && off == *gw6) || used.count(off)) continue;
    return off;
  }
  return std::nullopt;
}

std::string leases_to_json(const std::vector<Lease>& l) {
  nlohmann::json a = nlohmann::json::array();
  for (auto& x : l)
    a.push_back({{"offset", x.offset}, {"owner", x.owner}, {"pid", x.pid}, {"pidStart", x.pid_start}});
  return nlohmann::json{{"leases", a}}.dump(1);
}

Result<std::vector<Lease>> leases_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  std::vector<Lease> out;
  try {
    if (j.is_discarded()) throw std::runtime_error("invalid JSON");
    for (auto& x : j.at("leases"))
      out.push_back(Lease{x.at("offset").get<uint64_t>(), x.at("owner").get<std::string>(), x.at("pid").get<pid_t>(),
                          x.at("pidStart").get<uint64_t>()});
  } catch (const std::exception& e) {
    return fail_msg("corrupt lease file: {}", e.what());
  }
  return out;
}

bool lease_alive(const Lease& l) {
  if (!sys::exists(l.owner)) return false;
  if (l.pid <= 0) return true;
  return sys::process_is(l.pid, l.pid_start);
}

Result<NetLock> lock_networks() {
  std::string dir = state_dir();
  TRY_VOID(sys::mkdir_p(dir, 0700));
  std::string path = dir + "/lock";
  TRY(Fd fd, sys::open(path, O_RDWR | O_CREAT, 0600));
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return fail_errno("lock {}", path);
  }
  return NetLock{std::move(fd)};
}

LeaseStore::LeaseStore(const Network& net) : net_(net), dir_(state_dir() + "/" + net.name) {}

Result<std::vector<Lease>> LeaseStore::load() const {
  auto text = sys::read_file(dir_ + "/leases.json");
  if (!text) {
    if (text.error().err == ENOENT) return std::vector<Lease>{};
    return fail(std::move(text.error()));
  }
  auto l = leases_from_json(*text);
  if (!l) return fail(std::move(l.error()).context(dir_ + "/leases.json"));
  return l;
}

Result<void> LeaseStore::save(const std::vector<Lease>& l) const {
  TRY_VOID(sys::mkdir_p(dir_, 0700));
  return sys::write_file_atomic(dir_ + "/leases.json", leases_to_json(l));
}

Result<Lease> LeaseStore::allocate(const std::string& owner, pid_t pid, uint64_t pid_start,
                                   std::vector<Lease>* reclaimed) const {
  TRY(auto leases, load());
  std::erase_if(leases, [&](const Lease& l) {
    if (l.owner == owner) return true;
    if (lease_alive(l)) return false;
    if (reclaimed) reclaimed->push_back(l);
    return true;
  });
  std::set<uint64_t> used;
  for (auto& l : leases) used.insert(l.offset);
  auto off = pick_offset(net_, used);
  if (!off) return fail_msg("network {}: no free address left in {}", net_.name, net_.subnet.str());
  Lease l{*off, owner, pid, pid_start};
  leases.push_back(l);
  TRY_VOID(save(leases));
  return l;
}

Result<void> LeaseStore::release(const std::string& owner) const {
  TRY(auto leases, load());
  size_t n = std::erase_if(leases, [&](const Lease& l) { return l.owner == owner; });
  if (!n) return {};
  return save(leases);
}

Result<bool> LeaseStore::holds(const std::string& owner) const {
  TRY(auto leases, load());
  return std::any_of(leases.begin(), leases.end(), [&](const Lease& l) { return l.owner == owner; });
}

Result<std::vector<Lease>> LeaseStore::reclaim() const {
  TRY(auto leases, load());
  std::vector<Lease> dead;
  for (auto& l : leases)
    if (!lease_alive(l)) dead.push_back(l);
  if (dead.empty()) return dead;
  std::erase_if(leases, [](const Lease& l) { return !lease_alive(l); });
  TRY_VOID(save(leases));
  return dead;
}

}  // namespace brig::netns
