// The command line: the input is argv, NUL-separated. It goes through what
// cmd/main.cpp does before a command's action runs: the global flags, the
// command lookup, the command's own flags (with urfave/cli's reordering
// unless the command passes its arguments through), the arity check, the
// help text, and the value parsers the actions use (signals, --preserve-fds).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "runtime/container.hpp"

using namespace brig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> argv;
  std::string cur;
  for (size_t i = 0; i < size; i++) {
    if (data[i] == 0) {
      argv.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  argv.push_back(std::move(cur));
  if (argv.size() > 64) return 0;

  auto gp = cli::parse(cmd::global_flags(), argv, /*reorder=*/false);
  if (!gp || gp->args.empty()) return 0;
  (void)gp->flag("debug");
  (void)gp->get("root");
  const std::string& name = gp->args[0];
  for (const auto& c : cli::commands()) {
    bool match = c.name == name;
    for (auto& a : c.aliases) match = match || a == name;
    if (!match) continue;
    std::vector<cli::Flag> flags = c.flags;
    flags.push_back(cli::Flag{{"help", "h"}, false, "show help", ""});
    std::vector<std::string> rest(gp->args.begin() + 1, gp->args.end());
    auto p = cli::parse(flags, rest, !c.pass_through);
    if (!p) return 0;
    (void)cli::check_arity(c, p->args.size());
    if (p->flag("help")) (void)cli::command_help(c);
    {
      // preserve_fds reserves fds 3..3+N with /dev/null (brig is a one-shot
      // process); give back what it opened so the fuzzer's table stays free.
      std::vector<bool> open_before(64);
      for (int fd = 3; fd < 64; fd++) open_before[fd] = ::fcntl(fd, F_GETFD) >= 0;
      if (auto n = cmd::preserve_fds(*p); n && *n > 0)
        for (int fd = 3; fd < 3 + *n; fd++)
          if (fd >= 64 || !open_before[fd]) ::close(fd);
    }
    if (c.name == "kill" && p->args.size() > 1) (void)runtime::parse_signal(p->args[1]);
    for (auto& f : flags) {
      (void)p->all(f.names[0]);
      (void)p->flag(f.names[0]);
    }
  }
  return 0;
}
