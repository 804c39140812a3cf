#include "runtime/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "cgroup/manager.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"

namespace brig::runtime {

namespace {
// Every field of the record but its config, as a document (state_text
// writes the same fields as text, without one).
nlohmann::json fields_json(const Record& r) {
  // Member by member: nlohmann's nested initializer lists copy every value
  // they hold once more.
  nlohmann::json j = nlohmann::json::object();
  j["id"] = r.id;
  j["pid"] = r.pid;
  j["pidStart"] = r.pid_start;
  j["phase"] = r.phase;
  j["bundle"] = r.bundle;
  j["rootfs"] = r.rootfs;
  j["created"] = r.created;
  j["annotations"] = r.annotations;
  j["cgroupPath"] = r.cgroup_path;
  j["ownPidns"] = r.own_pidns;
  if (r.pid_ino) j["pidIno"] = r.pid_ino;
  if (r.no_cgroup) j["noCgroup"] = true;
  if (r.creator) {
    auto& c = j["creator"];
    c["pid"] = r.creator;
    c["pidStart"] = r.creator_start;
  }
  if (!r.rdt_tasks.empty()) {
    auto& t = j["intelRdt"];
    t["tasks"] = r.rdt_tasks;
    t["remove"] = r.rdt_remove;
  }
  if (!r.cgroup_hierarchies.empty()) {
    auto& hs = j["cgroupHierarchies"] = nlohmann::json::array();
    for (const auto& h : r.cgroup_hierarchies) {
      auto& e = hs.emplace_back(nlohmann::json::object());
      e["mountpoint"] = h.mountpoint;
      e["controllers"] = h.controllers;
      e["v2"] = h.v2;
    }
  }
  return j;
}
}  // namespace

nlohmann::json to_json(const Record& r) {
  nlohmann::json j = fields_json(r);
  j["config"] = r.config;
  return j;
}

std::string state_text(const Record& r, std::string_view config_text) {
  // Written directly: building a document of the fields and dumping it took
  // ~90k instructions a save, two saves a create. The keys come in the order
  // nlohmann's std::map keeps (to_json's), the config last. Strings go
  // through text::append_json_string: a path that is not UTF-8 (a cgroup
  // mount point, say) gets U+FFFD for its bad bytes, as Go's encoder writes
  // it, rather than an exception that would leave the container half made.
  std::string s;
  s.reserve(768 + (config_text.empty() ? 4096 : config_text.size()));
  auto key = [&s](std::string_view k) {  // every key here is plain ASCII
    s += ",\"";
    s += k;
    s += "\":";
  };
  auto str = [&s](std::string_view v) { text::append_json_string(s, v); };
  auto strs = [&](const std::vector<std::string>& v) {
    s += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) s += ',';
      str(v[i]);
    }
    s += ']';
  };
  auto num = [&s](auto v) { s += std::to_string(v); };
  s += "{\"annotations\":{";
  for (bool first = true; const auto& [k, v] : r.annotations) {
    if (!first) s += ',';
    first = false;
    str(k);
    s += ':';
    str(v);
  }
  s += '}';
  key("bundle");
  str(r.bundle);
  if (!r.cgroup_hierarchies.empty()) {
    key("cgroupHierarchies");
    s += '[';
    for (size_t i = 0; i < r.cgroup_hierarchies.size(); ++i) {
      const auto& h = r.cgroup_hierarchies[i];
      s += i ? ",{\"controllers\":" : "{\"controllers\":";
      strs(h.controllers);
      key("mountpoint");
      str(h.mountpoint);
      key("v2");
      s += h.v2 ? "true}" : "false}";
    }
    s += ']';
  }
  key("cgroupPath");
  str(r.cgroup_path);
  key("created");
  str(r.created);
  if (r.creator) {
    key("creator");
    s += "{\"pid\":";
    num(r.creator);
    key("pidStart");
    num(r.creator_start);
    s += '}';
  }
  key("id");
  str(r.id);
  if (!r.rdt_tasks.empty()) {
    key("intelRdt");
    s += "{\"remove\":";
    strs(r.rdt_remove);
    key("tasks");
    str(r.rdt_tasks);
    s += '}';
  }
  if (r.no_cgroup) {
    key("noCgroup");
    s += "true";
  }
  key("ownPidns");
  s += r.own_pidns ? "true" : "false";
  key("phase");
  str(r.phase);
  key("pid");
  num(r.pid);
  if (r.pid_ino) {
    key("pidIno");
    num(r.pid_ino);
  }
  key("pidStart");
  num(r.pid_start);
  key("rootfs");
  str(r.rootfs);
  key("config");
  if (config_text.empty())
    s += r.config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  else
    s += config_text;
  s += '}';
  return s;
}

Result<std::unique_ptr<cgroup::Manager>> cgroup_of(const Record& r) {
  if (r.no_cgroup) return cgroup::none(r.cgroup_path, r.pid, r.pid_start, r.pid_ino, r.own_pidns);
  return cgroup::open_fs(r.cgroup_path, r.cgroup_hierarchies);
}

namespace {
// An integer field in range. nlohmann's get<int>() of a float such as 4.4e24
// is a float-to-int conversion out of range (undefined behaviour; found by
// fuzz_state in a corrupt state.json): the type and range are checked first.
template <class T>
T integer_at(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (!v.is_number_integer()) throw std::invalid_argument(fmt::format("{} is not an integer", key));
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) throw std::out_of_range(fmt::format("{} out of range", key));
    return static_cast<T>(u);
  }
  auto i = v.get<int64_t>();
  if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) || (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
    throw std::out_of_range(fmt::format("{} out of range", key));
  return static_cast<T>(i);
}
}  // namespace

Result<Record> record_from_json(nlohmann::json j) {
  try {
    Record r;
    r.id = j.at("id").get<std::string>();
    r.pid = integer_at<pid_t>(j, "pid");
    r.pid_start = integer_at<uint64_t>(j, "pidStart");
    r.phase = j.at("phase").get<std::string>();
    r.bundle = j.at("bundle").get<std::string>();
    r.rootfs = j.at("rootfs").get<std::string>();
    r.created = j.at("created").get<std::string>();
    r.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    r.cgroup_path = j.at("cgroupPath").get<std::string>();
    r.own_pidns = j.at("ownPidns").get<bool>();
    r.config = std::move(j.at("config"));
    if (j.contains("pidIno")) r.pid_ino = integer_at<uint64_t>(j, "pidIno");
    if (auto it = j.find("noCgroup"); it != j.end()) r.no_cgroup = it->get<bool>();
    if (auto it = j.find("creator"); it != j.end()) {
      r.creator = integer_at<pid_t>(*it, "pid");
      r.creator_start = integer_at<uint64_t>(*it, "pidStart");
    }
    if (auto it = j.find("intelRdt"); it != j.end()) {
      r.rdt_tasks = it->at("tasks").get<std::string>();
      r.rdt_remove = it->at("remove").get<std::vector<std::string>>();
    }
    if (auto it = j.find("cgroupHierarchies"); it != j.end()) {
      for (const auto& h : it->get_ref<const nlohmann::json::array_t&>()) {
        // Kept only for hierarchies mounted at their root (open_fs).
        cgroup::Hierarchy x{h.at("mountpoint").get<std::string>(), std::string(1, '/'),
                            h.at("controllers").get<std::vector<std::string>>(), h.at("v2").get<bool>()};
        // Paths later commands make, remove and write under: only a clean
        // absolute one below /, and a cgroup2 mount has no v1 controllers.
        if (x.mountpoint.size() < 2 || x.mountpoint[0] != '/' || sys::abs_path(x.mountpoint) != x.mountpoint)
          throw std::invalid_argument("cgroupHierarchies: mountpoint not a clean absolute path");
        if (x.v2 ? !x.controllers.empty() : x.controllers.empty())
          throw std::invalid_argument("cgroupHierarchies: controllers do not match the hierarchy's version");
        r.cgroup_hierarchies.push_back(std::move(x));
      }
    }
    return r;
  } catch (const std::exception& e) {
    return fail_msg("corrupt state: {}", e.what());
  }
}

Result<void> validate_id(const std::string& id) {
  if (id.empty()) return fail_msg("container id cannot be empty");
  bool ok = id != "." && id != ".." && id.size() <= 1024 &&
            std::all_of(id.begin(), id.end(), [](unsigned char c) {
              return std::isalnum(c) || c == '_' || c == '+' || c == '-' || c == '.';
            });
  if (!ok) return fail_msg("invalid container ID format");
  return {};
}

namespace {
Result<void> lock(const Fd& fd, const std::string& path) {
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    return fail_errno("lock {}", path);
  }
  return {};
}
}  // namespace

Result<Store::Lock> Store::create(const std::string& id) const {
  TRY_VOID(validate_id(id));
  if (::mkdir(root_.c_str(), 0700) < 0 && errno != EEXIST) {
    if (errno != ENOENT) return fail_errno("mkdir {}", root_);
    TRY_VOID(sys::mkdir_p(root_, 0700));
  }
  std::string d = dir(id);
  if (::mkdir(d.c_str(), 0711) < 0) {
    if (errno == EEXIST) return fail_msg("container with given ID already exists");
    return fail_errno("mkdir {}", d);
  }
  TRY(Fd fd, sys::open(d, O_RDONLY | O_DIRECTORY));
  TRY_VOID(lock(fd, d));
  return Lock{std::move(fd)};
}

Result<Store::Lock> Store::open(const std::string& id) const {
  TRY_VOID(validate_id(id));
  std::string d = dir(id);
  int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return fail_msg("container does not exist");
    return fail_errno("open {}", d);
  }
  Fd f(fd);
  TRY_VOID(lock(f, d));
  // Removed while we waited for the lock?
  struct stat st;
  if (::fstat(f.get(), &st) < 0 || st.st_nlink == 0) return fail_msg("container does not exist");
  return Lock{std::move(f)};
}

Result<Record> Store::load_unlocked(const std::string& id) const {
  TRY_VOID(validate_id(id));
  auto text = sys::read_file(dir(id) + "/state.json");
  if (!text) {
    if (text.error().err == ENOENT) return fail_msg("container does not exist");
    return fail(std::move(text.error()));
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return fail_msg("{}/state.json: corrupt state", dir(id));
  return record_from_json(std::move(j));
}

Result<Record> Store::load(const Lock&, const std::string& id) const { return load_unlocked(id); }

Result<void> Store::save(const Record& r, std::string_view config_text) const {
  return sys::write_file_atomic(dir(r.id) + "/state.json", state_text(r, config_text));
}

Result<void> Store::remove(const std::string& id) const {
  // What brig keeps there: three syscalls instead of a directory walk.
  std::string d = dir(id);
  (void)::unlink((d + "/state.json").c_str());
  (void)::unlink(fifo(id).c_str());
  (void)::unlink((d + "/state.json.tmp").c_str());
  if (::rmdir(d.c_str()) == 0 || errno == ENOENT) return {};
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  if (ec) return fail_err(ec.value(), fmt::format("remove {}", dir(id)));
  return {};
}

std::vector<std::string> Store::ids() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(root_.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || !validate_id(n)) continue;
    if (sys::exists(root_ + "/" + n + "/state.json")) out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool process_alive(const Record& r) {
  if (r.pid <= 0) return false;
  return sys::process_is(r.pid, r.pid_start, r.pid_ino);
}

namespace {
// The brig that creates a container holds the lock on its directory until it
// is done; a "creating" record nobody holds is what a create that died
// half-way (SIGKILL, OOM) leaves behind. The lock alone is not enough: the
// init it cloned shares the locked open file until it closes its fds, so a
// brig killed just after the clone would look alive for a moment.
bool creator_running(const Store& store, const Record& r) {
  if (r.creator) {
    if (!sys::process_is(r.creator, r.creator_start)) return false;
  }
  const std::string& id = r.id;
  int fd = ::open(store.dir(id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  Fd f(fd);
  if (::flock(f.get(), LOCK_SH | LOCK_NB) < 0) return errno == EWOULDBLOCK;
  ::flock(f.get(), LOCK_UN);
  return false;
}
}  // namespace

std::string status_of(const Store& store, const Record& r, const cgroup::Manager* cg) {
  if (r.phase == "creating")
    return (process_alive(r) || r.pid == 0) && creator_running(store, r) ? "creating" : "stopped";
  if (!process_alive(r)) return "stopped";
  // A frozen container is paused, never running (runc checks the freezer first).
  if (cg) {
    if (cg->freezer_state() == cgroup::Freezer::frozen) return "paused";
  } else if (auto own = cgroup_of(r);
             own && (*own)->freezer_state() == cgroup::Freezer::frozen) {
    return "paused";
  }
  if (sys::exists(store.fifo(r.id))) return "created";
  return "running";
}

}  // namespace brig::runtime
