// The container lifecycle, as cmd/ drives it. Each function is one runc
// command's behaviour; errors come back as one message, and a failed
// operation leaves nothing behind.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"
#include "spec/state.hpp"

namespace brig::runtime {

struct Globals {
  std::string root = "/run/brig";
  std::string cgroup_manager = "cgroupfs";  // cgroupfs | systemd | disabled
  // --rootless: true, false, or auto (an unprivileged user, or root of a
  // user namespace that is not the host's). Rootless, a cgroup we may not
  // make is done without, as in runc.
  std::string rootless = "auto";
};

struct CreateOptions {
  std::string id;
  std::string bundle;          // "" = current directory
  std::string pid_file;
  std::string console_socket;
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
};

struct RunOptions {
  CreateOptions create;
  bool detach = false;
  bool keep = false;
  bool no_subreaper = false;
};

struct ExecOptions {
  std::string id;
  std::string process_file;            // --process: a process.json
  std::vector<std::string> args;       // or the command line
  bool tty = false, detach = false, no_new_privs = false, ignore_paused = false;
  std::string console_socket, pid_file, cwd, user, apparmor, process_label;
  std::vector<std::string> env, additional_gids, caps, cgroups;
  int preserve_fds = 0;
};

Result<void> create(const Globals& g, const CreateOptions& o);
// Returns the exit status of the process (0 at once with detach).
Result<int> exec(const Globals& g, const ExecOptions& o);
Result<void> start(const Globals& g, const std::string& id);
// Returns the exit status to leave with: the container's, or 128+N on signal N.
Result<int> run(const Globals& g, const RunOptions& o);
Result<spec::State> state(const Globals& g, const std::string& id);
Result<void> kill(const Globals& g, const std::string& id, int sig, bool all);
Result<void> remove(const Globals& g, const std::string& id, bool force);
struct ListEntry {
  spec::State state;
  std::string owner;  // user owning the state dir (runc's OWNER column)
};
std::vector<ListEntry> list(const Globals& g);

// Signal names as runc takes them: "KILL", "SIGKILL", "9".
Result<int> parse_signal(const std::string& s);

// cgroup commands (runtime/cgroup_ops.cpp).
// `resources`: a linux.resources JSON object with the fields to change;
// `rdt`: linux.intelRdt fields to change (l3CacheSchema, memBwSchema).
Result<void> update(const Globals& g, const std::string& id, const nlohmann::json& resources,
                    const nlohmann::json& rdt = nlohmann::json::object());
Result<void> pause(const Globals& g, const std::string& id);
Result<void> resume(const Globals& g, const std::string& id);
// Prints runc's event JSON lines; `stats_only` prints one stats event.
Result<void> events(const Globals& g, const std::string& id, int64_t interval_ms, bool stats_only);
// `ps_args` empty: -ef. json: the pids as a JSON array.
Result<void> ps(const Globals& g, const std::string& id, bool json, const std::vector<std::string>& ps_args);

}  // namespace brig::runtime
