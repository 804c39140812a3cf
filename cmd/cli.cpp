#include "cmd/cli.hpp"

#include <algorithm>
#include <cstdio>

#include "runtime/core/log.hpp"

namespace brig::cli {

bool Parsed::flag(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return false;
  const std::string& v = it->second.back();
  return v != "false" && v != "0" && v != "f" && v != "F" && v != "FALSE" && v != "False";
}

std::string Parsed::get(const std::string& name, const std::string& def) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return def;
  return it->second.back();
}

std::vector<std::string> Parsed::all(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

Result<Parsed> parse(const std::vector<Flag>& flags, std::span<const std::string> argv, bool reorder) {
  Parsed p;
  auto find = [&](const std::string& n) -> const Flag* {
    for (auto& f : flags)
      if (std::find(f.names.begin(), f.names.end(), n) != f.names.end()) return &f;
    return nullptr;
  };
  size_t i = 0;
  for (; i < argv.size(); i++) {
    const std::string& a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      if (!reorder) break;
      p.args.push_back(a);
      continue;
    }
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    if (body.empty() || body[0] == '-' || body[0] == '=') return fail_msg("bad flag syntax: {}", a);
    std::optional<std::string> val;
    if (auto eq = body.find('='); eq != std::string::npos) {
      val = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const Flag* f = find(body);
    if (!f) return fail_msg("flag provided but not defined: -{}", body);
    if (f->takes_value) {
      if (!val) {
        if (i + 1 >= argv.size()) return fail_msg("flag needs an argument: -{}", body);
        val = argv[++i];
      }
    } else if (!val) {
      val = "true";
    } else if (*val != "true" && *val != "false" && *val != "1" && *val != "0" && *val != "t" &&
               *val != "f" && *val != "TRUE" && *val != "FALSE" && *val != "True" && *val != "False") {
      return fail_msg("invalid boolean value \"{}\" for -{}", *val, body);
    }
    auto& slot = p.values[f->names[0]];
    if (!f->repeatable) slot.clear();
    slot.push_back(*val);
  }
  for (; i < argv.size(); i++) p.args.push_back(argv[i]);
  return p;
}

namespace {
std::string flag_line(const Flag& f) {
  std::string names;
  for (auto& n : f.names) {
    if (!names.empty()) names += ", ";
    names += (n.size() == 1 ? "-" : "--") + n + (f.takes_value ? " value" : "");
  }
  std::string usage = f.usage;
  if (!f.def.empty()) usage += fmt::format(" (default: {})", f.def);
  return fmt::format("   {:<{}}  {}\n", names, 24, usage);
}
}  // namespace

std::string command_help(const Command& c) {
  std::string s = fmt::format("NAME:\n   brig {} - {}\n\nUSAGE:\n   brig {}{}{}\n", c.name, c.summary, c.name,
                              c.flags.empty() ? "" : " [command options]",
                              c.args_usage.empty() ? "" : " " + c.args_usage);
  if (!c.description.empty()) s += "\n" + c.description + "\n";
  if (!c.flags.empty()) {
    s += "\nOPTIONS:\n";
    for (auto& f : c.flags) s += flag_line(f);
    s += flag_line(Flag{{"help", "h"}, false, "show help", ""});
  }
  return s;
}

std::string app_help(const std::vector<Command>& cmds, const std::vector<Flag>& globals) {
  std::string s =
      "NAME:\n   brig - a daemonless OCI container runtime\n\n"
      "brig runs containers packaged as OCI bundles: a directory holding config.json\n"
      "and a root filesystem. Its command line is runc's, so containerd, podman,\n"
      "conmon and scripts drive it unchanged.\n\n"
      "To start a new instance of a container:\n\n"
      "    # brig run [ -b bundle ] <container-id>\n\n"
      "USAGE:\n   brig [global options] command [command options] [arguments...]\n\n"
      "VERSION:\n   " BRIG_VERSION "\n\nCOMMANDS:\n";
  std::vector<const Command*> sorted;
  for (auto& c : cmds) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (auto* c : sorted) {
    std::string names = c->name;
    for (auto& a : c->aliases) names += ", " + a;
    s += fmt::format("   {:<10}  {}\n", names, c->summary);
  }
  s += fmt::format("   {:<10}  {}\n", "help, h", "Shows a list of commands or help for one command");
  s += "\nGLOBAL OPTIONS:\n";
  for (auto& f : globals) s += flag_line(f);
  return s;
}

std::optional<std::string> check_arity(const Command& c, size_t n) {
  int k = static_cast<int>(n);
  if (c.min_args == c.max_args && k != c.min_args)
    return fmt::format("\"{}\" requires exactly {} argument(s)", c.name, c.min_args);
  if (k < c.min_args) return fmt::format("\"{}\" requires a minimum of {} argument(s)", c.name, c.min_args);
  if (c.max_args >= 0 && k > c.max_args)
    return fmt::format("\"{}\" requires a maximum of {} argument(s)", c.name, c.max_args);
  return std::nullopt;
}

std::vector<Entry>& registry() {
  static std::vector<Entry> all;
  return all;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> all = [] {
    std::vector<Command> v;
    for (const auto& e : registry()) v.push_back(e.make());
    return v;
  }();
  return all;
}

std::optional<Command> find_command(std::string_view name) {
  for (const auto& e : registry())
    if (e.name == name || std::find(e.aliases.begin(), e.aliases.end(), name) != e.aliases.end()) return e.make();
  return std::nullopt;
}

int run_command(const Command& cmd, const std::vector<std::string>& rest, const std::string& arity_prefix) {
  auto print = [](const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); };
  std::vector<Flag> flags = cmd.flags;
  flags.push_back(Flag{{"help", "h"}, false, "show help", ""});
  auto p = parse(flags, rest, !cmd.pass_through);
  if (!p) {
    print("Incorrect Usage. " + p.error().msg + "\n\n" + command_help(cmd));
    return fail_command(p.error().msg);
  }
  if (p->flag("help")) {
    print(command_help(cmd));
    return 0;
  }
  if (auto e = check_arity(cmd, p->args.size())) {
    print("Incorrect Usage.\n\n" + command_help(cmd));
    return fail_command(arity_prefix + *e);
  }
  Context ctx{cmd, std::move(*p)};
  return cmd.action(ctx);
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (auto& r : rows)
    for (size_t i = 0; i + 1 < r.size(); i++) {
      if (w.size() <= i) w.push_back(12);
      w[i] = std::max(w[i], r[i].size() + 3);
    }
  std::string s;
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); i++)
      s += i + 1 < r.size() ? fmt::format("{:<{}}", r[i], w[i]) : r[i];
    s += "\n";
  }
  return s;
}

int fail_command(const std::string& msg) {
  log::fatal_line(msg);
  return 1;
}

}  // namespace brig::cli
