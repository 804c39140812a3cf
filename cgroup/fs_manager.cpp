#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <charconv>

#include "cgroup/manager.hpp"
#include "cgroup/resources.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/core/text.hpp"

namespace brig::cgroup {

bool split_mountinfo_line(std::string_view line, std::vector<std::string_view>& f, size_t& fstype) {
  f = text::words(line);
  auto dash = std::find(f.begin(), f.end(), "-");
  if (f.size() < 7 || dash == f.end() || dash + 3 > f.end()) return false;
  fstype = static_cast<size_t>(dash - f.begin()) + 1;
  return true;
}

std::vector<Hierarchy> parse_mountinfo(const std::string& mountinfo) {
  std::vector<Hierarchy> out;
  std::vector<std::string_view> f;
  size_t ft = 0;
  for (std::string_view line : text::lines(mountinfo)) {
    // The filesystem type follows the " - " separator (fields escape their
    // spaces as \040): the lines of other filesystems, nearly all of them,
    // are skipped without being split into fields.
    auto sep = line.find(" - ");
    if (sep == std::string_view::npos) continue;
    std::string_view type = line.substr(sep + 3);
    type = type.substr(0, type.find(' '));
    if (type != "cgroup" && type != "cgroup2") continue;
    if (!split_mountinfo_line(line, f, ft)) continue;
    std::string_view fstype = f[ft];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    Hierarchy h;
    h.root = f[3];
    h.mountpoint = f[4];
    h.v2 = fstype == "cgroup2";
    if (!h.v2) {
      for (std::string_view o : text::split(f[ft + 2], ',')) {
        if (o.empty() || o == "rw" || o == "ro" || o == "clone_children" || o == "noprefix" ||
            o.starts_with("release_agent=") || o == "xattr" || o == "cpuset_v2_mode")
          continue;
        h.controllers.emplace_back(o);
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

Result<void> join_self(const SelfJoin& j) {
  for (size_t i = 0; i < j.tasks.size(); ++i) {
    ssize_t n;
    do {
      n = ::write(j.tasks[i].get(), "0", 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail_errno("join cgroup {}", j.dirs[i]);
  }
  return {};
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

// The pids of a cgroup.procs file, one per line.
std::vector<pid_t> pids_in(std::string_view procs) {
  std::vector<pid_t> out;
  for (std::string_view w : text::words(procs)) {
    pid_t p = 0;
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), p);
    // 0: a process outside our pid namespace; never a pid to signal.
    if (ec == std::errc() && end == w.data() + w.size() && p > 0) out.push_back(p);
  }
  return out;
}

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
    created_ = true;
    for (auto& h : hs_) {
      std::string dir = h.mountpoint + path_;
      // Usually only the leaf is missing: one mkdir, no walk.
      if (::mkdir(dir.c_str(), 0755) == 0) {
        made_.push_back(dir);
        if (is_cpuset(h)) TRY_VOID(init_cpuset(dir));
        continue;
      }
      if (errno == EEXIST) continue;
      if (errno != ENOENT) return fail_errno("create cgroup {}", dir);
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

  Result<SelfJoin> prepare_self_join() const override {
    SelfJoin j;
    for (auto& h : hs_) {
      std::string d = h.mountpoint + path_;
      if (h.v2) {
        TRY(j.v2_dir, sys::open(d, O_RDONLY | O_DIRECTORY));
        continue;
      }
      TRY(Fd f, sys::open(d + "/tasks", O_WRONLY));
      j.tasks.push_back(std::move(f));
      j.dirs.push_back(std::move(d));
    }
    return j;
  }

  std::vector<pid_t> pids() const override {
    std::vector<pid_t> out;
    if (none_) return init_ > 0 ? pids_of_init_pidns() : out;
    for (auto& d : dirs()) {
      auto s = sys::read_file(d + "/cgroup.procs");
      if (!s) continue;
      for (pid_t p : pids_in(*s))
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
      // Every hierarchy holds the same processes, but `exec --cgroup` can
      // leave a controller's top directory empty: then look at the next.
      if (!out.empty()) break;
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
    // command), remove the container's own leaf directory in each hierarchy;
    // after a create() that made nothing (it was there), nothing.
    if (created_ && made_.empty()) return {};
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

  bool remove_if_empty() override {
    for (auto& d : dirs())
      if (::rmdir(d.c_str()) < 0 && errno != ENOENT) return false;
    return true;
  }

  // Directories above the container's leaf that brig itself owns (/brig) are
  // shared by all containers and stay.

  bool unified() const override {
    return !none_ && std::none_of(hs_.begin(), hs_.end(), [](auto& h) { return !h.v2; });
  }

  std::optional<std::string> dir_of(std::string_view controller) const override {
    for (auto& h : hs_) {
      if (h.v2) {
        if (controller.empty()) return h.mountpoint + path_;
        if (!unified()) continue;
        auto c = sys::read_file(h.mountpoint + path_ + "/cgroup.controllers");
        if (!c) c = sys::read_file(parent_of(h.mountpoint + path_) + "/cgroup.subtree_control");
        if (c && has_word(*c, controller)) return h.mountpoint + path_;
        continue;
      }
      if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end())
        return h.mountpoint + path_;
    }
    return std::nullopt;
  }

  Result<void> apply(const spec::Resources& r) override {
    if (none_) return fail_msg("the container has no cgroup (rootless): its resources cannot be set");
    Probe probe(*this);
    if (!unified()) {
      TRY(auto plan, plan_v1(r, probe));
      return run_plan(plan);
    }
    enable_controllers();
    TRY(auto plan, plan_v2(r, probe));
    TRY_VOID(run_plan(plan));
    auto dir = dir_of("");
    if (dir) TRY_VOID(attach_device_program(*dir, r.devices));
    return {};
  }

  Freezer freezer_state() const override {
    if (!unified()) {
      auto d = dir_of("freezer");
      if (!d) return Freezer::thawed;
      auto s = sys::read_attribute(*d + "/freezer.state");
      if (!s) return Freezer::thawed;
      if (s->rfind("FROZEN", 0) == 0) return Freezer::frozen;
      if (s->rfind("FREEZING", 0) == 0) return Freezer::freezing;
      return Freezer::thawed;
    }
    auto d = dir_of("");
    if (!d) return Freezer::thawed;
    auto want = sys::read_attribute(*d + "/cgroup.freeze");
    auto ev = sys::read_attribute(*d + "/cgroup.events");
    bool is = ev && ev->find("frozen 1") != std::string::npos;
    if (is) return Freezer::frozen;
    return want && want->rfind("1", 0) == 0 ? Freezer::freezing : Freezer::thawed;
  }

  Result<void> freeze(bool frozen) override {
    if (none_) return fail_msg("the container has no cgroup (rootless): it cannot be {}", frozen ? "paused" : "resumed");
    if (!unified()) {
      auto d = dir_of("freezer");
      if (!d) return fail_msg("freezer cgroup: controller freezer is not mounted");
      std::string f = *d + "/freezer.state";
      const char* want = frozen ? "FROZEN" : "THAWED";
      // Freezing can get stuck in FREEZING (a task in an uninterruptible
      // sleep): thaw and try again now and then, give up after ~2 s.
      for (int i = 0; i < 2000; ++i) {
        if (i % 50 == 0) {
          if (frozen && i > 0) (void)sys::write_file(f, "THAWED");
          TRY_CTX_VOID(sys::write_file(f, want), "{} cgroup {}", frozen ? "freeze" : "thaw", *d);
        }
        auto s = sys::read_attribute(f);
        if (!s) return fail(std::move(s.error()));
        if (s->rfind(want, 0) == 0) return {};
        sleep_ms(1);
      }
      if (frozen) (void)sys::write_file(f, "THAWED");
      return fail_msg("unable to {} cgroup {}: state did not settle", frozen ? "freeze" : "thaw", *d);
    }
    TRY(std::string d, opt(dir_of(""), "cgroup.freeze"));
    TRY_CTX_VOID(sys::write_file(d + "/cgroup.freeze", frozen ? "1" : "0"), "{} cgroup {}",
                 frozen ? "freeze" : "thaw", d);
    for (int i = 0; i < 2000; ++i) {
      auto ev = sys::read_attribute(d + "/cgroup.events");
      if (!ev) return fail(std::move(ev.error()));
      if ((ev->find("frozen 1") != std::string::npos) == frozen) return {};
      sleep_ms(1);
    }
    if (frozen) (void)sys::write_file(d + "/cgroup.freeze", "0");
    return fail_msg("unable to {} cgroup {}: state did not settle", frozen ? "freeze" : "thaw", d);
  }

  Result<void> ensure_thawed() override {
    if (freezer_state() == Freezer::thawed) return {};
    if (!unified()) {
      auto d = dir_of("freezer");
      auto parent = sys::read_attribute(*d + "/freezer.parent_freezing");
      if (parent && parent->rfind("1", 0) == 0)
        return fail_msg("cgroup {} is frozen by a parent cgroup: a container cannot start in it", *d);
      return freeze(false);
    }
    auto d = dir_of("");
    auto want = sys::read_attribute(*d + "/cgroup.freeze");
    if (want && want->rfind("0", 0) == 0)
      return fail_msg("cgroup {} is frozen by a parent cgroup: a container cannot start in it", *d);
    return freeze(false);
  }

 private:
  static void sleep_ms(int ms) {
    struct timespec ts {0, ms * 1'000'000L};
    ::nanosleep(&ts, nullptr);
  }
  static Result<std::string> opt(std::optional<std::string> v, std::string_view what) {
    if (!v) return fail_msg("{}: no cgroup v2 directory", what);
    return *v;
  }
  static std::string parent_of(const std::string& d) { return d.substr(0, d.rfind('/')); }
  static bool has_word(const std::string& s, std::string_view w) {
    auto ws = text::words(s);
    return std::find(ws.begin(), ws.end(), w) != ws.end();
  }

  // The planner's view of this cgroup.
  class Probe final : public cgroup::Probe {
   public:
    explicit Probe(const FsManager& m) : m_(m) {}
    bool mounted(std::string_view c) const override { return m_.dir_of(c).has_value(); }
    bool has_file(std::string_view c, std::string_view f) const override {
      auto d = m_.dir_of(c);
      if (!d) return false;
      // Asked once per rule (devices.allow a dozen times): looked up once.
      std::string path = *d + "/" + std::string(f);
      auto [it, fresh] = seen_.try_emplace(path, false);
      if (fresh) it->second = ::access(path.c_str(), F_OK) == 0;
      return it->second;
    }
    std::optional<std::string> read(std::string_view c, std::string_view f) const override {
      auto d = m_.dir_of(c);
      if (!d) return std::nullopt;
      auto s = sys::read_file(*d + "/" + std::string(f));
      if (!s) return std::nullopt;
      while (!s->empty() && (s->back() == '\n' || s->back() == ' ')) s->pop_back();
      return *s;
    }

   private:
    const FsManager& m_;
    mutable std::map<std::string, bool, std::less<>> seen_;
  };

  // v2: controllers must be enabled in every ancestor's subtree_control.
  void enable_controllers() {
    for (auto& h : hs_) {
      if (!h.v2) continue;
      std::string cur = h.mountpoint;
      size_t i = 1;
      while (i <= path_.size()) {
        auto avail = sys::read_file(cur + "/cgroup.controllers");
        auto on = sys::read_file(cur + "/cgroup.subtree_control");
        if (avail && on) {
          for (std::string_view c : text::words(*avail))
            if (!has_word(*on, c)) (void)sys::write_file(cur + "/cgroup.subtree_control", "+" + std::string(c));
        }
        size_t j = path_.find('/', i);
        if (j == std::string::npos) break;
        cur = h.mountpoint + path_.substr(0, j);
        i = j + 1;
      }
    }
  }

  Result<void> write_one(const Write& w) {
    auto d = dir_of(unified() ? std::string_view() : std::string_view(w.controller));
    if (!d) return fail_msg("{}: cgroup controller {} is not mounted", w.field, w.controller);
    std::string f = *d + "/" + w.file;
    log::debug(fmt::format("cgroup: {} <- {}", f, w.value));
    auto r = write_value(f, w.value);
    if (r) {
      if (w.check == Write::Check::cpu_shares) {
        auto back = sys::read_file(f);
        if (back) {
          uint64_t want = std::stoull(w.value), got = std::strtoull(back->c_str(), nullptr, 10);
          if (want > got) return fail_msg("the maximum allowed cpu-shares is {}", got);
          if (want < got) return fail_msg("the minimum allowed cpu-shares is {}", got);
        }
      }
      return {};
    }
    int e = r.error().err;
    if (w.check == Write::Check::memory_limit && e == EBUSY) {
      auto rd = [&](const char* v1, const char* v2) {
        auto s = sys::read_file(*d + "/" + (unified() ? v2 : v1));
        return s ? std::strtoull(s->c_str(), nullptr, 10) : 0ULL;
      };
      return fail_msg("unable to set memory limit to {} (current usage: {}, peak usage: {})", w.value,
                      rd("memory.usage_in_bytes", "memory.current"), rd("memory.max_usage_in_bytes", "memory.peak"));
    }
    Error err = Error::sys(e, fmt::format("write {}", f));
    err.context(w.field);
    return fail(std::move(err));
  }

  // Consecutive writes to one file (devices.allow, rule after rule) go
  // through one open of it: each write(2) is one value to the kernel.
  Result<void> write_value(const std::string& f, const std::string& v) {
    if (f != open_file_ || !open_fd_) {
      open_fd_.reset();
      open_file_.clear();
      TRY(open_fd_, sys::open(f, O_WRONLY));
      open_file_ = f;
    }
    if (::write(open_fd_.get(), v.data(), v.size()) < 0) return fail_errno("write {}", f);
    return {};
  }

  Result<void> run_plan(const std::vector<Write>& plan) {
    auto r = run_writes(plan);
    open_fd_.reset();
    open_file_.clear();
    return r;
  }
  Result<void> run_writes(const std::vector<Write>& plan) {
    std::optional<Write> retry;
    for (const auto& w : plan) {
      auto r = write_one(w);
      if (!r) {
        if (w.check == Write::Check::retry_einval && r.error().err == EINVAL) {
          retry = w;
          continue;
        }
        return r;
      }
      if (retry) {
        TRY_VOID(write_one(*retry));
        retry.reset();
      }
    }
    if (retry) TRY_VOID(write_one(*retry));
    return {};
  }

  static bool is_cpuset(const Hierarchy& h) {
    return !h.v2 && std::find(h.controllers.begin(), h.controllers.end(), "cpuset") != h.controllers.end();
  }
  // A new v1 cpuset cgroup starts with empty cpus/mems, which refuses tasks:
  // copy them from the parent. Each file is read and then written through
  // one fd (a parent with cgroup.clone_children has filled them already).
  static Result<void> init_cpuset(const std::string& dir) {
    std::string parent = dir.substr(0, dir.rfind('/'));
    for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
      std::string path = dir + "/" + f;
      auto own = sys::open(path, O_RDWR);
      if (!own) return fail(std::move(own.error()).context(fmt::format("init {}", path)));
      char cur[64];
      ssize_t n = ::read(own->get(), cur, sizeof cur);
      if (n < 0) return fail_errno("init {}: read", path);
      if (std::string_view(cur, static_cast<size_t>(n)).find_first_not_of(" \n") != std::string_view::npos)
        continue;
      TRY(auto v, sys::read_attribute(parent + "/" + f));
      if (::write(own->get(), v.data(), v.size()) < 0) return fail_errno("init {}: write the parent's {}", path, f);
    }
    return {};
  }
  static Result<void> signal_all_in(const std::string& dir, int sig) {
    auto s = sys::read_file(dir + "/cgroup.procs");
    if (!s) return {};
    for (pid_t p : pids_in(*s)) ::kill(p, sig);
    return {};
  }

  // No cgroup (none()): the processes are those of init's pid namespace,
  // while init is still the container's (its start time and pidfs inode): never those of
  // a namespace we are in ourselves.
  std::vector<pid_t> pids_of_init_pidns() const {
    auto link = [](const std::string& p) {
      char buf[64];
      ssize_t n = ::readlink(fmt::format("/proc/{}/ns/pid", p).c_str(), buf, sizeof buf);
      return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    };
    if (!sys::process_is(init_, init_start_, init_ino_)) return {};
    std::string want = link(std::to_string(init_));
    bool alive = sys::process_is(init_, init_start_, init_ino_);  // and still, now that we have its link
    if (!alive) return {};
    if (want.empty()) return {init_};  // not dumpable before its exec (created): init alone is known
    if (!own_pidns_ || want == link("self")) return {init_};  // a shared pid namespace: init alone is known
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return {init_};
    while (struct dirent* e = ::readdir(d)) {
      pid_t p = 0;
      auto [end, ec] = std::from_chars(e->d_name, e->d_name + std::strlen(e->d_name), p);
      if (ec == std::errc() && *end == '\0' && p > 0 && link(e->d_name) == want) out.push_back(p);
    }
    ::closedir(d);
    // init gone meanwhile: its pid, and so its namespace's, may be another's
    if (!sys::process_is(init_, init_start_, init_ino_)) return {};
    return out;
  }

 public:
  bool none_ = false;       // none(): no cgroup at all
  pid_t init_ = 0;          // none(): the container's init, and its start time
  uint64_t init_start_ = 0;
  uint64_t init_ino_ = 0;   // and its pidfs inode (sys::pidfs_ino), 0 without pidfs
  bool own_pidns_ = false;  // none(): init's pid namespace is the container's own

 private:
  std::string path_;
  std::vector<Hierarchy> hs_;
  std::vector<std::string> made_;
  bool created_ = false;  // create() ran on this object (made_ is its record)
  std::string open_file_;  // write_value's
  Fd open_fd_;
};

}  // namespace

Result<std::unique_ptr<Manager>> open_fs(const std::string& path, const std::vector<Hierarchy>& known) {
  if (path.empty() || path[0] != '/' || path.find("/../") != std::string::npos)
    return fail_msg("cgroup path {}: must be absolute and clean", path);
  // The hierarchies a record kept, while each is still a cgroup filesystem
  // of its kind there (or mountinfo again: something was remounted).
  auto still_mounted = [](const Hierarchy& h) {
    struct statfs st;
    return ::statfs(h.mountpoint.c_str(), &st) == 0 &&
           st.f_type == static_cast<decltype(st.f_type)>(h.v2 ? CGROUP2_SUPER_MAGIC : CGROUP_SUPER_MAGIC);
  };
  if (!known.empty() && std::all_of(known.begin(), known.end(), still_mounted))
    return std::unique_ptr<Manager>(new FsManager(path, known));
  TRY(auto mi, sys::read_file("/proc/self/mountinfo"));
  auto hs = parse_mountinfo(mi);
  if (hs.empty()) return fail_msg("cgroup: no cgroup filesystem is mounted");
  // Only hierarchies mounted at their root on the host can hold our path.
  std::erase_if(hs, [](const Hierarchy& h) { return h.root != "/"; });
  return std::unique_ptr<Manager>(new FsManager(path, std::move(hs)));
}

std::vector<std::string> own_dirs(const std::vector<Hierarchy>& hs) {
  std::vector<std::string> out;
  for (const auto& h : hs) out.push_back(h.mountpoint);
  auto text = sys::read_file("/proc/self/cgroup");
  if (!text) return out;
  for (std::string_view line : text::lines(*text)) {
    // ID:controllers:path; controllers empty for cgroup2
    size_t a = line.find(':'), b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    for (size_t i = 0; i < hs.size(); i++) {
      std::string want;
      for (const auto& c : hs[i].controllers) want += (want.empty() ? "" : ",") + c;
      if (!(hs[i].v2 ? ctrls.empty() : ctrls == want)) continue;
      std::string dir = sys::clean_path(hs[i].mountpoint + "/" + std::string(path));
      // not above it ("/.." outside our cgroup namespace)
      if (dir == hs[i].mountpoint || dir.rfind(hs[i].mountpoint + "/", 0) == 0) out[i] = dir;
    }
  }
  return out;
}

std::unique_ptr<Manager> none(const std::string& path, pid_t init, uint64_t init_start, uint64_t init_ino,
                              bool own_pidns) {
  auto m = std::make_unique<FsManager>(path, std::vector<Hierarchy>{});
  m->none_ = true;
  m->init_ = init;
  m->init_start_ = init_start;
  m->init_ino_ = init_ino;
  m->own_pidns_ = own_pidns;
  return m;
}

std::unique_ptr<Manager> same_cgroup(const Manager& m) {
  return std::unique_ptr<Manager>(new FsManager(m.path(), m.hierarchies()));
}

Result<void> add_to_sub(const Manager& m, pid_t pid, const std::string& arg) {
  auto colon = arg.find(':');
  std::string ctrl = colon == std::string::npos ? "" : arg.substr(0, colon);
  std::string sub = colon == std::string::npos ? arg : arg.substr(colon + 1);
  if (sub.empty() || sub.find("..") != std::string::npos) return fail_msg("invalid --cgroup argument: {}", arg);
  bool matched = false;
  for (const auto& h : m.hierarchies()) {
    if (!ctrl.empty() && std::find(h.controllers.begin(), h.controllers.end(), ctrl) == h.controllers.end()) continue;
    matched = true;
    std::string dir = sys::clean_path(h.mountpoint + m.path() + "/" + sub);
    TRY_CTX_VOID(sys::write_file(dir + "/cgroup.procs", std::to_string(pid)), "join sub-cgroup {}", dir);
  }
  if (!matched) return fail_msg("invalid --cgroup argument: {}: no such controller", arg);
  return {};
}

}  // namespace brig::cgroup
