// The container's init, on the child side of clone: everything here runs in
// the new namespaces, before exec. It never returns and never throws: an
// error goes to the parent over the sync socket, then _exit.
#pragma once

#include <string>
#include <vector>

#include "cgroup/manager.hpp"
#include "namespaces/namespaces.hpp"
#include "rootfs/plan.hpp"
#include "spec/config.hpp"
#include "spec/state.hpp"

namespace brig::runtime {

namespace seccomp {
struct Program;
}

struct InitContext {
  const spec::Config* cfg = nullptr;
  const ns::Plan* ns = nullptr;
  const std::vector<ns::OpenJoin>* joins = nullptr;
  const rootfs::Plan* fs = nullptr;
  std::string rootfs;
  bool no_pivot = false;
  int preserve_fds = 0;
  int sync_fd = -1;
  bool wait_go = true;  // the parent sends go after the clone (see await_go)
  bool user_joined = false;        // cloned inside the user namespace it joins (ns::clone_child_in_userns)
  bool dumpable_until_go = false;  // an unprivileged parent writes the id maps (wait_go is set); see setup
  bool lo_in_init = false;         // init brings lo up itself (the parent may not)
  int fifo_fd = -1;
  int console_fd = -1;
  const seccomp::Program* seccomp = nullptr;  // linux.seccomp, compiled; null without one
  const cgroup::SelfJoin* cgroup_join = nullptr;  // init joins its v1 cgroups itself (when active)
  spec::State state;  // id, bundle, annotations: what hooks read (status and pid set per phase)
  // init shares the runtime's memory (ns::clone_child_sharing_memory): no
  // copy of brig's pages, the largest part of a clone's cost. The two take
  // turns: the runtime waits in a raw poll from the clone until init's
  // "ready" or error, and runs nothing meanwhile; after sending either, init
  // runs only raw syscalls (runtime/core/raw.hpp) on what it set aside in a
  // mapping of its own. So the runtime chooses it only where no step needs
  // both sides at once: no hooks, no seccomp listener, no parent work after
  // the clone (wait_go unset; lo is brought up from the runtime in raw
  // syscalls, netns::RawLoopbackUp), no user namespace (the kernel refuses
  // setns into one to a process sharing its memory), no joined time
  // namespace (likewise), no process.oomScoreAdj (the kernel writes it to
  // every process of the memory: brig's too), and no memory limit so low
  // that init's set-up could meet the OOM killer (it would take brig too:
  // it kills every process of the victim's memory; a limit an ancestor
  // cgroup sets, or a full cgroup, still can). The exec fifo, the
  // seccomp filter loaded at exec and the execve then run raw. An ASan
  // build, or BRIG_CLONE_COPY=1 in the environment, always clones a copy.
  bool shared_memory = false;
};

// The entry point for ns::clone_child_sharing_memory: arg is the InitContext.
int init_entry(void* ctx);

// A memory limit low enough for the set-up of init (or of exec's child) to
// reach: the OOM killer then ends every process of the memory the child
// uses, which, shared, is brig too (and nothing would clean up). Such a
// container gets copies. The child's kernel allocations there are a few
// hundred KiB; its user pages are charged to brig's cgroup while shared.
bool tight_memory_limit(const spec::Config& cfg);

[[noreturn]] void init_main(const InitContext& ctx);


}  // namespace brig::runtime
