// create, start, run, kill, delete: the commands that change a container.
#include <charconv>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "runtime/container.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/process.hpp"

namespace brig::cmd {
namespace {

const std::string kIdArg = "<container-id>";

std::vector<cli::Flag> create_flags() {
  return {
      {{"bundle", "b"}, true, "path to the root of the bundle directory, defaults to the current directory", ""},
      {{"console-socket"}, true,
       "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the "
       "console's pseudoterminal",
       ""},
      {{"pid-file"}, true, "specify the file to write the process id to", ""},
      {{"no-pivot"}, false,
       "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on "
       "top of a ramdisk",
       ""},
      {{"no-new-keyring"}, false,
       "do not create a new session keyring for the container.  This will cause the container to inherit the "
       "calling processes session key",
       ""},
      {{"preserve-fds"}, true,
       "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)", "0"},
  };
}

Result<runtime::CreateOptions> create_options(const cli::Context& c) {
  runtime::CreateOptions o;
  o.id = c.p.args.at(0);
  o.bundle = c.p.get("bundle");
  o.pid_file = c.p.get("pid-file");
  o.console_socket = c.p.get("console-socket");
  o.no_pivot = c.p.flag("no-pivot");
  o.no_new_keyring = c.p.flag("no-new-keyring");
  TRY(o.preserve_fds, preserve_fds(c.p, runtime::listen_fds()));
  return o;
}

int finish(const Result<void>& r, const char* what = nullptr) {
  if (r) return 0;
  return cli::fail_command(what ? fmt::format("brig {} failed: {}", what, r.error().msg) : r.error().msg);
}

cli::Register create_cmd("create", [] {
  return cli::Command{
    .name = "create",
    .summary = "create a container",
    .args_usage = kIdArg,
    .description =
        "Where \"<container-id>\" is your name for the instance of the container that you\n"
        "are starting. The name you provide for the container instance must be unique on\n"
        "your host.\n\n"
        "DESCRIPTION:\n   The create command creates an instance of a container for a bundle. The bundle\n"
        "is a directory with a specification file named \"config.json\" and a root\n"
        "filesystem. The container's init waits until \"brig start\" runs the process.",
    .flags = create_flags(),
    .min_args = 1,
    .max_args = 1,
    .action =
        [](cli::Context& c) {
          auto o = create_options(c);
          if (!o) return finish(fail(o.error()), "create");
          return finish(runtime::create(globals(), *o), "create");
        },
  };
});

cli::Register run_cmd("run", [] {
  return cli::Command{
    .name = "run",
    .summary = "create and run a container",
    .args_usage = kIdArg,
    .description =
        "Where \"<container-id>\" is your name for the instance of the container that you\n"
        "are starting. The name you provide for the container instance must be unique on\n"
        "your host.\n\n"
        "DESCRIPTION:\n   The run command creates an instance of a container for a bundle, starts it and\n"
        "waits for it, leaving with its exit status (128+N when killed by signal N).",
    .flags =
        [] {
          auto f = create_flags();
          f.insert(f.begin() + 2, cli::Flag{{"detach", "d"}, false, "detach from the container's process", ""});
          f.insert(f.begin() + 3, cli::Flag{{"keep"}, false, "do not delete the container after it exits", ""});
          f.insert(f.begin() + 5, cli::Flag{{"no-subreaper"}, false,
                                            "disable the use of the subreaper used to reap reparented processes", ""});
          return f;
        }(),
    .min_args = 1,
    .max_args = 1,
    .action =
        [](cli::Context& c) {
          auto o = create_options(c);
          if (!o) return finish(fail(o.error()), "run");
          runtime::RunOptions r;
          r.create = *o;
          r.detach = c.p.flag("detach");
          r.keep = c.p.flag("keep");
          r.no_subreaper = c.p.flag("no-subreaper");
          auto code = runtime::run(globals(), r);
          if (!code) return finish(fail(code.error()), "run");
          return *code;
        },
  };
});

cli::Register start_cmd("start", [] {
  return cli::Command{
    .name = "start",
    .summary = "executes the user defined process in a created container",
    .args_usage = kIdArg,
    .description =
        "Where \"<container-id>\" is your name for the instance of the container that you\n"
        "are starting. The name you provide for the container instance must be unique on\n"
        "your host.",
    .min_args = 1,
    .max_args = 1,
    .action = [](cli::Context& c) { return finish(runtime::start(globals(), c.p.args[0])); },
  };
});

cli::Register kill_cmd("kill", [] {
  return cli::Command{
    .name = "kill",
    .summary = "kill sends the specified signal (default: SIGTERM) to the container's init process",
    .args_usage = "<container-id> [signal]",
    .description =
        "Where \"<container-id>\" is the name for the instance of the container and\n"
        "\"[signal]\" is the signal to be sent to the init process.\n\n"
        "EXAMPLE:\nFor example, if the container id is \"ubuntu01\" the following will send a \"KILL\"\n"
        "signal to the init process of the \"ubuntu01\" container:\n\n       # brig kill ubuntu01 KILL",
    .flags = {{{"all", "a"}, false, "send the specified signal to all processes inside the container", ""}},
    .min_args = 1,
    .max_args = 2,
    .action =
        [](cli::Context& c) {
          auto sig = runtime::parse_signal(c.p.args.size() > 1 ? c.p.args[1] : "SIGTERM");
          if (!sig) return finish(fail(sig.error()));
          return finish(runtime::kill(globals(), c.p.args[0], *sig, c.p.flag("all")));
        },
  };
});

cli::Register delete_cmd("delete", [] {
  return cli::Command{
    .name = "delete",
    .summary = "delete any resources held by the container often used with detached container",
    .args_usage = kIdArg,
    .description =
        "Where \"<container-id>\" is the name for the instance of the container.\n\n"
        "EXAMPLE:\nFor example, if the container id is \"ubuntu01\" and brig list currently shows the\n"
        "status of \"ubuntu01\" as \"stopped\" the following will delete resources held for\n"
        "\"ubuntu01\" removing \"ubuntu01\" from the brig list of containers:\n\n       # brig delete ubuntu01",
    .flags = {{{"force", "f"}, false, "Forcibly deletes the container if it is still running (uses SIGKILL)", ""},
              {{"regex", "r"}, false,
               "the specified container id is a regular expression (delete every container it matches, crun's flag)",
               ""}},
    .min_args = 1,
    .max_args = 1,
    .action =
        [](cli::Context& c) {
          bool force = c.p.flag("force");
          if (!c.p.flag("regex")) return finish(runtime::remove(globals(), c.p.args[0], force));
          std::vector<std::string> ids;
          for (const auto& e : runtime::list(globals())) ids.push_back(e.state.id);
          auto matched = match_ids(c.p.args[0], ids);
          if (!matched) return finish(fail(matched.error()));
          int rc = 0;
          for (const auto& id : *matched)
            if (finish(runtime::remove(globals(), id, force)) != 0) rc = 1;
          return rc;
        },
  };
});

}  // namespace
}  // namespace brig::cmd
