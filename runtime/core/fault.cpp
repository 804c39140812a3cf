#include "runtime/core/fault.hpp"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace brig::fault {

const std::vector<std::string_view>& steps() {
  static const std::vector<std::string_view> all = {
      // create (runtime/lifecycle.cpp, runtime/linux_executor.cpp)
      "create.after-state-dir",    // ROOT/ID made and locked, no state.json yet
      "create.after-record",       // state.json says "creating"
      "create.after-fifo",         // exec.fifo made
      "create.after-cgroup",       // cgroup dirs made, limits written
      "create.after-resctrl",      // resctrl group made (linux.intelRdt only)
      "create.after-clone",        // init exists, not yet in its cgroup
      "create.after-idmaps",       // uid/gid maps written (user namespace only)
      "create.after-cgroup-join",  // init in the container's cgroup
      "create.init-set-up",        // in init: mounts, pivot, hostname done; user and caps next
      "create.before-lo-up",       // about to bring lo up in init's new network namespace
      "create.after-hooks",        // prestart/createRuntime hooks ran (when configured)
      "create.after-ready",        // init is ready and blocks on the fifo
      "create.after-created",      // state.json says "created", pid file not yet written
      // network setup (netns/attach.cpp, inside create's after-clone step;
      // reached only by a container with a brig network: the walk for these
      // is in test/integration/test_network.py)
      "network.after-lease",        // address lease taken and recorded
      "network.after-veth",         // veth pair made, its peer born in the container's netns
      "network.after-guard",        // its port's anti-spoofing elements in nftables (bridge brig)
      "network.after-bridge-port",  // host end on the bridge and up
      "network.after-address",      // inside: lo/eth0 up, addresses, default routes
      "network.after-nft",          // published ports / masquerade in nftables
      "network.after-device-move",  // a linux.netDevices device moved in
      // start
      "start.before-fifo",         // about to open the exec fifo
      "start.after-fifo",          // init released: the user's process runs
      // exec (runtime/exec.cpp)
      "exec.after-clone",          // exec child exists, outside the cgroup
      "exec.after-cgroup-join",    // exec child in the container's cgroup
      "exec.after-ready",          // exec child ready, about to exec
      // kill
      "kill.before-signal",
      // delete (runtime/lifecycle.cpp destroy)
      "delete.after-kill",         // init killed, cgroup still there
      "delete.after-cgroup-removal",  // cgroup gone, state dir still there
      // network teardown (delete, and `delete --force` of a half-made create)
      "network.teardown-after-veth",  // host veth deleted (the peer with it)
      "network.teardown-after-nft",   // nft elements of the address removed, lease still held
  };
  return all;
}

bool enabled() {
#ifdef BRIG_FAULT_INJECTION
  return true;
#else
  return false;
#endif
}

Result<void> hit(std::string_view step) {
  const char* env = std::getenv("BRIG_FAULT");
  if (!env) return {};
  std::string_view spec(env);
  auto colon = spec.rfind(':');
  if (colon == std::string_view::npos || spec.substr(0, colon) != step) return {};
  std::string_view action = spec.substr(colon + 1);
  if (action == "kill") {
    ::kill(::getpid(), SIGKILL);
    ::pause();
  }
  if (action == "fail") return fail_msg("fault injected at {}", step);
  if (action == "throw") throw std::runtime_error(fmt::format("fault injected at {}", step));
  // For tests of what may and may not overtake this step: 0.3 s, or
  // "sleep=MS" where the test's own side of the race needs longer on a
  // loaded machine.
  if (action == "sleep" || action.starts_with("sleep=")) {
    long ms = action == "sleep" ? 300 : std::strtol(std::string(action.substr(6)).c_str(), nullptr, 10);
    struct timespec ts {ms / 1000, (ms % 1000) * 1'000'000};
    ::nanosleep(&ts, nullptr);
  }
  return {};
}

}  // namespace brig::fault
