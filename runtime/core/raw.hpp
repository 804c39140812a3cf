// Syscalls that touch no memory of the C library: no errno, no locks, no
// cancellation points. For a process that shares its memory with another
// one running C++ at the same time: init after it told the runtime "ready"
// (runtime/init.cpp, shared memory). Each returns the kernel's value: -errno
// on failure.
//
// Only where we wrote the instruction sequence (x86_64); elsewhere
// `available` is false and init is a copy of the runtime's memory.
#pragma once

#include <cstdint>

namespace brig::raw {

#if defined(__x86_64__)
inline constexpr bool available = true;

// Always inlined: a caller that may not call anything (runtime/selfexe.cpp)
// gets the instruction, not a call.
__attribute__((always_inline)) inline long call(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0,
                                               long f = 0) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
inline constexpr bool available = false;
inline long call(long, long = 0, long = 0, long = 0, long = 0, long = 0, long = 0) { return -38; /* ENOSYS */ }
#endif

template <class T>
inline long arg(T* p) {
  return static_cast<long>(reinterpret_cast<uintptr_t>(p));
}

// v in decimal, written backwards so that it ends at `end` (which gets the
// terminating NUL); returns where it starts. `end` needs 21 bytes before it.
inline char* decimal(char* end, unsigned long v) {
  *end = '\0';
  do {
    *--end = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

}  // namespace brig::raw
