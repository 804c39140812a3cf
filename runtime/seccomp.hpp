// Seccomp: linux.seccomp -> a filter plan (pure) -> a BPF program (built
// with libseccomp in the parent, at create) -> one seccomp(2) call in init.
//
// plan() turns the spec into plain data: libseccomp action values with the
// errno folded in, syscall numbers resolved per architecture, argument
// comparisons, kernel filter flags. It makes no syscalls (libseccomp's name
// tables are plain lookups), so unit tests cover it fully. Like runc:
//   - unknown syscall names are skipped (a debug line says which);
//   - a rule whose action (and errno) equals the default action is dropped;
//   - a rule with several comparisons on the same argument becomes one rule
//     per comparison (OR), otherwise one rule with all of them (AND);
//   - errnoRet defaults to EPERM for SCMP_ACT_ERRNO and SCMP_ACT_TRACE; any
//     other action given an errnoRet is an error (runtime-spec MUST);
//   - SCMP_ACT_KILL is libseccomp's SCMP_ACT_KILL_THREAD;
//   - SCMP_ACT_NOTIFY is refused as the default action.
//
// The -ENOSYS stub (runc's behaviour): when the default action is not
// permissive (anything but SCMP_ACT_ALLOW / SCMP_ACT_LOG) and the default
// errno is not already ENOSYS, a syscall numbered above the highest one the
// profile names on that architecture returns ENOSYS, so that programs probing
// syscalls newer than the profile (or than libseccomp: 2.5.4 knows nothing
// past number 456 on x86_64) fall back instead of failing with EPERM.
// libseccomp cannot express "nr > N" and refuses numbers it does not know on
// non-native arches, so brig exports libseccomp's program and puts a few BPF
// instructions per architecture in front of it ("arch == A && nr > max_A ->
// ERRNO(ENOSYS)"). The result is one filter, loaded by brig with seccomp(2)
// (flags LOG / SPEC_ALLOW / TSYNC / NEW_LISTENER / WAIT_KILLABLE_RECV set by
// brig: libseccomp 2.5 knows no WAIT_KILLABLE_RECV attribute).
//
// When init loads it (Stage): as late as possible.
//   - noNewPrivileges false: before capabilities are dropped (loading needs
//     CAP_SYS_ADMIN then), as runc;
//   - SCMP_ACT_NOTIFY used: before "ready", so that `create` can hand the
//     listener fd to listenerPath while the parent still talks to init;
//   - otherwise: after `start`, right before execve (nothing of brig's own
//     setup runs under the filter).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"

namespace brig::runtime::seccomp {

struct ArgCmp {
  unsigned index = 0;  // 0..5
  int op = 0;          // enum scmp_compare (SCMP_CMP_NE ... SCMP_CMP_MASKED_EQ)
  uint64_t a = 0;      // value (the mask for MASKED_EQ)
  uint64_t b = 0;      // valueTwo (the datum for MASKED_EQ)
};

struct Rule {
  std::string name;               // syscall name
  int nr = 0;                     // libseccomp's number: native, or a negative pseudo number
  std::vector<int> arch_nrs;      // the number on each of Filter::arches (negative: not on that arch)
  uint32_t action = 0;            // SCMP_ACT_* value, errno folded in
  std::vector<ArgCmp> args;       // all must hold (AND)
  std::string where;              // "linux.seccomp.syscalls[3]" (for error messages)
};

// The -ENOSYS stub for one architecture: syscalls above max_nr get ENOSYS.
struct ArchLimit {
  uint32_t arch = 0;  // SCMP_ARCH_* token
  int max_nr = 0;     // highest syscall number the profile names on `arch`
};

enum class Stage { before_caps, before_ready, before_exec };

struct Filter {
  uint32_t default_action = 0;     // SCMP_ACT_* value, errno folded in
  std::vector<uint32_t> arches;    // SCMP_ARCH_* tokens, native first, no duplicates
  unsigned flags = 0;              // SECCOMP_FILTER_FLAG_* as the spec asks (TSYNC, LOG, SPEC_ALLOW, WAIT_KILLABLE_RECV)
  std::vector<Rule> rules;
  std::vector<std::string> skipped;  // names libseccomp does not know on any architecture of the filter
  std::vector<ArchLimit> enosys;     // empty: no stub
  bool notify = false;               // some rule uses SCMP_ACT_NOTIFY
  std::string listener_path;
  std::optional<std::string> listener_metadata;
};

// linux.seccomp -> Filter. `native` is the SCMP_ARCH_* token of this machine
// (seccomp_arch_native()). Errors name the JSON path:
//   linux.seccomp.syscalls[3].action: unknown action "X"
Result<Filter> plan(const spec::Seccomp& s, uint32_t native);

// The stage init loads the filter at (see above).
Stage stage_for(const Filter& f, bool no_new_privileges);

// The -ENOSYS stub as BPF: for each limit, 5 instructions (6 for x86_64 when
// the filter also has x32 syscalls to leave alone). Falls through to what
// follows when nothing matches.
std::vector<struct sock_filter> enosys_stub(const std::vector<ArchLimit>& limits);

// What init loads: the stub followed by libseccomp's program.
struct Program {
  std::vector<struct sock_filter> bpf;
  unsigned flags = 0;  // for seccomp(SECCOMP_SET_MODE_FILTER), NEW_LISTENER included when notify
  Stage stage = Stage::before_exec;
  bool notify = false;
};

// Builds the program with libseccomp (in the parent, before clone: a bad rule
// fails `create` with the rule's JSON path).
Result<Program> compile(const Filter& f, Stage stage);

// linux.seccomp of a config -> the program init loads, or nothing when the
// config has no seccomp section. Unknown names go to the debug log.
Result<std::optional<Program>> prepare(const spec::Config& cfg);

// In init: seccomp(2). Returns the listener fd when the program notifies.
Result<Fd> install(const Program& p);

// In init, at `stage`: installs `p` if it belongs there and, for a notify
// program, sends the listener fd to the parent over `sync_fd` (Msg::seccomp_fd).
// No-op when p is null or belongs to another stage.
Result<void> install_at(const Program* p, Stage stage, int sync_fd);

// In the parent: the "container process state" (config-linux.md) sent to
// the listener, status "creating".
std::string process_state_json(const std::string& id, pid_t pid, const std::string& bundle,
                               const std::map<std::string, std::string>& annotations,
                               const std::optional<std::string>& metadata);

// In the parent: connects to `path` (AF_UNIX, SOCK_STREAM), sends the state
// JSON with the listener fd (SCM_RIGHTS, in the first sendmsg), closes.
Result<void> send_to_listener(const std::string& path, const std::string& state_json, BorrowedFd listener);

// In the parent, on Msg::seccomp_fd: both of the above for this container.
Result<void> hand_to_listener(const spec::Config& cfg, const std::string& id, const std::string& bundle,
                              pid_t pid, BorrowedFd listener);

}  // namespace brig::runtime::seccomp
