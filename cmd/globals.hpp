// Global flags (before the command) and the options they set.
#pragma once

#include <vector>

#include "cmd/cli.hpp"
#include "runtime/container.hpp"

namespace brig::cmd {

const std::vector<cli::Flag>& global_flags();
// Configures logging and remembers --root etc.; errors on bad values.
Result<void> apply_globals(const cli::Parsed& p);
const runtime::Globals& globals();

}  // namespace brig::cmd
