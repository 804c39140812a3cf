// network ls | inspect NAME | prune | reload: brig's bridge networks (netns/).
#include <algorithm>
#include <cstdio>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "netns/attach.hpp"
#include "netns/network.hpp"

namespace brig::cmd {
namespace {

void out(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

int ls_action(cli::Context& c) {
  auto nets = netns::list_networks();
  if (!nets) return cli::fail_command(nets.error().msg);
  std::string f = c.p.get("format", "table");
  if (f != "table" && f != "json") return cli::fail_command("invalid format option");
  if (c.p.flag("quiet")) {
    for (auto& n : *nets) out(n.name + "\n");
    return 0;
  }
  std::vector<netns::NetworkStatus> sts;
  for (auto& n : *nets) {
    auto st = netns::status(n);
    if (!st) return cli::fail_command(st.error().msg);
    sts.push_back(std::move(*st));
  }
  if (f == "json") {
    nlohmann::json a = nlohmann::json::array();
    for (auto& s : sts) a.push_back(netns::to_json(s));
    out(a.dump() + "\n");
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "BRIDGE", "SUBNET", "SUBNET6", "GATEWAY", "CONTAINERS"}};
  for (auto& s : sts) {
    size_t alive = 0;
    for (auto& h : s.leases) alive += h.alive;
    rows.push_back({s.net.name, s.net.bridge, s.net.subnet.str(), s.net.subnet6 ? s.net.subnet6->str() : "-",
                    s.net.gateway.str(), std::to_string(alive)});
  }
  out(cli::table(rows));
  return 0;
}

int inspect_action(cli::Context& c) {
  nlohmann::json a = nlohmann::json::array();
  for (auto& name : c.p.args) {
    auto n = netns::load_network(name);
    if (!n) return cli::fail_command(n.error().msg);
    auto st = netns::status(*n);
    if (!st) return cli::fail_command(st.error().msg);
    a.push_back(netns::to_json(*st));
  }
  out(a.dump(4) + "\n");
  return 0;
}

int prune_action(cli::Context&) {
  std::vector<std::string> removed;
  auto r = netns::prune(removed);
  for (auto& l : removed) out("removed " + l + "\n");
  return r ? 0 : cli::fail_command(r.error().msg);
}

int reload_action(cli::Context&) {
  std::vector<std::string> done;
  auto r = netns::reload(done);
  for (auto& l : done) out(l + "\n");
  return r ? 0 : cli::fail_command(r.error().msg);
}

const std::vector<cli::Command>& subcommands() {
  static const std::vector<cli::Command> subs = {
      {.name = "network ls",
       .aliases = {"list"},
       .summary = "list brig's networks (the built-in \"brig\" and those defined under the config dir)",
       .flags = {{{"format", "f"}, true, "select one of: table or json", "\"table\""},
                 {{"quiet", "q"}, false, "display only network names", ""}},
       .min_args = 0,
       .max_args = 0,
       .action = ls_action},
      {.name = "network inspect",
       .summary = "show a network's definition, its bridge and its address leases as JSON",
       .args_usage = "<network-name> [network-name...]",
       .min_args = 1,
       .max_args = -1,
       .action = inspect_action},
      {.name = "network prune",
       .summary = "reclaim stale leases, delete unused bridges brig made and brig's empty nftables table",
       .min_args = 0,
       .max_args = 0,
       .action = prune_action},
      {.name = "network reload",
       .summary = "put brig's nftables rules back for running containers (after a flush ruleset)",
       .min_args = 0,
       .max_args = 0,
       .action = reload_action},
  };
  return subs;
}

std::string network_help() {
  std::string s =
      "NAME:\n   brig network - manage brig's bridge networks\n\n"
      "USAGE:\n   brig network command [command options] [arguments...]\n\n"
      "DESCRIPTION:\n   A container joins a brig network when its config creates a new network\n"
      "   namespace and carries the annotation io.brig.network=NAME (published ports:\n"
      "   io.brig.network.ports=HOST:CONTAINER[/tcp|/udp],...). Networks are defined in\n"
      "   $BRIG_CONFIG_DIR/networks/NAME.json (default /etc/brig); \"brig\" (bridge brig0,\n"
      "   10.87.0.0/16) needs no file. See brig(8).\n\n"
      "COMMANDS:\n";
  for (auto& c : subcommands()) {
    std::string n = c.name.substr(8);
    for (auto& a : c.aliases) n += ", " + a;
    s += fmt::format("   {:<12}  {}\n", n, c.summary);
  }
  return s;
}

int network_action(cli::Context& c) {
  if (c.p.args.empty()) {
    out(network_help());
    return 0;
  }
  std::string sub = c.p.args[0];
  const cli::Command* cmd = nullptr;
  for (auto& s : subcommands())
    if (s.name == "network " + sub || std::find(s.aliases.begin(), s.aliases.end(), sub) != s.aliases.end())
      cmd = &s;
  if (!cmd) {
    out("Incorrect Usage.\n\n" + network_help());
    return cli::fail_command(fmt::format("unknown network command \"{}\"", sub));
  }
  std::vector<std::string> rest(c.p.args.begin() + 1, c.p.args.end());
  return cli::run_command(*cmd, rest, "");
}

cli::Register network_cmd("network", [] {
  return cli::Command{
    .name = "network",
    .summary = "manage brig's bridge networks (ls, inspect, prune, reload)",
    .args_usage = "command [arguments...]",
    .description = "COMMANDS:\n   ls        list networks\n   inspect   show a network as JSON\n"
                   "   prune     remove stale leases, unused bridges and rules brig made\n"
                   "   reload    put brig's nftables rules back for running containers\n\n"
                   "Run 'brig network COMMAND --help' for more on a command.",
    .min_args = 0,
    .max_args = -1,
    .pass_through = true,
    .action = network_action,
  };
});

}  // namespace
}  // namespace brig::cmd
