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

// --preserve-fds N: parses N and keeps brig's own fds out of fds 3..3+extra+N
// (`extra`: socket-activation fds that come first).
Result<int> preserve_fds(const cli::Parsed& p, int extra = 0);

// crun's `delete --regex`: the ids that a POSIX extended regex matches
// anywhere (unanchored, as regexec does), in the order given.
Result<std::vector<std::string>> match_ids(const std::string& regex, const std::vector<std::string>& ids);

}  // namespace brig::cmd
