// update / pause / resume / events / ps: the commands that work on a
// container's cgroup. File names and formats live in cgroup/; this file holds
// the state checks and the command behaviour (runc's wording and exit codes).
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cgroup/manager.hpp"
#include "cgroup/resctrl.hpp"
#include "cgroup/resources.hpp"
#include "runtime/container.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/state.hpp"
#include "runtime/vm/vm.hpp"
#include "spec/config.hpp"

extern char** environ;

namespace brig::runtime {
namespace {

void print_line(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// A linux.resources object through the spec parser (so errors name the JSON path).
Result<spec::Resources> parse_resources(const nlohmann::json& j) {
  if (!j.is_object()) return fail_msg("linux.resources: must be an object");
  nlohmann::json doc = {{"ociVersion", spec::kOciVersion}, {"root", {{"path", "rootfs"}}}, {"linux", {{"resources", j}}}};
  TRY(auto cfg, spec::parse_config(doc));
  return cfg.linux && cfg.linux->resources ? *cfg.linux->resources : spec::Resources{};
}

// Whether the container runs in a microVM, from its saved config.
bool in_vm(const Record& rec) {
  auto doc = spec::jdoc::parse(rec.config);
  return doc && vm::wanted(doc->root());
}

}  // namespace

Result<void> update(const Globals& g, const std::string& id, const nlohmann::json& resources,
                    const nlohmann::json& rdt) {
  Store store(g.root);
  TRY(auto lock, store.open(id));
  TRY(Record rec, store.load(lock, id));
  std::string st = status_of(store, rec);
  if (st == "stopped" || st == "creating") return fail_msg("container not running");
  TRY(spec::Resources upd, parse_resources(resources));
  // A microVM's host cgroup holds QEMU and virtiofsd, not the container: the
  // guest's brig updates the container's cgroup inside (the VM keeps the
  // size it booted with).
  bool vm = in_vm(rec);
  if (vm && !rdt.empty()) return fail_msg("update: Intel RDT is not supported by the microVM backend");
  if (vm) {
    std::string err;
    TRY(int code, vm::brig_in_guest(store.dir(id), {"update", "--resources", "-", id},
                                              resources.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), &err));
    if (code != 0) return fail_msg("update: in the guest: {}", vm::guest_failure(err, code));
  }
  if (!rdt.empty()) {
    if (rec.rdt_tasks.empty()) return fail_msg("update: the container has no Intel RDT group (linux.intelRdt)");
    std::vector<std::string> lines;
    for (const char* k : {"l3CacheSchema", "memBwSchema"})
      if (rdt.contains(k)) lines.push_back(rdt[k].get<std::string>());
    TRY_VOID(cgroup::resctrl::update_schemata(rec.rdt_tasks, lines));
  }
  if (!vm) {
    TRY(auto cg, cgroup_of(rec));
    // Only the fields given are written (0 = unchanged, as runc's update).
    TRY_VOID(cg->apply(upd));
  }
  // The state keeps the merged resources (and RDT schemata), for later
  // updates and `state`.
  auto config = nlohmann::json::parse(rec.config, nullptr, false);
  if (!config.is_object()) config = nlohmann::json::object();
  auto& lin = config["linux"];
  if (!lin.is_object()) lin = nlohmann::json::object();
  if (!rdt.empty()) lin["intelRdt"].merge_patch(rdt);
  auto& res = lin["resources"];
  if (!res.is_object()) res = nlohmann::json::object();
  res.merge_patch(resources);
  rec.config = config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return store.save(rec);
}

Result<void> pause(const Globals& g, const std::string& id) {
  Store store(g.root);
  TRY(auto lock, store.open(id));
  TRY(Record rec, store.load(lock, id));
  std::string st = status_of(store, rec);
  if (st != "running" && st != "created") return fail_msg("container not running");
  TRY(auto cg, cgroup_of(rec));
  return cg->freeze(true);
}

Result<void> resume(const Globals& g, const std::string& id) {
  Store store(g.root);
  TRY(auto lock, store.open(id));
  TRY(Record rec, store.load(lock, id));
  if (status_of(store, rec) != "paused") return fail_msg("container not paused");
  TRY(auto cg, cgroup_of(rec));
  return cg->freeze(false);
}

Result<void> events(const Globals& g, const std::string& id, int64_t interval_ms, bool stats_only) {
  Store store(g.root);
  TRY(Record rec, store.load_unlocked(id));
  auto not_running = [&] { return fail_msg("container with id {} is not running", id); };
  if (status_of(store, rec) == "stopped") return not_running();
  // A microVM: the container's cgroup (its stats, its OOM kills) is the
  // guest's; the guest's brig reports, its lines ours.
  if (in_vm(rec)) {
    std::vector<std::string> args = {"events"};
    if (stats_only) args.push_back("--stats");
    else args.push_back(fmt::format("--interval={}ms", interval_ms));
    args.push_back(id);
    std::string err;
    auto code = vm::brig_in_guest(store.dir(id), args, {}, &err);
    // The VM powering off ends a stream of events as the container's end
    // does. The connection drops a moment before the host sees the VM's
    // end (its shim still exiting): give that up to 5 s.
    if (!code && !stats_only) {
      for (int i = 0; i < 250; i++) {
        auto r = store.load_unlocked(id);
        if (!r || status_of(store, *r) == "stopped") return {};
        ::usleep(20000);
      }
    }
    TRY(int c, std::move(code));
    if (c != 0) return fail_msg("events: in the guest: {}", vm::guest_failure(err, c));
    return {};
  }
  TRY(auto cg, cgroup_of(rec));
  auto stats_line = [&] {
    nlohmann::ordered_json e;
    e["type"] = "stats";
    e["id"] = id;
    e["data"] = cgroup::stats(*cg, rec.pid);
    // Interface names come from the container's /proc/PID/net/dev: any bytes.
    print_line(e.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  };
  if (stats_only) {
    stats_line();
    return {};
  }
  // OOM notification when the memory controller offers it.
  auto oom = cgroup::OomWatch::open(*cg);
  auto stopped = [&] {
    auto r = store.load_unlocked(id);
    return !r || status_of(store, *r) == "stopped";
  };
  int64_t next = sys::monotonic_ms() + interval_ms;
  for (;;) {
    int64_t wait = std::clamp<int64_t>(next - sys::monotonic_ms(), 0, 250);
    struct pollfd p {oom ? oom->fd() : -1, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(wait));
    if (n > 0 && oom) {
      int kills = oom->check();
      for (int i = 0; i < kills; ++i) print_line(nlohmann::ordered_json{{"type", "oom"}, {"id", id}}.dump());
      if (kills < 0) oom = fail_msg("cgroup gone");
    }
    // The container is gone: nothing more will happen (runc would loop on errors).
    if (stopped()) return {};
    if (sys::monotonic_ms() >= next) {
      stats_line();
      next += interval_ms;
    }
  }
}

Result<void> ps(const Globals& g, const std::string& id, bool json, const std::vector<std::string>& ps_args) {
  Store store(g.root);
  TRY(Record rec, store.load_unlocked(id));
  // A microVM's host cgroup holds QEMU and its helpers: the guest's brig
  // lists the container's processes (guest pids).
  if (in_vm(rec)) {
    if (status_of(store, rec) == "stopped") return fail_msg("container not running");
    std::vector<std::string> args = {"ps"};
    if (json) args.insert(args.end(), {"--format", "json"});
    args.push_back(id);
    args.insert(args.end(), ps_args.begin(), ps_args.end());
    TRY(int code, vm::brig_in_guest(store.dir(id), args));
    if (code != 0) return fail_msg("ps: the guest's brig ps exited with {}", code);
    return {};
  }
  TRY(auto cg, cgroup_of(rec));
  std::vector<pid_t> pids = cg->pids();
  if (json) {
    print_line(nlohmann::json(pids).dump());
    return {};
  }
  std::vector<std::string> argv = {"ps"};
  if (ps_args.empty())
    argv.push_back("-ef");
  else
    argv.insert(argv.end(), ps_args.begin(), ps_args.end());
  // ps writes its own complaints to our stderr.
  auto ran = sys::run_program(argv, {}, sys::Stderr::ours);
  if (!ran) {
    // runc's wording when ps cannot be run.
    if (ran.error().err == ENOENT) return fail_msg("exec: \"ps\": executable file not found in $PATH");
    return fail_err(ran.error().err, "exec: \"ps\"");
  }
  if (!ran->ok()) return fail_msg("ps: {}: {}", ran->exit_text(), ran->out);
  std::istringstream in(ran->out);
  std::string header;
  std::getline(in, header);
  std::istringstream hs(header);
  std::string col;
  int pid_col = -1;
  for (int i = 0; hs >> col; ++i)
    if (col == "PID") {
      pid_col = i;
      break;
    }
  if (pid_col < 0) return fail_msg("couldn't find PID field in ps output");
  std::string text = header + "\n";
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string f;
    for (int i = 0; i <= pid_col && ls >> f; ++i) {
    }
    pid_t p = static_cast<pid_t>(std::strtol(f.c_str(), nullptr, 10));
    if (std::find(pids.begin(), pids.end(), p) != pids.end()) text += line + "\n";
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return {};
}

}  // namespace brig::runtime
