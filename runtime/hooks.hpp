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
// A hook with no env of its own gets `env_if_absent`, or without one brig's
// environment: the phases run by the runtime pass none (as runc and crun), the
// two run in the container pass the container process's environment, so that
// nothing of the caller's environment reaches a program from the image.
Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& phase,
                       const std::string& state_json, const std::vector<std::string>* env_if_absent = nullptr);

// One hook. A failure reads "exec PATH: <errno text>", or "exit status 1" (or
// "signal: killed", Go's signal name as runc prints it, or "hook ran past
// specified timeout of 2.0s") followed by ", stdout: ..., stderr: ...".
Result<void> run_hook(const spec::Hook& hook, const std::string& state_json,
                      const std::vector<std::string>* env_if_absent = nullptr);

}  // namespace brig::runtime
