// Protection of brig's own binary from the container (CVE-2019-5736 class).
//
// While a container process is being set up it is still brig's image, so its
// /proc/PID/exe is brig's binary on the host. brig's children are
// non-dumpable, which keeps every container process without CAP_SYS_PTRACE in
// the host's user namespace away from that link. A process that holds
// CAP_SYS_PTRACE (a container without a user namespace that keeps the
// capability) can still open it, keep the handle, and write through it once
// no brig process runs the binary any more. For those containers only, brig
// re-executes itself from a sealed memfd copy first: the link then names a
// file the kernel refuses to write.
#pragma once

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// Whether a process with these capabilities could reach a setup process's
// /proc/PID/exe: CAP_SYS_PTRACE in any of its sets (the bounding set limits
// what it can gain later through file capabilities or setuid binaries).
bool may_ptrace(const spec::Process& proc);

// Whether brig must run from a sealed copy to set up a process in a container
// with config `cfg`: no user namespace of its own, and a container process
// (`cfg`'s, `extra` for exec, or an earlier exec: `ptrace_seen`) may ptrace.
bool needs_sealed_exe(const spec::Config& cfg, const spec::Process* extra, bool ptrace_seen);

// True when this process already runs from brig's sealed memfd.
bool running_sealed();

// Copies /proc/self/exe into a memfd, seals it against every write and
// re-executes it with the same arguments and environment. Returns only on
// failure; a no-op (returning success) when already running sealed.
Result<void> reexec_sealed();

}  // namespace brig::runtime
