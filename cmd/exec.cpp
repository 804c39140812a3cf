// exec: run a new process inside a running container.
#include <charconv>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "runtime/container.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cmd {
namespace {

int exec_action(cli::Context& c) {
  runtime::ExecOptions o;
  o.id = c.p.args[0];
  o.args.assign(c.p.args.begin() + 1, c.p.args.end());
  o.process_file = c.p.get("process");
  o.tty = c.p.flag("tty");
  o.detach = c.p.flag("detach");
  o.console_socket = c.p.get("console-socket");
  o.pid_file = c.p.get("pid-file");
  o.cwd = c.p.get("cwd");
  o.user = c.p.get("user");
  o.env = c.p.all("env");
  o.additional_gids = c.p.all("additional-gids");
  o.caps = c.p.all("cap");
  o.cgroups = c.p.all("cgroup");
  o.no_new_privs = c.p.flag("no-new-privs");
  o.ignore_paused = c.p.flag("ignore-paused");
  o.apparmor = c.p.get("apparmor");
  o.process_label = c.p.get("process-label");
  auto pf = preserve_fds(c.p);
  if (!pf) return cli::fail_command("exec failed: " + pf.error().msg);
  o.preserve_fds = *pf;
  auto r = runtime::exec(globals(), o);
  if (!r) {
    cli::fail_command("exec failed: " + r.error().msg);
    return 255;  // runc's exit status for a failed exec
  }
  return *r;
}

cli::Register exec_cmd("exec", [] {
  return cli::Command{
    .name = "exec",
    .summary = "execute new process inside the container",
    .args_usage = "<container-id> <command> [command options]  || -p process.json <container-id>",
    .description =
        "Where \"<container-id>\" is the name for the instance of the container and\n"
        "\"<command>\" is the command to be executed in the container.\n"
        "\"<command>\" can't be empty unless a \"-p\" flag provided.\n\n"
        "EXAMPLE:\nFor example, if the container is configured to run the linux ps command the\n"
        "following will output a list of processes running in the container:\n\n"
        "       # brig exec <container-id> ps",
    .flags =
        {
            {{"console-socket"}, true,
             "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the "
             "console's pseudoterminal",
             ""},
            {{"cwd"}, true, "current working directory in the container", ""},
            {{"env", "e"}, true, "set environment variables", "", true},
            {{"tty", "t"}, false, "allocate a pseudo-TTY", ""},
            {{"user", "u"}, true, "UID (format: <uid>[:<gid>])", ""},
            {{"additional-gids", "g"}, true, "additional gids", "", true},
            {{"process", "p"}, true, "path to the process.json", ""},
            {{"detach", "d"}, false, "detach from the container's process", ""},
            {{"pid-file"}, true, "specify the file to write the process id to", ""},
            {{"process-label"}, true, "set the asm process label for the process commonly used with selinux", ""},
            {{"apparmor"}, true, "set the apparmor profile for the process", ""},
            {{"no-new-privs"}, false, "set the no new privileges value for the process", ""},
            {{"cap", "c"}, true, "add a capability to the bounding set for the process", "", true},
            {{"preserve-fds"}, true,
             "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)", "0"},
            {{"cgroup"}, true,
             "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.", "", true},
            {{"ignore-paused"}, false, "allow exec in a paused container", ""},
        },
    .min_args = 1,
    .max_args = -1,
    .pass_through = true,
    .action = exec_action,
  };
});

}  // namespace
}  // namespace brig::cmd
