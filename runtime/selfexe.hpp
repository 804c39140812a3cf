// Protection of brig's own binary from the container (CVE-2019-5736).
//
// Until it execs the user's process, a process brig sets up inside a
// container runs brig's image: /proc/PID/exe is brig's binary on the host.
// Non-dumpable keeps that link from the container's other processes, but not
// from the process itself: an image whose entrypoint is a script starting
// "#!/proc/self/exe" (or an ELF with that interpreter) makes the kernel run
// brig's binary again as the container's process, dumpable, and any process
// of the container can then keep a handle on it and write through it once no
// brig runs. So before it sets up a process in a container that shares the
// host's user namespace (where container root can write the binary), brig
// moves itself onto a read-only view of its binary: a detached read-only bind
// mount of it (no copy). Without an exec where it can: its mappings of the
// binary are replaced by the view's (the same inode, the same bytes) and
// PR_SET_MM_MAP points /proc/self/exe at the view. Where the kernel refuses
// that, brig re-executes itself from the view, or, where a mount cannot be
// made, from a sealed memfd copy. The link then names a file the kernel
// refuses to write.
// A container with its own user namespace needs none of it: its root is not
// the host's root and cannot write the binary.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// One line of /proc/PID/maps, parsed (nullopt if it is not one). The path
// points into the line.
struct MapsLine {
  uintptr_t lo = 0, hi = 0;
  off_t offset = 0;
  int prot = 0;  // PROT_READ | PROT_WRITE | PROT_EXEC
  dev_t dev = 0;
  uint64_t inode = 0;
  std::string_view path;
};
std::optional<MapsLine> parse_maps_line(std::string_view line);

// The range of brig's text that its common commands run (the functions
// contrib/bench/hot-functions.txt lists, which the linker places first), for
// brig's main program to set as it starts: the range is mapped in at once
// (MADV_POPULATE_READ), now and again after protect_exe() has moved the
// process. On a VM each page fault is a trap to the hypervisor (~13 us on
// the bench machine) while one call maps the whole range for about the cost
// of two faults (contrib/bench/README.md). Not set, nothing is populated.
void set_hot_text(uintptr_t lo, uintptr_t hi);

// Whether setting up a process in a container with config `cfg` needs brig to
// run from a read-only view of its binary.
bool needs_protected_exe(const spec::Config& cfg);

// True when this process's binary cannot be written through /proc/self/exe:
// it sits on a read-only mount, or is brig's sealed memfd.
bool exe_protected();

// Moves this process onto a read-only view of its binary: in place, or by
// re-executing brig with the same arguments and environment (then it returns
// only on failure). A no-op (success) when exe_protected() already.
// Single-threaded callers only.
Result<void> protect_exe();

}  // namespace brig::runtime
