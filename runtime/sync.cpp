#include "runtime/sync.hpp"

#include "runtime/core/raw.hpp"
#include "runtime/core/sys.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cstring>

namespace brig::runtime {

Result<SyncPair> make_sync_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
  return SyncPair{Fd(sv[0]), Fd(sv[1])};
}

Result<void> send(BorrowedFd fd, Msg m, const std::string& payload) {
  std::string buf(1, static_cast<char>(m));
  buf += payload;
  ssize_t n;
  do {
    n = ::send(fd.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sync: send");
  return {};
}

Result<void> send_with_fd(BorrowedFd sock, Msg m, BorrowedFd fd) {
  char type = static_cast<char>(m);
  auto r = sys::send_with_fd(sock, std::string_view(&type, 1), fd);
  if (!r) return fail(std::move(r.error()).context("sync: send"));
  return {};
}

Result<Received> receive(BorrowedFd fd) {
  char buf[8192];
  auto r = sys::recv_with_fd(fd, buf, sizeof buf);
  if (!r) return fail(std::move(r.error()).context("sync: receive"));
  if (r->size == 0) return fail_err(0, "sync: init exited before it was ready");
  return Received{static_cast<Msg>(buf[0]), std::string(buf + 1, r->size - 1), std::move(r->fd)};
}

Result<void> await_go(BorrowedFd fd, bool needed) {
  if (needed) {
    TRY(auto go, receive(fd));
    if (go.type != Msg::go) return fail_msg("sync: unexpected message from parent");
    return {};
  }
  struct pollfd p {fd.get(), POLLRDHUP, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sync: poll");
  if (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) return fail_msg("sync: the runtime is gone");
  return {};
}

void await_hand_over(Fd& child_end, BorrowedFd parent_end) {
  (void)raw::call(SYS_close, child_end.release());
  for (;;) {
    struct pollfd p {parent_end.get(), POLLIN, 0};
    long n = raw::call(SYS_ppoll, raw::arg(&p), 1, 0, 0, 0);
    if (n > 0 || (n < 0 && n != -EINTR)) return;
  }
}

}  // namespace brig::runtime
