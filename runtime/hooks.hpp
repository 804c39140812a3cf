// OCI hooks: run one list of hooks in order, each with the container state
// on stdin, its own args and env, and an optional timeout. Where a hook runs
// (runtime or container namespace) is the caller's business.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// Runs `hooks` in order; the first failure stops the list and is returned as
// "error running <phase> hook #<i>: <reason>, stdout: ..., stderr: ...".
Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& phase,
                       const std::string& state_json);

// One hook; `reason` describes a failure ("exit status 1", "timed out after 2s").
Result<void> run_hook(const spec::Hook& hook, const std::string& state_json);

}  // namespace brig::runtime
