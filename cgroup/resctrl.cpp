// Intel RDT (resctrl): see resctrl.hpp.
#include "cgroup/resctrl.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "cgroup/manager.hpp"
#include "runtime/core/text.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cgroup::resctrl {

namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// "L3:0=ff;1=f0" → resource "L3" and its domain=value pairs.
struct Line {
  std::string resource;
  std::vector<std::pair<std::string, std::string>> domains;
};

bool parse_line(std::string_view text, Line& out) {
  std::string s = trim(text);
  size_t colon = s.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  out.resource = trim(std::string_view(s).substr(0, colon));
  out.domains.clear();
  // Fields between ';', as getline gives them: no empty last one.
  auto fields = text::split(std::string_view(s).substr(colon + 1), ';');
  if (fields.back().empty()) fields.pop_back();
  for (std::string_view d : fields) {
    size_t eq = d.find('=');
    if (eq == std::string::npos) return false;
    out.domains.emplace_back(trim(d.substr(0, eq)), trim(d.substr(eq + 1)));
  }
  return true;
}

// Cache masks are hex and the kernel prints them without leading zeros;
// memory bandwidth (MB) values are decimal.
bool same_value(const std::string& resource, const std::string& a, const std::string& b) {
  if (a == b) return true;
  int base = resource.rfind("MB", 0) == 0 ? 10 : 16;
  char* ea = nullptr;
  char* eb = nullptr;
  errno = 0;
  unsigned long long va = std::strtoull(a.c_str(), &ea, base);
  unsigned long long vb = std::strtoull(b.c_str(), &eb, base);
  return errno == 0 && !a.empty() && !b.empty() && *ea == '\0' && *eb == '\0' && va == vb;
}

// Undoes mountinfo's octal escapes (\040 for a space).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Test builds can point brig at a directory standing in for resctrl, since
// the kernels these tests run on have no resctrl (no RDT in the CPU). The
// stand-in gets the files the kernel would make in a new group.
bool fake_root(std::string& root) {
#ifdef BRIG_FAULT_INJECTION
  if (const char* r = std::getenv("BRIG_RESCTRL_ROOT"); r && *r) {
    root = r;
    return true;
  }
#endif
  (void)root;
  return false;
}

void fake_group_files(const std::string& dir) {
  for (const char* f : {"/tasks", "/schemata"}) {
    int fd = ::open((dir + f).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  ::mkdir((dir + "/mon_groups").c_str(), 0755);
}

// rmdir of a group (the kernel moves its tasks to the parent group).
int rmdir_group(const std::string& dir) {
#ifdef BRIG_FAULT_INJECTION
  // The stand-in's group files are plain files: empty it as the kernel would.
  std::string root;
  if (fake_root(root)) {
    for (const char* f : {"/tasks", "/schemata"}) ::unlink((dir + f).c_str());
    ::rmdir((dir + "/mon_groups").c_str());
  }
#endif
  return ::rmdir(dir.c_str());
}

Result<std::string> find_root(bool& fake) {
  std::string root;
  fake = fake_root(root);
  if (fake) return root;
  TRY(auto mi, sys::read_file("/proc/self/mountinfo"));
  root = mount_point_in(mi);
  if (root.empty()) return fail_msg("linux.intelRdt: Intel RDT resctrl mount point not found");
  return root;
}

// The kernel explains a refused schemata line in info/last_cmd_status.
std::string last_status(const std::string& root) {
  auto s = sys::read_file(root + "/info/last_cmd_status");
  if (!s) return {};
  std::string t = trim(*s);
  return t.empty() || t == "ok" ? std::string() : " (" + t + ")";
}

// mkdir that tells whether it made the directory.
Result<bool> make_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return true;
  if (errno == EEXIST) return false;
  return fail_errno("intelrdt: mkdir {}", dir);
}

}  // namespace

Result<Plan> plan(const spec::IntelRdt& rdt, const std::string& id) {
  Plan p;
  // Names the kernel keeps for itself at the resctrl root.
  auto reserved = [](const std::string& n) { return n == "info" || n == "mon_groups" || n == "mon_data"; };
  if (rdt.closID) {
    const std::string& c = *rdt.closID;
    if (c != "/" && (c.empty() || c == "." || c == ".." || c.find('/') != std::string::npos))
      return fail_msg("linux.intelRdt.closID: invalid intelRdt.ClosID \"{}\"", c);
    if (c != "/") p.group = c;
    if (reserved(c)) return fail_msg("linux.intelRdt.closID: \"{}\" is a name resctrl keeps for itself", c);
  } else {
    if (reserved(id))
      return fail_msg("linux.intelRdt: the container's own resctrl group would be \"{}\", a name resctrl keeps "
                      "for itself (set closID)", id);
    p.group = id;
    p.own_group = true;
  }
  if (rdt.l3CacheSchema && !rdt.l3CacheSchema->empty()) p.schemata.push_back(*rdt.l3CacheSchema);
  if (rdt.memBwSchema && !rdt.memBwSchema->empty()) p.schemata.push_back(*rdt.memBwSchema);
  if (rdt.schemata)
    for (const auto& s : *rdt.schemata)
      if (!s.empty()) p.schemata.push_back(s);
  for (const auto& s : p.schemata) {
    Line l;
    if (!parse_line(s, l)) return fail_msg("linux.intelRdt: schemata line \"{}\" is not RESOURCE:ID=VALUE;...", s);
  }
  if (rdt.enableMonitoring.value_or(false)) p.mon_group = "mon_groups/" + id;
  return p;
}

bool schemata_hold(const std::string& have, const std::vector<std::string>& want) {
  std::vector<Line> lines;
  for (std::string_view t : text::lines(have)) {
    Line l;
    if (parse_line(t, l)) lines.push_back(std::move(l));
  }
  for (const auto& w : want) {
    Line wl;
    if (!parse_line(w, wl)) return false;
    const Line* hl = nullptr;
    for (const auto& l : lines)
      if (l.resource == wl.resource) hl = &l;
    if (!hl) return false;
    for (const auto& [dom, val] : wl.domains) {
      bool found = false;
      for (const auto& [hd, hv] : hl->domains)
        if (hd == dom) found = same_value(wl.resource, val, hv);
      if (!found) return false;
    }
  }
  return true;
}

std::string mount_point_in(const std::string& mountinfo) {
  std::vector<std::string_view> f;
  size_t ft = 0;
  for (std::string_view line : text::lines(mountinfo))
    if (split_mountinfo_line(line, f, ft) && f[ft] == "resctrl") return unescape(std::string(f[4]));
  return {};
}

Result<Applied> prepare(const Plan& p, Rollback& rb) {
  bool fake = false;
  TRY(std::string root, find_root(fake));
  std::string dir = p.group.empty() ? root : root + "/" + p.group;
  Applied a;
  if (p.own_group || !p.schemata.empty()) {
    TRY(bool made, make_dir(dir));
    // The container's own group is its alone: an existing one belongs to
    // someone else (an admin's class of the same name, another container).
    if (!made && p.own_group)
      return fail_msg("linux.intelRdt: resctrl group {} already exists (not made for this container; set closID "
                      "to join it)", dir);
    if (made) {
      rb.push([dir] { (void)rmdir_group(dir); });
      if (fake) fake_group_files(dir);
      // A group named by closID is shared and outlives the container.
      if (p.own_group) a.remove.push_back(dir);
      if (!p.schemata.empty()) {
        std::string text;
        for (const auto& s : p.schemata) text += s + "\n";
        auto w = sys::write_file(dir + "/schemata", text);
        if (!w) return fail_msg("intelrdt: unable to write schemata to {}: {}{}", dir, w.error().msg, last_status(root));
      }
    } else if (!p.schemata.empty()) {
      TRY(std::string have, sys::read_file(dir + "/schemata"));
      if (!schemata_hold(have, p.schemata))
        return fail_msg("linux.intelRdt: resctrl group {} exists with other schemata than the config's", dir);
    }
  } else {
    struct stat st;
    if (::stat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
      return fail_msg("linux.intelRdt.closID: resctrl group {} does not exist", dir);
  }
  std::string tasks_dir = dir;
  if (!p.mon_group.empty()) {
    tasks_dir = dir + "/" + p.mon_group;
    if (::mkdir(tasks_dir.c_str(), 0755) < 0) return fail_errno("intelrdt: create monitoring group {}", tasks_dir);
    rb.push([tasks_dir] { (void)rmdir_group(tasks_dir); });
    if (fake) fake_group_files(tasks_dir);
    a.remove.insert(a.remove.begin(), tasks_dir);
  }
  a.tasks = tasks_dir + "/tasks";
  return a;
}

Result<void> add_task(const Applied& a, pid_t pid) {
  if (a.tasks.empty()) return {};
  auto w = sys::write_file(a.tasks, std::to_string(pid));
  if (!w) return fail_msg("intelrdt: unable to add pid {}: {}", pid, w.error().msg);
  return {};
}

Result<void> update_schemata(const std::string& tasks, const std::vector<std::string>& lines) {
  if (lines.empty()) return {};
  for (const auto& l : lines) {
    Line parsed;
    if (!parse_line(l, parsed)) return fail_msg("intelrdt: schemata line \"{}\" is not RESOURCE:ID=VALUE;...", l);
  }
  // tasks is <group>/tasks or <group>/mon_groups/<id>/tasks
  std::string dir = tasks.substr(0, tasks.rfind('/'));
  std::string parent = dir.substr(0, dir.rfind('/'));
  if (parent.size() >= 11 && parent.compare(parent.size() - 11, 11, "/mon_groups") == 0)
    dir = parent.substr(0, parent.rfind('/'));
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  auto w = sys::write_file(dir + "/schemata", text);
  if (!w) {
    bool fake = false;
    auto root = find_root(fake);
    return fail_msg("intelrdt: unable to write schemata to {}: {}{}", dir, w.error().msg,
                    root ? last_status(*root) : std::string());
  }
  return {};
}

bool available() {
  bool fake = false;
  return static_cast<bool>(find_root(fake));
}

Result<void> remove(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs)
    if (rmdir_group(d) < 0 && errno != ENOENT) return fail_errno("intelrdt: remove {}", d);
  return {};
}

}  // namespace brig::cgroup::resctrl
