#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/seccomp.hpp"
#include "runtime/sync.hpp"
#include "spec/config.hpp"

using namespace brig;
namespace sc = brig::runtime::seccomp;

namespace {

constexpr uint32_t kX86_64 = SCMP_ARCH_X86_64;

spec::SyscallRule rule(std::vector<std::string> names, std::string action,
                       std::optional<uint32_t> errno_ret = std::nullopt, std::vector<spec::SeccompArg> args = {}) {
  spec::SyscallRule r;
  r.names = std::move(names);
  r.action = std::move(action);
  r.errnoRet = errno_ret;
  r.args = std::move(args);
  return r;
}

spec::SeccompArg arg(uint32_t index, std::string op, uint64_t value, std::optional<uint64_t> two = std::nullopt) {
  spec::SeccompArg a;
  a.index = index;
  a.op = std::move(op);
  a.value = value;
  a.valueTwo = two;
  return a;
}

spec::Seccomp profile(std::string def, std::vector<spec::SyscallRule> rules = {}) {
  spec::Seccomp s;
  s.defaultAction = std::move(def);
  s.syscalls = std::move(rules);
  return s;
}

sc::Filter ok(const spec::Seccomp& s) {
  auto f = sc::plan(s, kX86_64);
  if (!f) FAIL(f.error().msg);
  return *f;
}

std::string err(const spec::Seccomp& s) {
  auto f = sc::plan(s, kX86_64);
  REQUIRE_FALSE(f);
  return f.error().msg;
}

int nr_of(uint32_t arch, const char* name) { return seccomp_syscall_resolve_name_arch(arch, name); }

// A small classic-BPF interpreter, enough for the stub: ld [abs], jeq/jgt/jge
// with K, ret K. Returns the return value, or nullopt when the program runs
// off its end (the stub falls through to libseccomp's program).
std::optional<uint32_t> run_bpf(const std::vector<struct sock_filter>& p, uint32_t arch, uint32_t nr) {
  struct seccomp_data d {};
  d.nr = static_cast<int>(nr);
  d.arch = arch;
  uint32_t a = 0;
  for (size_t pc = 0; pc < p.size(); pc++) {
    const auto& i = p[pc];
    switch (i.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        std::memcpy(&a, reinterpret_cast<const char*>(&d) + i.k, 4);
        break;
      case BPF_JMP | BPF_JEQ | BPF_K: pc += (a == i.k) ? i.jt : i.jf; break;
      case BPF_JMP | BPF_JGT | BPF_K: pc += (a > i.k) ? i.jt : i.jf; break;
      case BPF_JMP | BPF_JGE | BPF_K: pc += (a >= i.k) ? i.jt : i.jf; break;
      case BPF_RET | BPF_K: return i.k;
      default: FAIL("unexpected BPF instruction " << i.code);
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("seccomp plan: default action, errno, arches, flags", "[seccomp]") {
  auto s = profile("SCMP_ACT_ERRNO");
  auto f = ok(s);
  CHECK(f.default_action == SCMP_ACT_ERRNO(EPERM));
  CHECK(f.arches == std::vector<uint32_t>{kX86_64});
  CHECK(f.flags == 0);
  CHECK(f.rules.empty());
  CHECK_FALSE(f.notify);

  s.defaultErrnoRet = EACCES;
  s.architectures = {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"};
  s.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"};
  f = ok(s);
  CHECK(f.default_action == SCMP_ACT_ERRNO(EACCES));
  CHECK(f.arches == std::vector<uint32_t>{kX86_64, SCMP_ARCH_X86, SCMP_ARCH_X32});
  CHECK(f.flags == (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW | SECCOMP_FILTER_FLAG_TSYNC));

  s.defaultErrnoRet = 0;  // errno 0: the syscall "succeeds" without running
  CHECK(ok(s).default_action == SCMP_ACT_ERRNO(0));
}

TEST_CASE("seccomp plan: every action", "[seccomp]") {
  const std::vector<std::pair<std::string, uint32_t>> table = {
      {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD},
      {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
      {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
      {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
      {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(EPERM)},
      {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(EPERM)},
      {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
      {"SCMP_ACT_LOG", SCMP_ACT_LOG},
  };
  for (auto& [name, value] : table) {
    INFO(name);
    CHECK(ok(profile(name)).default_action == value);
    auto def = name == "SCMP_ACT_ALLOW" ? "SCMP_ACT_LOG" : "SCMP_ACT_ALLOW";
    auto f = ok(profile(def, {rule({"mkdir"}, name)}));
    REQUIRE(f.rules.size() == 1);
    CHECK(f.rules[0].action == value);
  }
  auto f = ok(profile("SCMP_ACT_ALLOW", {rule({"mkdir"}, "SCMP_ACT_ERRNO", EACCES),
                                         rule({"rmdir"}, "SCMP_ACT_TRACE", 1234)}));
  CHECK(f.rules[0].action == SCMP_ACT_ERRNO(EACCES));
  CHECK(f.rules[1].action == SCMP_ACT_TRACE(1234));
  CHECK(f.rules[0].name == "mkdir");
  CHECK(f.rules[0].nr == nr_of(kX86_64, "mkdir"));
  CHECK(f.rules[0].where == "linux.seccomp.syscalls[0]");
  CHECK(f.rules[1].where == "linux.seccomp.syscalls[1]");
}

TEST_CASE("seccomp plan: errors name the JSON path", "[seccomp]") {
  auto allow = [](std::vector<spec::SyscallRule> r) { return profile("SCMP_ACT_ALLOW", std::move(r)); };
  std::vector<spec::SyscallRule> four = {rule({"read"}, "SCMP_ACT_LOG"), rule({"write"}, "SCMP_ACT_LOG"),
                                         rule({"open"}, "SCMP_ACT_LOG"), rule({"close"}, "X")};
  CHECK(err(allow(four)) == "linux.seccomp.syscalls[3].action: unknown action \"X\"");
  CHECK(err(profile("SCMP_ACT_NOPE")) == "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"");

  auto s = profile("SCMP_ACT_ALLOW");
  s.defaultErrnoRet = 1;
  CHECK(err(s) ==
        "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not take an errno (only SCMP_ACT_ERRNO and "
        "SCMP_ACT_TRACE do)");
  CHECK(err(allow({rule({"read"}, "SCMP_ACT_KILL", 1)})) ==
        "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL does not take an errno (only SCMP_ACT_ERRNO and "
        "SCMP_ACT_TRACE do)");
  CHECK(err(allow({rule({"read"}, "SCMP_ACT_ERRNO", 70000)})) ==
        "linux.seccomp.syscalls[0].errnoRet: 70000 is out of range (0-65535)");
  s = profile("SCMP_ACT_ERRNO");
  s.defaultErrnoRet = 65536;
  CHECK(err(s) == "linux.seccomp.defaultErrnoRet: 65536 is out of range (0-65535)");

  CHECK(err(allow({rule({"read"}, "SCMP_ACT_LOG", std::nullopt, {arg(0, "SCMP_CMP_EQ", 1), arg(1, "EQ", 1)})})) ==
        "linux.seccomp.syscalls[0].args[1].op: unknown operator \"EQ\"");
  CHECK(err(allow({rule({"read"}, "SCMP_ACT_LOG", std::nullopt, {arg(6, "SCMP_CMP_EQ", 1)})})) ==
        "linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5");
  CHECK(err(allow({rule({}, "SCMP_ACT_LOG")})) == "linux.seccomp.syscalls[0].names: must have at least one entry");

  s = profile("SCMP_ACT_ALLOW");
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
  CHECK(err(s) == "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"");
  s.architectures = {"x86_64"};
  CHECK(err(s) == "linux.seccomp.architectures[0]: unknown architecture \"x86_64\"");
  s = profile("SCMP_ACT_ALLOW");
  s.flags = {"SECCOMP_FILTER_FLAG_NEW_LISTENER"};
  CHECK(err(s) == "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\"");
}

TEST_CASE("seccomp plan: errors through parse_config", "[seccomp]") {
  // The config parser rejects an unknown action first, with the same path.
  auto c = spec::parse_config(R"({"ociVersion": "1.3.0", "root": {"path": "rootfs"},
      "process": {"args": ["sh"], "cwd": "/"},
      "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
                                         {"names": ["write"], "action": "SCMP_ACT_LOG", "errnoRet": 5}]}}})");
  REQUIRE(c);
  auto f = sc::plan(*c->linux->seccomp, kX86_64);
  REQUIRE_FALSE(f);
  CHECK(f.error().msg.starts_with("linux.seccomp.syscalls[1].errnoRet: SCMP_ACT_LOG does not take an errno"));
}

TEST_CASE("seccomp plan: argument comparisons, every operator", "[seccomp]") {
  const std::vector<std::pair<std::string, int>> ops = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (auto& [name, op] : ops) {
    INFO(name);
    auto f = ok(profile("SCMP_ACT_ALLOW", {rule({"personality"}, "SCMP_ACT_ERRNO", std::nullopt,
                                                {arg(0, name, 8, 9)})}));
    REQUIRE(f.rules.size() == 1);
    REQUIRE(f.rules[0].args.size() == 1);
    CHECK(f.rules[0].args[0].index == 0);
    CHECK(f.rules[0].args[0].op == op);
    CHECK(f.rules[0].args[0].a == 8);
    CHECK(f.rules[0].args[0].b == 9);
  }
  // valueTwo defaults to 0; MASKED_EQ: value is the mask, valueTwo the datum.
  auto f = ok(profile("SCMP_ACT_ALLOW", {rule({"clone"}, "SCMP_ACT_ERRNO", std::nullopt,
                                              {arg(0, "SCMP_CMP_MASKED_EQ", 0x7e020000, 0),
                                               arg(2, "SCMP_CMP_GT", 0xffffffffffffffffULL)})}));
  REQUIRE(f.rules.size() == 1);  // different arguments: one rule, all of them (AND)
  CHECK(f.rules[0].args.size() == 2);
  CHECK(f.rules[0].args[1].index == 2);
  CHECK(f.rules[0].args[1].a == 0xffffffffffffffffULL);
  CHECK(f.rules[0].args[1].b == 0);
}

TEST_CASE("seccomp plan: several comparisons of one argument become one rule each (OR)", "[seccomp]") {
  auto f = ok(profile("SCMP_ACT_ERRNO", {rule({"personality", "getpid"}, "SCMP_ACT_ALLOW", std::nullopt,
                                              {arg(0, "SCMP_CMP_EQ", 0), arg(0, "SCMP_CMP_EQ", 8),
                                               arg(1, "SCMP_CMP_EQ", 3)})}));
  REQUIRE(f.rules.size() == 6);
  for (size_t i = 0; i < 6; i++) {
    CHECK(f.rules[i].name == (i < 3 ? "personality" : "getpid"));
    REQUIRE(f.rules[i].args.size() == 1);
  }
  CHECK(f.rules[0].args[0].a == 0);
  CHECK(f.rules[1].args[0].a == 8);
  CHECK(f.rules[2].args[0].index == 1);
}

TEST_CASE("seccomp plan: unknown names are skipped, others resolve per arch", "[seccomp]") {
  auto s = profile("SCMP_ACT_ERRNO", {rule({"read", "no_such_syscall", "socketcall", "no_such_syscall"},
                                           "SCMP_ACT_ALLOW")});
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto f = ok(s);
  CHECK(f.skipped == std::vector<std::string>{"no_such_syscall"});
  REQUIRE(f.rules.size() == 2);
  CHECK(f.rules[0].name == "read");
  CHECK(f.rules[0].arch_nrs == std::vector<int>{0, 3, 0x40000000});
  // socketcall is no x86_64 syscall: libseccomp's pseudo number, only on x86
  CHECK(f.rules[1].name == "socketcall");
  CHECK(f.rules[1].nr < 0);
  CHECK(f.rules[1].arch_nrs == std::vector<int>{-1, 102, -1});
}

TEST_CASE("seccomp plan: rules with the default action are dropped", "[seccomp]") {
  auto f = ok(profile("SCMP_ACT_ERRNO", {rule({"getpid"}, "SCMP_ACT_ERRNO"), rule({"getppid"}, "SCMP_ACT_ERRNO", 1),
                                         rule({"gettid"}, "SCMP_ACT_ERRNO", 2), rule({"read"}, "SCMP_ACT_ALLOW")}));
  REQUIRE(f.rules.size() == 2);
  CHECK(f.rules[0].name == "gettid");
  CHECK(f.rules[1].name == "read");
  // ... but still count for the -ENOSYS stub
  REQUIRE(f.enosys.size() == 1);
  CHECK(f.enosys[0].max_nr == nr_of(kX86_64, "gettid"));
}

TEST_CASE("seccomp plan: the -ENOSYS stub", "[seccomp]") {
  auto s = profile("SCMP_ACT_ERRNO", {rule({"read", "write", "openat"}, "SCMP_ACT_ALLOW"),
                                      rule({"waitid"}, "SCMP_ACT_LOG")});
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto f = ok(s);
  REQUIRE(f.enosys.size() == 3);
  CHECK(f.enosys[0].arch == kX86_64);
  CHECK(f.enosys[0].max_nr == 257);  // openat
  CHECK(f.enosys[1].arch == SCMP_ARCH_X86);
  CHECK(f.enosys[1].max_nr == nr_of(SCMP_ARCH_X86, "openat"));
  CHECK(f.enosys[2].arch == SCMP_ARCH_X32);
  CHECK(f.enosys[2].max_nr == nr_of(SCMP_ARCH_X32, "waitid"));  // x32's own compat numbers are high

  for (auto def : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"}) {
    s.defaultAction = def;
    CHECK(ok(s).enosys.size() == 3);
  }
  // permissive defaults: nothing to stub
  for (auto def : {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}) {
    s.defaultAction = def;
    CHECK(ok(s).enosys.empty());
  }
  // the default errno is ENOSYS already
  s.defaultAction = "SCMP_ACT_ERRNO";
  s.defaultErrnoRet = ENOSYS;
  CHECK(ok(s).enosys.empty());
  // no syscall named: nothing to compare with
  CHECK(ok(profile("SCMP_ACT_ERRNO")).enosys.empty());
  // unknown names do not count
  auto g = ok(profile("SCMP_ACT_ERRNO", {rule({"read", "no_such_syscall"}, "SCMP_ACT_ALLOW")}));
  REQUIRE(g.enosys.size() == 1);
  CHECK(g.enosys[0].max_nr == 0);
}

TEST_CASE("seccomp stub BPF: syscalls above the profile's highest get ENOSYS", "[seccomp]") {
  const uint32_t enosys = SECCOMP_RET_ERRNO | ENOSYS;
  constexpr uint32_t x32 = 0x40000000;
  auto p = sc::enosys_stub({{kX86_64, 300}, {SCMP_ARCH_X86, 400}});
  CHECK(p.size() == 6 + 5);
  CHECK(run_bpf(p, kX86_64, 301) == enosys);
  CHECK(run_bpf(p, kX86_64, 460) == enosys);
  CHECK_FALSE(run_bpf(p, kX86_64, 300));
  CHECK_FALSE(run_bpf(p, kX86_64, 0));
  CHECK_FALSE(run_bpf(p, kX86_64, x32 + 500));  // x32: not ours to answer
  CHECK_FALSE(run_bpf(p, SCMP_ARCH_X86, 400));
  CHECK(run_bpf(p, SCMP_ARCH_X86, 401) == enosys);
  CHECK_FALSE(run_bpf(p, SCMP_ARCH_AARCH64, 1000));

  auto q = sc::enosys_stub({{kX86_64, 300}, {SCMP_ARCH_X32, static_cast<int>(x32 + 100)}});
  CHECK(q.size() == 12);
  CHECK(run_bpf(q, kX86_64, 301) == enosys);
  CHECK_FALSE(run_bpf(q, kX86_64, 250));
  CHECK_FALSE(run_bpf(q, kX86_64, x32 + 100));
  CHECK(run_bpf(q, kX86_64, x32 + 101) == enosys);
  // the x32 token is no audit arch: nothing comes with it
  CHECK_FALSE(run_bpf(q, SCMP_ARCH_X32, x32 + 101));

  CHECK(sc::enosys_stub({}).empty());
}

TEST_CASE("seccomp plan: SCMP_ACT_NOTIFY", "[seccomp]") {
  auto s = profile("SCMP_ACT_ALLOW", {rule({"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY")});
  CHECK(err(s) == "linux.seccomp.listenerPath: must be set when SCMP_ACT_NOTIFY is used");
  s.listenerPath = "/run/agent.sock";
  s.listenerMetadata = "meta";
  auto f = ok(s);
  CHECK(f.notify);
  CHECK(f.listener_path == "/run/agent.sock");
  CHECK(f.listener_metadata == "meta");
  CHECK(f.flags == SECCOMP_FILTER_FLAG_NEW_LISTENER);
  CHECK(f.rules.size() == 2);
  CHECK(f.rules[0].action == SCMP_ACT_NOTIFY);

  s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  CHECK(ok(s).flags == (SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC |
                        SECCOMP_FILTER_FLAG_TSYNC_ESRCH | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV));
  // without a listener WAIT_KILLABLE_RECV means nothing (and the kernel refuses it)
  auto t = profile("SCMP_ACT_ALLOW");
  t.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"};
  CHECK(ok(t).flags == SECCOMP_FILTER_FLAG_LOG);

  auto d = profile("SCMP_ACT_NOTIFY");
  d.listenerPath = "/x";
  CHECK(err(d) == "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  auto m = profile("SCMP_ACT_ALLOW", {rule({"read"}, "SCMP_ACT_LOG"), rule({"sendmsg"}, "SCMP_ACT_NOTIFY")});
  m.listenerPath = "/x";
  CHECK(err(m) ==
        "linux.seccomp.syscalls[1]: SCMP_ACT_NOTIFY cannot be used for sendmsg (brig hands the listener fd over "
        "with it)");
}

TEST_CASE("seccomp stage: as late as allowed", "[seccomp]") {
  auto plain = ok(profile("SCMP_ACT_ALLOW"));
  auto s = profile("SCMP_ACT_ALLOW", {rule({"mkdir"}, "SCMP_ACT_NOTIFY")});
  s.listenerPath = "/x";
  auto notify = ok(s);
  CHECK(sc::stage_for(plain, true) == sc::Stage::before_exec);
  CHECK(sc::stage_for(plain, false) == sc::Stage::before_caps);
  CHECK(sc::stage_for(notify, true) == sc::Stage::before_ready);
  CHECK(sc::stage_for(notify, false) == sc::Stage::before_caps);
}

TEST_CASE("seccomp compile: libseccomp's program behind the stub", "[seccomp]") {
  auto s = profile("SCMP_ACT_ERRNO", {rule({"read", "write"}, "SCMP_ACT_ALLOW"),
                                      rule({"personality"}, "SCMP_ACT_ALLOW", std::nullopt,
                                           {arg(0, "SCMP_CMP_EQ", 0), arg(0, "SCMP_CMP_EQ", 8)})});
  s.flags = {"SECCOMP_FILTER_FLAG_LOG"};
  auto f = ok(s);
  auto p = sc::compile(f, sc::Stage::before_exec);
  REQUIRE(p);
  CHECK(p->flags == SECCOMP_FILTER_FLAG_LOG);
  CHECK(p->stage == sc::Stage::before_exec);
  CHECK_FALSE(p->notify);
  auto stub = sc::enosys_stub(f.enosys);
  REQUIRE(p->bpf.size() > stub.size() + 5);
  CHECK(std::memcmp(p->bpf.data(), stub.data(), stub.size() * sizeof(sock_filter)) == 0);

  auto c = spec::parse_config(R"({"ociVersion": "1.3.0", "root": {"path": "rootfs"},
      "process": {"args": ["sh"], "cwd": "/", "noNewPrivileges": true}, "linux": {}})");
  REQUIRE(c);
  auto none = sc::prepare(*c);
  REQUIRE(none);
  CHECK_FALSE(*none);
  c->linux->seccomp = s;
  auto some = sc::prepare(*c);
  REQUIRE(some);
  REQUIRE(*some);
  CHECK((*some)->stage == sc::Stage::before_exec);
  CHECK((*some)->bpf.size() == p->bpf.size());
}

TEST_CASE("seccomp install: errno rules, arguments and ENOSYS in a child", "[seccomp]") {
  // allow everything but: mkdir -> EACCES, getpriority(which=PRIO_USER) -> EDOM;
  // the default is ERRNO so the stub applies: default EPERM for a named-range
  // syscall, ENOSYS above the highest named one.
  std::vector<spec::SyscallRule> rules = {
      rule({"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", EACCES),
      rule({"getpriority"}, "SCMP_ACT_ERRNO", EDOM, {arg(0, "SCMP_CMP_EQ", 2)}),
  };
  std::vector<std::string> allow;
  for (int n = 0; n <= 440; n++) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, n);
    if (!name) continue;
    std::string s(name);
    free(name);
    if (s != "mkdir" && s != "mkdirat" && s != "getpriority" && s != "umask") allow.push_back(s);
  }
  rules.push_back(rule(allow, "SCMP_ACT_ALLOW"));
  auto s = profile("SCMP_ACT_ERRNO", rules);
  s.architectures = {"SCMP_ARCH_X86_64"};
  auto f = sc::plan(s, seccomp_arch_native());
  REQUIRE(f);
  auto p = sc::compile(*f, sc::Stage::before_exec);
  REQUIRE(p);

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (!sc::install(*p)) ::_exit(10);
    if (::mkdir("/nonexistent-dir/x", 0700) == 0 || errno != EACCES) ::_exit(11);
    errno = 0;
    if (::getpriority(PRIO_USER, 0) != -1 || errno != EDOM) ::_exit(12);
    errno = 0;
    // the comparison does not hold: the default action
    if (::getpriority(PRIO_PROCESS, 0) != -1 || errno != EPERM) ::_exit(13);
    if (::syscall(SYS_umask, 022) != -1 || errno != EPERM) ::_exit(14);  // not named: the default
    if (::syscall(460) != -1 || errno != ENOSYS) ::_exit(15);             // above the profile: ENOSYS
    ::_exit(0);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("seccomp notify: the listener fd goes to the parent over the sync socket", "[seccomp]") {
  auto s = profile("SCMP_ACT_ALLOW", {rule({"getppid"}, "SCMP_ACT_NOTIFY")});
  s.listenerPath = "/x";
  auto f = sc::plan(s, seccomp_arch_native());
  REQUIRE(f);
  auto p = sc::compile(*f, sc::Stage::before_ready);
  REQUIRE(p);
  auto pair = runtime::make_sync_pair();
  REQUIRE(pair);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // another stage: nothing happens
    if (!sc::install_at(&*p, sc::Stage::before_exec, pair->child.get())) ::_exit(10);
    if (!sc::install_at(&*p, sc::Stage::before_ready, pair->child.get())) ::_exit(11);
    // answered by the parent with 4242
    ::_exit(::syscall(SYS_getppid) == 4242 ? 0 : 12);
  }
  pair->child.reset();
  auto m = runtime::receive(pair->parent);
  REQUIRE(m);
  CHECK(m->type == runtime::Msg::seccomp_fd);
  REQUIRE(m->fd);
  char link[256] = {};
  REQUIRE(::readlink(fmt::format("/proc/self/fd/{}", m->fd.get()).c_str(), link, sizeof link - 1) > 0);
  CHECK(std::string(link) == "anon_inode:seccomp notify");
  struct seccomp_notif req {};
  REQUIRE(::ioctl(m->fd.get(), SECCOMP_IOCTL_NOTIF_RECV, &req) == 0);
  CHECK(req.data.nr == SYS_getppid);
  CHECK(req.pid == static_cast<uint32_t>(pid));
  struct seccomp_notif_resp resp {};
  resp.id = req.id;
  resp.val = 4242;
  REQUIRE(::ioctl(m->fd.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("seccomp notify: the container process state", "[seccomp]") {
  auto j = nlohmann::json::parse(sc::process_state_json("c1", 4422, "/containers/redis", {{"myKey", "myValue"}},
                                                        std::string("MKNOD=/dev/null")));
  CHECK(j == nlohmann::json::parse(R"({"ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": 4422,
      "metadata": "MKNOD=/dev/null",
      "state": {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 4422,
                "bundle": "/containers/redis", "annotations": {"myKey": "myValue"}}})"));
  // key order as runc (Go's struct order)
  CHECK(sc::process_state_json("c", 1, "/b", {}, std::nullopt) ==
        R"({"ociVersion":"1.3.0","fds":["seccompFd"],"pid":1,)"
        R"("state":{"ociVersion":"1.3.0","id":"c","status":"creating","pid":1,"bundle":"/b"}})");
}

TEST_CASE("seccomp notify: send_to_listener passes the fd with the JSON", "[seccomp]") {
  char dir[] = "/tmp/brig-sc-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  std::string path = std::string(dir) + "/agent.sock";
  int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(l >= 0);
  Fd lsock(l);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(l, 1) == 0);
  int pfd[2];
  REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
  Fd r(pfd[0]), w(pfd[1]);

  std::string big(20000, 'x');
  std::string json = R"({"k":")" + big + R"("})";
  REQUIRE(sc::send_to_listener(path, json, w));
  Fd conn(::accept4(l, nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(conn);
  std::string got;
  Fd passed;
  for (;;) {
    char buf[65536];
    struct iovec iov {buf, sizeof buf};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
    REQUIRE(n >= 0);
    if (n == 0) break;
    if (auto* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
      CHECK(got.empty());  // only with the first bytes
      int f;
      std::memcpy(&f, CMSG_DATA(c), sizeof f);
      passed.reset(f);
    }
    got.append(buf, static_cast<size_t>(n));
  }
  CHECK(got == json);
  REQUIRE(passed);
  REQUIRE(::write(passed.get(), "z", 1) == 1);
  char c = 0;
  REQUIRE(::read(r.get(), &c, 1) == 1);
  CHECK(c == 'z');

  auto e = sc::send_to_listener(std::string(dir) + "/none.sock", "{}", w);
  REQUIRE_FALSE(e);
  CHECK(e.error().msg == fmt::format("connect to seccomp listener {}/none.sock: no such file or directory", dir));
  ::unlink(path.c_str());
  ::rmdir(dir);
}
