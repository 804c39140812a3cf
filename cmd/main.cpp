// brig: the command line. Global flags, dispatch, runc's exit codes.
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "runtime/core/fault.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/sanitizers.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/selfexe.hpp"
#include "runtime/vm/vm.hpp"

using namespace brig;

namespace {

void print_out(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

std::string version_text() {
  return fmt::format("brig version {}\ncommit: {}\nspec: 1.3.0\n", BRIG_VERSION, BRIG_COMMIT);
}

// An exception nothing caught is a bug: say what it was in one log line (in
// the log format the caller asked for, where containerd's shim reads it),
// then abort as before.
[[noreturn]] void internal_error() {
  std::string what = "std::terminate called without an exception";
  try {
    if (auto e = std::current_exception()) std::rethrow_exception(e);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception of unknown type";
  }
  log::fatal_line("internal error: " + what);
  std::abort();
}

#ifdef BRIG_HOT_TEXT_ORDERED
// Where the code brig's common commands run ends: contrib/bench/hot-functions.txt
// lists this function last, so the linker places it right after that code
// (CMakeLists.txt, BRIG_LAYOUT, which defines BRIG_HOT_TEXT_ORDERED). Never
// called; only its address is taken.
extern "C" __attribute__((noinline)) void brig_hot_text_end() { asm volatile(""); }

// Before anything else runs (the static constructors of the command
// registry included), the code brig's common commands run, from the start
// of the text to brig_hot_text_end, is mapped in one call
// (runtime::set_hot_text, which maps it again after the self-exe move).
__attribute__((constructor(101))) void map_hot_text() {
  uintptr_t text = 0;
  ::dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* out) -> int {
        for (size_t i = 0; i < info->dlpi_phnum; ++i)
          if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_X)) {
            *static_cast<uintptr_t*>(out) = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            break;
          }
        return 1;  // the main program only (reported first)
      },
      &text);
  auto end = reinterpret_cast<uintptr_t>(&brig_hot_text_end);
  if (text != 0 && end > text && end - text < (uintptr_t{16} << 20)) runtime::set_hot_text(text, end);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(internal_error);
  log::start_clock();
  // A closed stdio slot must not be taken by the first fd brig opens.
  sys::reserve_fds(0, 3);
  // PID 1 of a microVM guest (hidden: not a user command).
  if (argc >= 2 && std::string_view(argv[1]) == "vm-agent") runtime::vm::agent_main();
  // Test builds: the fault-injection steps, for the walk that tries each one.
  if (const char* f = std::getenv("BRIG_FAULT"); fault::enabled() && f && std::string_view(f) == "list") {
    for (auto s : fault::steps()) std::printf("%.*s\n", static_cast<int>(s.size()), s.data());
    return 0;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  const auto& gflags = cmd::global_flags();
  auto gp = cli::parse(gflags, args, /*reorder=*/false);
  if (!gp) {
    print_out("Incorrect Usage. " + gp.error().msg + "\n\n" + cli::app_help(cli::commands(), gflags));
    return cli::fail_command(gp.error().msg);
  }
  auto lf = cmd::apply_globals(*gp);
  if (!lf) return cli::fail_command(lf.error().msg);

  if (gp->flag("version")) {
    print_out(version_text());
    return 0;
  }
  if (gp->args.empty() || gp->flag("help")) {
    print_out(cli::app_help(cli::commands(), gflags));
    return 0;
  }
  std::string name = gp->args[0];
  std::vector<std::string> rest(gp->args.begin() + 1, gp->args.end());
  if (name == "help" || name == "h") {
    if (rest.empty()) {
      print_out(cli::app_help(cli::commands(), gflags));
      return 0;
    }
    name = rest[0];
    rest = {"--help"};
  }
  const std::optional<cli::Command> cmd = cli::find_command(name);
  if (!cmd && (name == "checkpoint" || name == "restore")) {
    // runc's commands that brig does not have: say so, rather than
    // "No help topic", to whoever (containerd's shim, podman) asks.
    log::fatal_line(fmt::format("{}: not supported: brig has no checkpoint/restore (CRIU) support", name));
    return 1;
  }
  if (!cmd) {
    log::fatal_line(fmt::format("No help topic for '{}'", name));
    return 3;
  }
  int rc = cli::run_command(*cmd, rest, std::string(argv[0]) + ": ");
#if BRIG_ASAN
  return rc;  // LeakSanitizer looks at what is left at exit
#else
  // Done: what is left to free goes with the process. Static destructors and
  // exit handlers (~25 us of a 2.5 ms exec) have nothing to do that matters;
  // stdout, the one buffered stream, is flushed here. Logs are unbuffered.
  std::fflush(nullptr);
  ::_exit(rc);
#endif
}
