#include "runtime/sync.hpp"

#include <sys/socket.h>

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

Result<Received> receive(BorrowedFd fd) {
  char buf[8192];
  ssize_t n;
  do {
    n = ::recv(fd.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sync: receive");
  if (n == 0) return fail_err(0, "sync: init exited before it was ready");
  return Received{static_cast<Msg>(buf[0]), std::string(buf + 1, static_cast<size_t>(n - 1))};
}

}  // namespace brig::runtime
