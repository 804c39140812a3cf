// File descriptors: a move-only owner and a borrowed view. Every fd brig opens
// is O_CLOEXEC; nothing calls close() by hand.
#pragma once

#include <unistd.h>

#include <utility>

namespace brig {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A non-owning view; cheap to copy, never closes.
class BorrowedFd {
 public:
  constexpr BorrowedFd(int fd) noexcept : fd_(fd) {}  // NOLINT: implicit by design
  BorrowedFd(const Fd& f) noexcept : fd_(f.get()) {}  // NOLINT
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace brig
