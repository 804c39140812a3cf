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
};

[[noreturn]] void init_main(const InitContext& ctx);


}  // namespace brig::runtime
