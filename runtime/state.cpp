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
#include "spec/jdoc.hpp"

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
  j["config"] = r.config.empty() ? nlohmann::json() : nlohmann::json::parse(r.config);
  return j;
}

std::string state_text(const Record& r) {
  // Written directly: building a document of the fields and dumping it took
  // ~90k instructions a save, two saves a create. The keys come in the order
  // nlohmann's std::map keeps (to_json's), the config last. Strings go
  // through text::append_json_string: a path that is not UTF-8 (a cgroup
  // mount point, say) gets U+FFFD for its bad bytes, as Go's encoder writes
  // it, rather than an exception that would leave the container half made.
  std::string s;
  s.reserve(768 + r.config.size());
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
  s += r.config.empty() ? std::string_view("null") : std::string_view(r.config);
  s += '}';
  return s;
}

Result<std::unique_ptr<cgroup::Manager>> cgroup_of(const Record& r) {
  if (r.no_cgroup) return cgroup::none(r.cgroup_path, r.pid, r.pid_start, r.pid_ino, r.own_pidns);
  return cgroup::open_fs(r.cgroup_path, r.cgroup_hierarchies);
}

namespace {
using spec::jdoc::Node;

struct Corrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const Node& field(const Node& o, const char* key) {
  if (!o.is_object()) throw Corrupt(fmt::format("{}'s parent is not an object", key));
  const Node* v = o.find(key);
  if (!v) throw Corrupt(fmt::format("{} is missing", key));
  return *v;
}
const Node* optional_field(const Node& o, const char* key) { return o.find(key); }

std::string string_of(const Node& v, const char* key) {
  if (!v.is_string()) throw Corrupt(fmt::format("{} is not a string", key));
  return std::string(v.str());
}
bool bool_of(const Node& v, const char* key) {
  if (!v.is_boolean()) throw Corrupt(fmt::format("{} is not a boolean", key));
  return v.boolean();
}
std::vector<std::string> strings_of(const Node& v, const char* key) {
  if (!v.is_array()) throw Corrupt(fmt::format("{} is not an array", key));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const Node& e : v.elements()) out.push_back(string_of(e, key));
  return out;
}

// An integer field in range (a float such as 4.4e24 is not one: fuzz_state
// found that in a corrupt state.json).
template <class T>
T integer_of(const Node& v, const char* key) {
  if (!v.is_number_integer()) throw Corrupt(fmt::format("{} is not an integer", key));
  if (v.is_number_unsigned()) {
    if (v.u64() > static_cast<uint64_t>(std::numeric_limits<T>::max())) throw Corrupt(fmt::format("{} out of range", key));
    return static_cast<T>(v.u64());
  }
  auto i = v.i64();
  if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) || (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
    throw Corrupt(fmt::format("{} out of range", key));
  return static_cast<T>(i);
}
template <class T>
T integer_at(const Node& o, const char* key) {
  return integer_of<T>(field(o, key), key);
}

Record record_of(const Node& j) {
  Record r;
  r.id = string_of(field(j, "id"), "id");
  r.pid = integer_at<pid_t>(j, "pid");
  r.pid_start = integer_at<uint64_t>(j, "pidStart");
  r.phase = string_of(field(j, "phase"), "phase");
  r.bundle = string_of(field(j, "bundle"), "bundle");
  r.rootfs = string_of(field(j, "rootfs"), "rootfs");
  r.created = string_of(field(j, "created"), "created");
  if (const Node* a = optional_field(j, "annotations")) {
    if (!a->is_object()) throw Corrupt("annotations is not an object");
    // Of duplicate keys the last counts, as it did in nlohmann's document.
    std::map<std::string_view, const Node*> last;
    a->for_each_member([&](const Node::Member& m) { last[m.key] = &m.value; });
    for (auto [key, v] : last) r.annotations.emplace(key, string_of(*v, "annotations"));
  }
  r.cgroup_path = string_of(field(j, "cgroupPath"), "cgroupPath");
  r.own_pidns = bool_of(field(j, "ownPidns"), "ownPidns");
  // Its text as it stands in the file: the config is read only by the
  // commands that need it (exec, hooks, update).
  const Node* config = j.member("config");
  if (!config) throw Corrupt("config is missing");
  r.config = std::string(config->text());
  if (const Node* v = optional_field(j, "pidIno")) r.pid_ino = integer_of<uint64_t>(*v, "pidIno");
  if (const Node* v = optional_field(j, "noCgroup")) r.no_cgroup = bool_of(*v, "noCgroup");
  if (const Node* c = optional_field(j, "creator")) {
    r.creator = integer_at<pid_t>(*c, "pid");
    r.creator_start = integer_at<uint64_t>(*c, "pidStart");
  }
  if (const Node* t = optional_field(j, "intelRdt")) {
    r.rdt_tasks = string_of(field(*t, "tasks"), "intelRdt.tasks");
    r.rdt_remove = strings_of(field(*t, "remove"), "intelRdt.remove");
  }
  if (const Node* hs = optional_field(j, "cgroupHierarchies")) {
    if (!hs->is_array()) throw Corrupt("cgroupHierarchies is not an array");
    for (const Node& h : hs->elements()) {
      // Kept only for hierarchies mounted at their root (open_fs).
      cgroup::Hierarchy x{string_of(field(h, "mountpoint"), "cgroupHierarchies.mountpoint"), std::string(1, '/'),
                          strings_of(field(h, "controllers"), "cgroupHierarchies.controllers"),
                          bool_of(field(h, "v2"), "cgroupHierarchies.v2")};
      // Paths later commands make, remove and write under: only a clean
      // absolute one below /, and a cgroup2 mount has no v1 controllers.
      if (x.mountpoint.size() < 2 || x.mountpoint[0] != '/' || sys::abs_path(x.mountpoint) != x.mountpoint)
        throw Corrupt("cgroupHierarchies: mountpoint not a clean absolute path");
      if (x.v2 ? !x.controllers.empty() : x.controllers.empty())
        throw Corrupt("cgroupHierarchies: controllers do not match the hierarchy's version");
      r.cgroup_hierarchies.push_back(std::move(x));
    }
  }
  return r;
}

Result<Record> record_from_doc(const spec::jdoc::Doc& doc) {
  try {
    return record_of(doc.root());
  } catch (const Corrupt& e) {
    return fail_msg("corrupt state: {}", e.what());
  }
}
}  // namespace

Result<Record> record_from_text(std::string_view text) {
  auto doc = spec::jdoc::parse(text);
  if (!doc) return fail_msg("corrupt state: {}", doc.error().msg);
  return record_from_doc(*doc);
}

Result<Record> record_from_json(const nlohmann::json& j) {
  return record_from_text(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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
  std::string d = dir(id);
  int made = ::mkdir(d.c_str(), 0711);
  if (made < 0 && errno == ENOENT) {  // the root first, only when missing
    if (::mkdir(root_.c_str(), 0700) < 0 && errno != EEXIST) {
      if (errno != ENOENT) return fail_errno("mkdir {}", root_);
      TRY_VOID(sys::mkdir_p(root_, 0700));
    }
    made = ::mkdir(d.c_str(), 0711);
  }
  if (made < 0) {
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
  auto doc = spec::jdoc::parse(*text);
  if (!doc) return fail_msg("{}/state.json: corrupt state", dir(id));
  return record_from_doc(*doc);
}

Result<Record> Store::load(const Lock&, const std::string& id) const { return load_unlocked(id); }

Result<void> Store::save(const Record& r) const {
  return sys::write_file_atomic(dir(r.id) + "/state.json", state_text(r));
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
