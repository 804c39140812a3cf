#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include "runtime/core/sys.hpp"
#include "runtime/hooks.hpp"

using namespace brig;

namespace {
spec::Hook sh(const std::string& script, std::optional<int64_t> timeout = std::nullopt) {
  spec::Hook h;
  h.path = "/bin/sh";
  h.args = {"sh", "-c", script};
  h.env = {"HOOKVAR=v"};
  h.timeout = timeout;
  return h;
}
}  // namespace

TEST_CASE("a hook gets the state on stdin and its own env", "[hooks]") {
  auto r = runtime::run_hook(sh("read s; [ \"$s\" = '{\"id\":\"x\"}' ] && [ \"$HOOKVAR\" = v ]"), "{\"id\":\"x\"}");
  CHECK(r);
}

TEST_CASE("a failing hook reports status, stdout and stderr", "[hooks]") {
  auto r = runtime::run_hooks({sh("true"), sh("echo out; echo err >&2; exit 3")}, "createRuntime", "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "error running createRuntime hook #1: exit status 3, stdout: out, stderr: err");
}

TEST_CASE("the first failure stops the list", "[hooks]") {
  char tmpl[] = "/tmp/brig-hook-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string marker = std::string(tmpl) + "/ran";
  auto r = runtime::run_hooks({sh("exit 1"), sh("touch " + marker)}, "poststart", "{}");
  REQUIRE_FALSE(r);
  CHECK(::access(marker.c_str(), F_OK) != 0);
  ::rmdir(tmpl);
}

TEST_CASE("a hook past its timeout is killed", "[hooks]") {
  auto r = runtime::run_hook(sh("sleep 10", 1), "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg.rfind("timeout after 1 seconds", 0) == 0);
}

TEST_CASE("a hook that cannot be executed fails with the reason", "[hooks]") {
  spec::Hook h;
  h.path = "/nonexistent/hook";
  auto r = runtime::run_hook(h, "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "exit status 127, stdout: , stderr: exec /nonexistent/hook: no such file or directory");
}

TEST_CASE("a reader gone before the write (a hook, init at start) does not kill brig with SIGPIPE", "[hooks]") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ::close(p[0]);  // the hook's end: already closed
  Fd w(p[1]);
  // Without the protection this process dies of SIGPIPE right here.
  auto r = sys::write_all_nosigpipe(w, "{\"id\":\"x\"}");
  REQUIRE_FALSE(r);
  CHECK(r.error().err == EPIPE);
  sigset_t pending;
  sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));
  // and the hooks that exit at once, many times (the race the ASan run lost)
  for (int i = 0; i < 50; i++) CHECK_FALSE(runtime::run_hook(sh("exit 1"), std::string(4000, 'x')));
}
