// update, pause, resume, events, ps: the commands on a container's cgroup.
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "cgroup/resctrl.hpp"
#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "cmd/units.hpp"
#include "runtime/container.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cmd {
namespace {

int finish(const Result<void>& r) { return r ? 0 : cli::fail_command(r.error().msg); }

template <class T>
Result<T> parse_num(const std::string& s, const char* fn) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range)
    return fail_msg("strconv.{}: parsing \"{}\": value out of range", fn, s);
  if (ec != std::errc() || p != s.data() + s.size()) return fail_msg("strconv.{}: parsing \"{}\": invalid syntax", fn, s);
  return v;
}

const char* kUpdateFormat =
    "The accepted format is as follow (unchanged values can be omitted):\n\n"
    "{\n  \"memory\": {\n    \"limit\": 0,\n    \"reservation\": 0,\n    \"swap\": 0\n  },\n"
    "  \"cpu\": {\n    \"shares\": 0,\n    \"quota\": 0,\n    \"period\": 0,\n    \"realtimeRuntime\": 0,\n"
    "    \"realtimePeriod\": 0,\n    \"cpus\": \"\",\n    \"mems\": \"\"\n  },\n"
    "  \"blockIO\": {\n    \"weight\": 0\n  }\n}\n\n"
    "Note: if data is to be read from a file or the standard input, all\nother options are ignored.";

// A flag typed as a number in urfave/cli: a bad value is a usage error.
int usage_error(const cli::Context& c, const std::string& msg) {
  std::string out = "Incorrect Usage: " + msg + "\n\n" + cli::command_help(c.cmd);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return cli::fail_command(msg);
}

int update_action(cli::Context& c) {
  const std::string& id = c.p.args[0];
  nlohmann::json r = nlohmann::json::object();
  if (c.p.has("resources")) {
    std::string path = c.p.get("resources");
    std::string text;
    if (path == "-") {
      auto t = sys::read_all(BorrowedFd(STDIN_FILENO));
      if (!t) return cli::fail_command(t.error().msg);
      text = std::move(*t);
    } else {
      auto t = sys::read_file(path);
      if (!t) return cli::fail_command(t.error().msg);
      text = *t;
    }
    r = nlohmann::json::parse(text, nullptr, false);
    if (r.is_discarded() || !r.is_object()) return cli::fail_command(fmt::format("{}: invalid resources JSON", path));
    return finish(runtime::update(globals(), id, r));
  }
  // Typed flags first (urfave/cli checks them while parsing).
  for (const char* f : {"pids-limit", "blkio-weight"}) {
    if (!c.p.has(f)) continue;
    std::string v = c.p.get(f);
    bool ok = std::string(f) == "pids-limit" ? bool(parse_num<int64_t>(v, "ParseInt"))
                                             : bool(parse_num<uint16_t>(v, "ParseUint"));
    if (!ok) return usage_error(c, fmt::format("invalid value \"{}\" for flag -{}: parse error", v, f));
  }
  auto set = [&](const char* section, const char* key, nlohmann::json v) { r[section][key] = std::move(v); };
  struct U {
    const char* flag;
    const char* key;
  };
  for (U u : {U{"cpu-period", "period"}, U{"cpu-rt-period", "realtimePeriod"}, U{"cpu-share", "shares"}}) {
    if (!c.p.has(u.flag) || c.p.get(u.flag).empty()) continue;
    auto v = parse_num<uint64_t>(c.p.get(u.flag), "ParseUint");
    if (!v) return cli::fail_command(fmt::format("invalid value for {}: {}", u.flag, v.error().msg));
    set("cpu", u.key, *v);
  }
  for (U u : {U{"cpu-quota", "quota"}, U{"cpu-rt-runtime", "realtimeRuntime"}}) {
    if (!c.p.has(u.flag) || c.p.get(u.flag).empty()) continue;
    auto v = parse_num<int64_t>(c.p.get(u.flag), "ParseInt");
    if (!v) return cli::fail_command(fmt::format("invalid value for {}: {}", u.flag, v.error().msg));
    set("cpu", u.key, *v);
  }
  if (c.p.has("cpuset-cpus")) set("cpu", "cpus", c.p.get("cpuset-cpus"));
  if (c.p.has("cpuset-mems")) set("cpu", "mems", c.p.get("cpuset-mems"));
  for (U u : {U{"memory", "limit"}, U{"memory-swap", "swap"}, U{"memory-reservation", "reservation"}}) {
    std::string v = c.p.get(u.flag);
    if (v.empty()) continue;
    int64_t n = -1;
    if (v != "-1") {
      auto b = ram_in_bytes(v);
      if (!b) return cli::fail_command(fmt::format("invalid value for {}: {}", u.flag, b.error().msg));
      n = *b;
    }
    set("memory", u.key, n);
  }
  if (c.p.has("pids-limit")) set("pids", "limit", *parse_num<int64_t>(c.p.get("pids-limit"), ""));
  if (c.p.has("blkio-weight")) {
    auto w = *parse_num<uint16_t>(c.p.get("blkio-weight"), "");
    if (w != 0) set("blockIO", "weight", w);
  }
  // Intel RDT: runc's messages for a host without resctrl.
  nlohmann::json rdt = nlohmann::json::object();
  if (!c.p.get("l3-cache-schema").empty()) {
    if (!cgroup::resctrl::available()) return cli::fail_command("Intel RDT/CAT: l3 cache schema is not enabled");
    rdt["l3CacheSchema"] = c.p.get("l3-cache-schema");
  }
  if (!c.p.get("mem-bw-schema").empty()) {
    if (!cgroup::resctrl::available())
      return cli::fail_command("Intel RDT/MBA: memory bandwidth schema is not enabled");
    rdt["memBwSchema"] = c.p.get("mem-bw-schema");
  }
  return finish(runtime::update(globals(), id, r, rdt));
}

cli::Register update_cmd("update", [] {
  return cli::Command{
    .name = "update",
    .summary = "update container resource constraints",
    .args_usage = "<container-id>",
    .flags =
        {
            {{"resources", "r"}, true,
             std::string("path to the file containing the resources to update or '-' to read from the standard "
                         "input\n\n") + kUpdateFormat,
             ""},
            {{"blkio-weight"}, true, "Specifies per cgroup weight, range is from 10 to 1000", "0"},
            {{"cpu-period"}, true, "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default", ""},
            {{"cpu-quota"}, true, "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period", ""},
            {{"cpu-share", "cpu-shares"}, true, "CPU shares (relative weight vs. other containers)", ""},
            {{"cpu-rt-period"}, true,
             "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default", ""},
            {{"cpu-rt-runtime"}, true, "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period", ""},
            {{"cpuset-cpus"}, true, "CPU(s) to use", ""},
            {{"cpuset-mems"}, true, "Memory node(s) to use", ""},
            {{"memory"}, true, "Memory limit (in bytes)", ""},
            {{"memory-reservation"}, true, "Memory reservation or soft_limit (in bytes)", ""},
            {{"memory-swap"}, true, "Total memory usage (memory + swap); set '-1' to enable unlimited swap", ""},
            {{"pids-limit"}, true, "Maximum number of pids allowed in the container", "0"},
            {{"l3-cache-schema"}, true, "The string of Intel RDT/CAT L3 cache schema", ""},
            {{"mem-bw-schema"}, true, "The string of Intel RDT/MBA memory bandwidth schema", ""},
        },
    .min_args = 1,
    .max_args = 1,
    .action = update_action,
  };
});

cli::Register pause_cmd("pause", [] {
  return cli::Command{
    .name = "pause",
    .summary = "pause suspends all processes inside the container",
    .args_usage = "<container-id>",
    .description = "Where \"<container-id>\" is the name for the instance of the container to be\npaused. \n\n"
                   "DESCRIPTION:\n   The pause command suspends all processes in the instance of the container.\n\n"
                   "Use brig list to identify instances of containers and their current status.",
    .min_args = 1,
    .max_args = 1,
    .action = [](cli::Context& c) { return finish(runtime::pause(globals(), c.p.args[0])); },
  };
});

cli::Register resume_cmd("resume", [] {
  return cli::Command{
    .name = "resume",
    .summary = "resumes all processes that have been previously paused",
    .args_usage = "<container-id>",
    .description = "Where \"<container-id>\" is the name for the instance of the container to be\nresumed.\n\n"
                   "DESCRIPTION:\n   The resume command resumes all processes in the instance of the container.\n\n"
                   "Use brig list to identify instances of containers and their current status.",
    .min_args = 1,
    .max_args = 1,
    .action = [](cli::Context& c) { return finish(runtime::resume(globals(), c.p.args[0])); },
  };
});

cli::Register events_cmd("events", [] {
  return cli::Command{
    .name = "events",
    .summary = "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    .args_usage = "<container-id>",
    .description = "Where \"<container-id>\" is the name for the instance of the container.\n\n"
                   "DESCRIPTION:\n   The events command displays information about the container. By default the\n"
                   "information is displayed once every 5 seconds.",
    .flags = {{{"interval"}, true, "set the stats collection interval", "5s"},
              {{"stats"}, false, "display the container's stats then exit", ""}},
    .min_args = 1,
    .max_args = 1,
    .action =
        [](cli::Context& c) {
          std::string iv = c.p.get("interval", "5s");
          auto ms = parse_duration_ms(iv);
          if (!ms) return usage_error(c, fmt::format("invalid value \"{}\" for flag -interval: parse error", iv));
          if (*ms <= 0) return cli::fail_command("duration interval must be greater than 0");
          return finish(runtime::events(globals(), c.p.args[0], *ms, c.p.flag("stats")));
        },
  };
});

cli::Register ps_cmd("ps", [] {
  return cli::Command{
    .name = "ps",
    .summary = "ps displays the processes running inside a container",
    .args_usage = "<container-id> [ps options]",
    .flags = {{{"format", "f"}, true, "select one of: table or json", "\"table\""}},
    .min_args = 1,
    .max_args = -1,
    .pass_through = true,
    .action =
        [](cli::Context& c) {
          std::string f = c.p.get("format", "table");
          if (f != "table" && f != "json") return cli::fail_command(fmt::format("invalid format option"));
          std::vector<std::string> args(c.p.args.begin() + 1, c.p.args.end());
          if (!args.empty() && args[0] == "--") args.erase(args.begin());
          if (f == "json" && !args.empty()) return cli::fail_command("ps options are not supported with the json format");
          return finish(runtime::ps(globals(), c.p.args[0], f == "json", args));
        },
  };
});

}  // namespace
}  // namespace brig::cmd
