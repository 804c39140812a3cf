// linux.resources -> cgroup files and values, as pure code.
//
// plan_v1 / plan_v2 turn a spec::Resources into an ordered list of writes
// (controller, file, value), converting values the way runc does and ordering
// them so the kernel accepts them (memory vs memsw, period vs quota). What the
// planner needs to know about the host comes through a Probe, so unit tests
// run it against a fake host. The manager (fs_manager.cpp) applies the plan.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::cgroup {

struct Write {
  // What the applier does besides writing.
  enum class Check {
    none,
    cpu_shares,     // read back; the kernel clamps out-of-range shares
    retry_einval,   // on EINVAL, retry after the next write (cfs period vs quota)
    memory_limit,   // on EBUSY, runc's "unable to set memory limit" message
  };
  std::string controller;  // v1: the controller ("memory"); v2: "" (the one directory)
  std::string file;        // "memory.limit_in_bytes"
  std::string value;
  std::string field;       // "linux.resources.memory.limit", for error messages
  Check check = Check::none;
  bool operator==(const Write&) const = default;
};

// What the planner may ask about the host and the container's cgroup.
class Probe {
 public:
  virtual ~Probe() = default;
  // v1: a hierarchy carries the controller; v2: it is in the cgroup's cgroup.controllers.
  virtual bool mounted(std::string_view controller) const = 0;
  // The controller's interface file exists in the container's cgroup.
  virtual bool has_file(std::string_view controller, std::string_view file) const = 0;
  // Current content of a file (trimmed), nullopt when unreadable.
  virtual std::optional<std::string> read(std::string_view controller, std::string_view file) const = 0;
};

Result<std::vector<Write>> plan_v1(const spec::Resources& r, const Probe& p);
Result<std::vector<Write>> plan_v2(const spec::Resources& r, const Probe& p);

// Conversions runc uses between v1 and v2 values.
uint64_t shares_to_weight(uint64_t shares);      // cpu.shares -> cpu.weight (0 -> 0)
uint64_t blkio_to_io_weight(uint64_t weight);    // blkio weight 10..1000 -> io.weight 1..10000
// memory.swap.max from the spec's swap (memory+swap) and limit; "" = leave alone.
Result<std::string> v2_swap_max(int64_t swap, int64_t limit);
// A `unified` key: CONTROLLER.PARAMETER, a plain file name, not a file that
// moves processes or shapes the tree.
Result<void> check_unified_key(const std::string& key);
// Whether a unified key has the form CONTROLLER.PARAMETER (^[a-z][a-z0-9_]*\.[a-z0-9_.]+$).
bool unified_key_form(std::string_view key);

// The device rules a container's cgroup gets: linux.resources.devices in
// config order, then runc's default allow list, then rwm for every
// linux.devices node (what runc does).
std::vector<spec::DeviceCgroup> default_device_rules();
spec::Resources container_resources(const spec::Config& cfg);
// "c 1:3 rwm" (v1 devices.allow/deny syntax). Type defaults to "a", numbers to "*", access to "rwm".
std::string device_rule_v1(const spec::DeviceCgroup& d);

// The update a `brig update` applies: `upd` over what the config had. Only
// fields set in `upd` are written; the merged result is what the state keeps.
spec::Resources merge_resources(const spec::Resources& base, const spec::Resources& upd);

}  // namespace brig::cgroup
