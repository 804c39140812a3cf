// state, list, spec: the commands that report or write files.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "cmd/cli.hpp"
#include "cmd/globals.hpp"
#include "runtime/container.hpp"
#include "runtime/core/sys.hpp"
#include "spec/config.hpp"
#include "spec/state.hpp"

namespace brig::cmd {
namespace {

void out(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

cli::Register state_cmd("state", [] {
  return cli::Command{
    .name = "state",
    .summary = "output the state of a container",
    .args_usage = "<container-id>",
    .description = "Where \"<container-id>\" is your name for the instance of the container.\n\n"
                   "DESCRIPTION:\n   The state command outputs current state information for the\n"
                   "instance of a container.",
    .min_args = 1,
    .max_args = 1,
    .action =
        [](cli::Context& c) {
          auto s = runtime::state(globals(), c.p.args[0]);
          if (!s) return cli::fail_command(s.error().msg);
          out(spec::state_json_pretty(*s));
          return 0;
        },
  };
});

cli::Register list_cmd("list", {"ls"}, [] {
  return cli::Command{
    .name = "list",
    .aliases = {"ls"},
    .summary = "lists containers started by brig with the given root",
    .description = "EXAMPLE:\nTo list containers created via the default \"--root\":\n       # brig list\n\n"
                   "To list containers created using a non-default value for \"--root\":\n"
                   "       # brig --root value list",
    .flags = {{{"format", "f"}, true, "select one of: table or json", "\"table\""},
              {{"quiet", "q"}, false, "display only container IDs", ""}},
    .min_args = 0,
    .max_args = 0,
    .action =
        [](cli::Context& c) {
          auto all = runtime::list(globals());
          std::string f = c.p.get("format", "table");
          if (c.p.flag("quiet")) {
            for (auto& e : all) out(e.state.id + "\n");
            return 0;
          }
          if (f == "json") {
            if (all.empty()) {
              out("null\n");
              return 0;
            }
            std::string s = "[";
            for (size_t i = 0; i < all.size(); i++) {
              auto st = all[i].state;
              st.owner = all[i].owner;
              if (i) s += ',';
              s += spec::state_json_compact(st);
            }
            out(s + "]\n");
            return 0;
          }
          if (f != "table") return cli::fail_command(fmt::format("invalid format option"));
          std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
          for (auto& e : all)
            rows.push_back({e.state.id, std::to_string(e.state.pid), e.state.status, e.state.bundle,
                            e.state.created, e.owner});
          out(cli::table(rows));
          return 0;
        },
  };
});

cli::Register spec_cmd("spec", [] {
  return cli::Command{
    .name = "spec",
    .summary = "create a new specification file",
    .description =
        "The spec command creates the new specification file named \"config.json\" for\n"
        "the bundle.\n\n"
        "The spec generated is just a starter file. Editing of the spec is required to\n"
        "achieve desired results. For example, the newly generated spec includes an args\n"
        "parameter that is initially set to call the \"sh\" command when the container\n"
        "is started.\n\n"
        "EXAMPLE:\n  To run a simple \"hello-world\" container:\n\n"
        "    mkdir hello && cd hello\n    brig spec\n"
        "    # put a root filesystem in rootfs/, set process.args, then\n    brig run hello",
    .flags = {{{"bundle", "b"}, true, "path to the root of the bundle directory", ""},
              {{"rootless"}, false, "generate a configuration for a rootless container", ""}},
    .min_args = 0,
    .max_args = 0,
    .action =
        [](cli::Context& c) {
          std::string dir = c.p.get("bundle", ".");
          struct stat st;
          if (::stat(dir.c_str(), &st) < 0) return cli::fail_command(Error::sys(errno, "chdir " + dir).msg);
          std::string path = dir + "/config.json";
          if (sys::exists(path)) return cli::fail_command("File config.json exists. Remove it first");
          std::string text = spec::default_config_ordered(c.p.flag("rootless"), ::getuid(), ::getgid()).dump(1, '\t');
          int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
          if (fd < 0) return cli::fail_command(Error::sys(errno, "open " + path).msg);
          Fd f(fd);
          auto w = sys::write_all(f, text);
          if (!w) return cli::fail_command(w.error().msg);
          return 0;
        },
  };
});

}  // namespace
}  // namespace brig::cmd
