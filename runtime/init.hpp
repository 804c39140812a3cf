// The container's init, on the child side of clone: everything here runs in
// the new namespaces, before exec. It never returns and never throws: an
// error goes to the parent over the sync socket, then _exit.
#pragma once

#include <string>
#include <vector>

#include "namespaces/namespaces.hpp"
#include "rootfs/plan.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

struct InitContext {
  const spec::Config* cfg = nullptr;
  const ns::Plan* ns = nullptr;
  const std::vector<ns::OpenJoin>* joins = nullptr;
  const rootfs::Plan* fs = nullptr;
  std::string rootfs;
  bool no_pivot = false;
  int preserve_fds = 0;
  int sync_fd = -1;
  int fifo_fd = -1;
  int console_fd = -1;
};

[[noreturn]] void init_main(const InitContext& ctx);

// PATH lookup of args[0] the way runc reports it ("exec: \"x\": executable
// file not found in $PATH"), against the filesystem the caller sees.
Result<std::string> find_executable(const std::string& name, const std::vector<std::string>& env);

// setrlimit resource number of "RLIMIT_NOFILE" etc., or -1.
int rlimit_resource(const std::string& name);

}  // namespace brig::runtime
