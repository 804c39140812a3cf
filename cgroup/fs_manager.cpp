#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "cgroup/manager.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cgroup {

std::vector<Hierarchy> parse_mountinfo(const std::string& mountinfo) {
  std::vector<Hierarchy> out;
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 7 || dash == f.end() || dash + 3 > f.end()) continue;
    const std::string& fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    Hierarchy h;
    h.root = f[3];
    h.mountpoint = f[4];
    h.v2 = fstype == "cgroup2";
    if (!h.v2) {
      std::string opts = *(dash + 3);
      std::stringstream os(opts);
      std::string o;
      while (std::getline(os, o, ',')) {
        if (o == "rw" || o == "ro" || o == "clone_children" || o == "noprefix" ||
            o.rfind("release_agent=", 0) == 0 || o == "xattr" || o == "cpuset_v2_mode")
          continue;
        h.controllers.push_back(o);
      }
      if (h.controllers.empty()) continue;
    }
    // The same hierarchy may be mounted more than once: keep the first.
    bool dup = std::any_of(out.begin(), out.end(), [&](const Hierarchy& x) {
      return x.v2 == h.v2 && x.controllers == h.controllers;
    });
    if (!dup) out.push_back(std::move(h));
  }
  return out;
}

Layout layout_of(const std::vector<Hierarchy>& hs) {
  bool v1 = std::any_of(hs.begin(), hs.end(), [](auto& h) { return !h.v2; });
  bool v2 = std::any_of(hs.begin(), hs.end(), [](auto& h) { return h.v2; });
  if (v1 && v2) return Layout::hybrid;
  return v1 ? Layout::v1 : Layout::v2;
}

std::string resolve_path(const std::optional<std::string>& cgroups_path, const std::string& id) {
  if (!cgroups_path || cgroups_path->empty()) return "/brig/" + id;
  if ((*cgroups_path)[0] == '/') return sys::clean_path(*cgroups_path);
  return sys::clean_path("/brig/" + *cgroups_path);
}

namespace {

class FsManager final : public Manager {
 public:
  FsManager(std::string path, std::vector<Hierarchy> hs) : path_(std::move(path)), hs_(std::move(hs)) {}

  std::vector<std::string> dirs() const override {
    std::vector<std::string> d;
    for (auto& h : hs_) d.push_back(h.mountpoint + path_);
    return d;
  }
  const std::vector<Hierarchy>& hierarchies() const override { return hs_; }
  const std::string& path() const override { return path_; }

  Result<void> create() override {
    for (auto& h : hs_) {
      std::string dir = h.mountpoint + path_;
      // Make each missing level, remembering what we made so destroy() only
      // removes our own directories (a pod's parent cgroup stays).
      std::string cur = h.mountpoint;
      size_t i = 1;
      while (i <= path_.size()) {
        size_t j = path_.find('/', i);
        if (j == std::string::npos) j = path_.size();
        cur = h.mountpoint + path_.substr(0, j);
        i = j + 1;
        if (::mkdir(cur.c_str(), 0755) == 0) {
          made_.push_back(cur);
          if (is_cpuset(h)) TRY_VOID(init_cpuset(cur));
        } else if (errno != EEXIST) {
          return fail_errno("create cgroup {}", cur);
        }
      }
    }
    return {};
  }

  Result<void> add(pid_t pid) override {
    for (auto& d : dirs()) {
      std::string f = d + "/cgroup.procs";
      auto r = sys::write_file(f, std::to_string(pid));
      if (!r) return fail(std::move(r.error()).context(fmt::format("join cgroup {}", d)));
    }
    return {};
  }

  std::vector<pid_t> pids() const override {
    std::vector<pid_t> out;
    for (auto& d : dirs()) {
      auto s = sys::read_file(d + "/cgroup.procs");
      if (!s) continue;
      std::istringstream in(*s);
      pid_t p;
      while (in >> p)
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
      if (!out.empty()) break;  // every hierarchy holds the same processes
    }
    return out;
  }

  Result<void> signal_all(int sig) const override {
    for (pid_t p : pids())
      if (::kill(p, sig) < 0 && errno != ESRCH) return fail_errno("kill {}", p);
    return {};
  }

  Result<void> destroy() override {
    // Remove deepest first. Without a record of what create() made (a later
    // command), remove the container's own leaf directory in each hierarchy.
    std::vector<std::string> todo = made_.empty() ? dirs() : made_;
    std::sort(todo.begin(), todo.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    for (auto& d : todo) {
      int tries = 0;
      while (::rmdir(d.c_str()) < 0) {
        if (errno == ENOENT) break;
        if (errno == EBUSY && tries++ < 200) {
          (void)signal_all_in(d, SIGKILL);
          struct timespec ts {0, 5'000'000};
          ::nanosleep(&ts, nullptr);
          continue;
        }
        return fail_errno("remove cgroup {}", d);
      }
    }
    made_.clear();
    return {};
  }

  // Directories above the container's leaf that brig itself owns (/brig) are
  // shared by all containers and stay.

 private:
  static bool is_cpuset(const Hierarchy& h) {
    return !h.v2 && std::find(h.controllers.begin(), h.controllers.end(), "cpuset") != h.controllers.end();
  }
  // A new v1 cpuset cgroup starts with empty cpus/mems, which refuses tasks:
  // copy them from the parent.
  static Result<void> init_cpuset(const std::string& dir) {
    std::string parent = dir.substr(0, dir.rfind('/'));
    for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
      auto cur = sys::read_file(dir + "/" + f);
      if (cur && cur->find_first_not_of(" \n") != std::string::npos) continue;
      TRY(auto v, sys::read_file(parent + "/" + f));
      TRY_CTX_VOID(sys::write_file(dir + "/" + f, v), "init {}/{}", dir, f);
    }
    return {};
  }
  static Result<void> signal_all_in(const std::string& dir, int sig) {
    auto s = sys::read_file(dir + "/cgroup.procs");
    if (!s) return {};
    std::istringstream in(*s);
    pid_t p;
    while (in >> p) ::kill(p, sig);
    return {};
  }

  std::string path_;
  std::vector<Hierarchy> hs_;
  std::vector<std::string> made_;
};

}  // namespace

Result<std::unique_ptr<Manager>> open_fs(const std::string& path) {
  TRY(auto mi, sys::read_file("/proc/self/mountinfo"));
  auto hs = parse_mountinfo(mi);
  if (hs.empty()) return fail_msg("cgroup: no cgroup filesystem is mounted");
  // Only hierarchies mounted at their root on the host can hold our path.
  std::erase_if(hs, [](const Hierarchy& h) { return h.root != "/"; });
  if (path.empty() || path[0] != '/' || path.find("/../") != std::string::npos)
    return fail_msg("cgroup path {}: must be absolute and clean", path);
  return std::unique_ptr<Manager>(new FsManager(path, std::move(hs)));
}

}  // namespace brig::cgroup
