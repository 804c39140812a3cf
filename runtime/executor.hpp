// The backend interface: how a container's init comes to exist. The
// namespace executor clones it on this kernel; the microVM executor
// (runtime/vm/) boots a guest that runs it. Chosen per container.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cgroup/manager.hpp"
#include "runtime/container.hpp"
#include "runtime/core/fd.hpp"
#include "runtime/core/rollback.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

struct SpawnRequest {
  const spec::Config& cfg;
  // config.json's text, as the state keeps it.
  std::string_view document;
  std::string id, bundle, rootfs;
  const CreateOptions& opts;
  std::string fifo_path;   // init waits on it for `start`
  cgroup::Manager& cgroup;
  int console_fd = -1;     // connected socket that gets the pty master, or -1
  // Runs in the parent once init exists (its namespaces made, id maps
  // written, cgroup joined) and before it may go on: the network is wired here.
  std::function<Result<void>(pid_t)> after_clone;
  // after_clone wires a brig network in, lo included.
  bool network_attached = false;
};

struct Spawned {
  pid_t pid = 0;
  uint64_t pid_start = 0;
  uint64_t pid_ino = 0;  // sys::pidfs_ino(pidfd)
  Fd pidfd;
  bool own_pidns = false;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Brings up init, set up and waiting on the fifo. Undo steps go on `rb`.
  virtual Result<Spawned> spawn(const SpawnRequest& rq, Rollback& rb) = 0;
};

std::unique_ptr<Executor> namespace_executor();
// runtime/vm/: the container in a QEMU microvm guest (spec `vm` section or
// the io.brig.runtime=vm annotation).
std::unique_ptr<Executor> vm_executor();
// Picks the backend the config asks for.
Result<std::unique_ptr<Executor>> executor_for(const spec::Config& cfg);

}  // namespace brig::runtime
