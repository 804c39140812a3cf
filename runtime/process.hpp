// The container process's attributes, applied on the child side of clone
// (by create's init and by exec's child alike): rlimits, no_new_privs,
// capabilities, user, umask, cwd, then the executable's PATH lookup and exec.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// After the container's root is in place: applies everything up to the
// exec and returns the executable's path; `env` gets the process's
// environment (process_env, read before the switch to the container's
// user, as runc does). `userns`: in a user namespace. `cfg`: the
// container's config (linux.personality), when there is one.
Result<std::string> prepare_process(const spec::Process& proc, bool userns, std::vector<std::string>& env,
                                    const spec::Config* cfg = nullptr);
// Socket activation: the number of fds passed to us with LISTEN_FDS, when
// LISTEN_PID names this process (as systemd sets them), else 0.
int listen_fds();
// process.env, plus HOME from the container's /etc/passwd when unset.
Result<std::vector<std::string>> process_env(const spec::Process& proc);
// Closes every fd past stdio and the preserved ones (but `report_fd`, a
// CLOEXEC sync socket whose EOF tells the parent the exec happened), then
// execve. On failure the error goes to `report_fd` (or stderr); _exit 127.
[[noreturn]] void exec_process(const std::string& exe, const std::vector<std::string>& args,
                               const std::vector<std::string>& env, int preserve_fds, int report_fd = -1);

// PATH lookup of args[0] the way runc reports it ("exec: \"x\": executable
// file not found in $PATH"), against the filesystem the caller sees.
Result<std::string> find_executable(const std::string& name, const std::vector<std::string>& env);
// setrlimit resource number of "RLIMIT_NOFILE" etc., or -1.
int rlimit_resource(const std::string& name);

}  // namespace brig::runtime
