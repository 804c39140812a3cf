#include <catch2/catch.hpp>

#include <fcntl.h>
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
  CHECK(r.error().msg == "hook ran past specified timeout of 1.0s, stdout: , stderr: ");
}

TEST_CASE("a hook without env gets brig's, one with env [] none", "[hooks]") {
  spec::Hook h;
  h.path = "/bin/sh";
  h.args = {"sh", "-c", "[ \"$BRIG_HOOK_TEST\" = ours ] || { echo \"got '$BRIG_HOOK_TEST'\"; exit 1; }"};
  ::setenv("BRIG_HOOK_TEST", "ours", 1);
  auto inherited = runtime::run_hook(h, "{}");
  h.env = std::vector<std::string>{};
  auto emptied = runtime::run_hook(h, "{}");
  ::unsetenv("BRIG_HOOK_TEST");
  CHECK(inherited);
  REQUIRE_FALSE(emptied);
  CHECK(emptied.error().msg == "exit status 1, stdout: got '', stderr: ");
}

TEST_CASE("a hook without env gets the env the caller names for its phase, not brig's", "[hooks]") {
  spec::Hook h;
  h.path = "/bin/sh";
  h.args = {"sh", "-c", "echo \"${BRIG_HOOK_TEST-unset} $CONTAINER_VAR\"; exit 1"};
  ::setenv("BRIG_HOOK_TEST", "ours", 1);
  std::vector<std::string> process_env = {"CONTAINER_VAR=yes"};
  auto r = runtime::run_hooks({h}, "startContainer", "{}", &process_env);
  h.env = std::vector<std::string>{"CONTAINER_VAR=own"};  // its own still wins
  auto own = runtime::run_hook(h, "{}", &process_env);
  ::unsetenv("BRIG_HOOK_TEST");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "error running startContainer hook #0: exit status 1, stdout: unset yes, stderr: ");
  REQUIRE_FALSE(own);
  CHECK(own.error().msg == "exit status 1, stdout: unset own, stderr: ");
}

TEST_CASE("a hook that leaves a child behind holding its output is done when it exits", "[hooks]") {
  char tmpl[] = "/tmp/brig-hook-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string pidfile = std::string(tmpl) + "/bg.pid";
  int64_t t0 = sys::monotonic_ms();
  CHECK(runtime::run_hook(sh("sleep 30 & echo $! > " + pidfile), "{}"));
  CHECK(sys::monotonic_ms() - t0 < 10'000);
  auto pid = sys::read_file(pidfile);
  REQUIRE(pid);
  ::kill(std::stoi(*pid), SIGKILL);
  ::unlink(pidfile.c_str());
  ::rmdir(tmpl);
}

TEST_CASE("a child a hook leaves behind cannot write on into the captured output", "[hooks]") {
  char tmpl[] = "/tmp/brig-hook-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string dir = tmpl;
  // The child writes once while the hook runs, and once after it has ended
  // (waiting 10 s at most for the go, so that a failed check leaves nothing).
  auto r = runtime::run_hook(
      sh("( echo early || touch " + dir + "/early-failed; i=0; while [ ! -e " + dir + "/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
         "echo late || touch " + dir + "/late-failed; touch " + dir + "/done ) & sleep 0.3; exit 1"),
      "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "exit status 1, stdout: early, stderr: ");
  int go = ::open((dir + "/go").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  REQUIRE(go >= 0);
  ::close(go);
  int64_t t0 = sys::monotonic_ms();
  while (::access((dir + "/done").c_str(), F_OK) != 0 && sys::monotonic_ms() - t0 < 10'000) ::usleep(20'000);
  CHECK(::access((dir + "/early-failed").c_str(), F_OK) != 0);
  CHECK(::access((dir + "/late-failed").c_str(), F_OK) == 0);  // sealed: EPERM
  for (const char* f : {"/go", "/done", "/late-failed", "/early-failed"}) ::unlink((dir + f).c_str());
  ::rmdir(tmpl);
}

TEST_CASE("a hook that cannot be executed fails with the reason", "[hooks]") {
  spec::Hook h;
  h.path = "/nonexistent/hook";
  auto r = runtime::run_hook(h, "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().msg == "exec /nonexistent/hook: no such file or directory");
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
