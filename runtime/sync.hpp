// The parent <-> init channel: a SOCK_SEQPACKET socketpair carrying one-byte
// typed messages with an optional text payload. The child never throws: it
// reports an error as a message and _exits.
#pragma once

#include <string>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

namespace brig::runtime {

enum class Msg : char {
  go = 'G',      // parent -> init: cgroups joined, id maps written; go on
  ready = 'R',   // init -> parent: set up, waiting for start
  error = 'E',   // init -> parent: setup failed (payload: message)
  seccomp_fd = 'S',  // init -> parent: the seccomp listener fd (SCM_RIGHTS), before ready
  hooks = 'H',   // init -> parent: mounts done, run prestart/createRuntime; parent answers go
};

struct SyncPair {
  Fd parent, child;
};
Result<SyncPair> make_sync_pair();
Result<void> send(BorrowedFd fd, Msg m, const std::string& payload = {});
// A message carrying one fd with SCM_RIGHTS.
Result<void> send_with_fd(BorrowedFd sock, Msg m, BorrowedFd fd);
struct Received {
  Msg type;
  std::string payload;
  Fd fd;  // the fd that came with the message, if any
};
// Fails with "unexpected EOF" style error if the peer went away.
Result<Received> receive(BorrowedFd fd);

// The child's first step. `needed`: the parent has work to do between the
// clone and the child's set-up (id maps, moving the child into its cgroups,
// the network), so wait for its go. Otherwise no go is sent, saving a
// wake-up of each side: only check that the parent is still there (the
// child's death signal is already set, so a later death kills it).
Result<void> await_go(BorrowedFd fd, bool needed);

// The runtime's side of a clone that shares its memory
// (InitContext::shared_memory), right after the clone: closes our copy of
// init's end and blocks until init has sent its last message (ready or
// error) or is gone, in raw syscalls, touching no memory init may be using.
// The message stays queued for receive().
void await_hand_over(Fd& child_end, BorrowedFd parent_end);

}  // namespace brig::runtime
