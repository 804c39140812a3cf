// process.capabilities through libcap: the five sets, applied around the
// switch to the container user the way runc does it.
#pragma once

#include <optional>
#include <vector>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

struct CapSets {
  // Capability numbers; nullopt for a set the config leaves out.
  std::optional<std::vector<int>> bounding, effective, inheritable, permitted, ambient;
  std::vector<std::string> unknown_to_kernel;  // named, but past this kernel's last cap
};

// Resolves names to numbers. An unknown name is an error naming it; a name
// libcap knows but this kernel does not is skipped (listed in unknown_to_kernel).
Result<CapSets> resolve_caps(const spec::Capabilities& c, int last_cap);
int kernel_last_cap();

// Before the user switch: drop from the bounding set; keep caps across setuid
// when it switches to a uid other than 0 (`uid_changes`).
Result<void> caps_before_user(const CapSets& s, bool uid_changes);
// After the user switch: effective/permitted/inheritable, then ambient.
Result<void> caps_after_user(const CapSets& s, bool uid_changes);

}  // namespace brig::runtime
