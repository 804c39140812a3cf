// runc-compatible command line: flags as Go's flag package reads them (-f and
// --f alike, "--f=v" or "--f v", "--" ends flags), flags after positional
// arguments moved in front as urfave/cli does (except for commands that pass
// their trailing arguments through, like exec), and runc's help layout.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "runtime/core/error.hpp"

namespace brig::cli {

struct Flag {
  std::vector<std::string> names;  // first is canonical: {"bundle", "b"}
  bool takes_value = false;
  std::string usage;
  std::string def;                 // shown as (default: ...) when non-empty
  bool repeatable = false;         // e.g. --env may be given many times
};

struct Parsed {
  std::map<std::string, std::vector<std::string>> values;  // canonical name -> values
  std::vector<std::string> args;

  bool has(const std::string& name) const { return values.count(name) > 0; }
  bool flag(const std::string& name) const;  // a bool flag, honouring --x=false
  std::string get(const std::string& name, const std::string& def = "") const;
  std::vector<std::string> all(const std::string& name) const;
};

// `reorder`: accept flags after positional args (urfave/cli's behaviour).
Result<Parsed> parse(const std::vector<Flag>& flags, std::span<const std::string> argv, bool reorder);

struct Command;
struct Context {
  const Command& cmd;
  Parsed p;
};

enum class Arity { exact, min, max, range, any };

struct Command {
  std::string name;
  std::vector<std::string> aliases;
  std::string summary;      // one line, for the command list
  std::string args_usage;   // "<container-id>"
  std::string description;  // free text after USAGE
  std::vector<Flag> flags;
  int min_args = 0, max_args = -1;  // -1: no maximum
  bool pass_through = false;        // stop at the first positional (exec)
  std::function<int(Context&)> action;
};

std::string command_help(const Command& c);
std::string app_help(const std::vector<Command>& cmds, const std::vector<Flag>& globals);
// runc's arity messages: "\"run\" requires exactly 1 argument(s)".
std::optional<std::string> check_arity(const Command& c, size_t n);

// The registry of every command, filled by the cmd/*.cpp files: a name (and
// aliases) with the function that makes the command. A command's flags and
// help are made only when it runs or a help text lists it: all of them made
// at start cost every invocation ~0.17 M instructions (callgrind), a tenth
// of what `run` does in its own process.
struct Entry {
  std::string_view name;
  std::vector<std::string_view> aliases;
  Command (*make)();
};
std::vector<Entry>& registry();
struct Register {
  Register(std::string_view name, Command (*make)()) { registry().push_back({name, {}, make}); }
  Register(std::string_view name, std::initializer_list<std::string_view> aliases, Command (*make)()) {
    registry().push_back({name, aliases, make});
  }
};
// Every command, made on the first call (help, tests).
const std::vector<Command>& commands();
// The command `name` names (or an alias of it), made alone.
std::optional<Command> find_command(std::string_view name);

// Parses a command's flags from `rest` (usage on stdout and exit 1 on a bad
// one), answers --help, checks the argument count (`arity_prefix` goes before
// the arity error) and runs the action.
int run_command(const Command& cmd, const std::vector<std::string>& rest, const std::string& arity_prefix);

// runc's table: Go's tabwriter with minwidth 12, padding 3; the last column unpadded.
std::string table(const std::vector<std::vector<std::string>>& rows);

// Prints the error the way runc does and returns the exit code 1.
int fail_command(const std::string& msg);

}  // namespace brig::cli
