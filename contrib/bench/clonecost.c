// What a container init costs as a copy of the runtime's address space
// (fork-like clone) against sharing it (CLONE_VM), on this host.
//
//   gcc -O2 -o clonecost contrib/bench/clonecost.c && ./clonecost build-bench/brig
//
// Not part of brig and not a test: a measurement for contrib/bench/README.md
// ("Next: init in brig's address space"). The process imitates brig's at the
// clone of init, with the numbers the page_fault_user tracepoint gave for one
// `run`: the binary given (brig's) mapped and read through, as brig's text is;
// 300 KiB of heap written. The child then does what init did before its
// execve: executes/reads 46 pages of that file mapping, writes 14 heap pages,
// resets 60 signals, and ends (as init's execve ends its old address space).
// The parent meanwhile writes 39 heap pages, as brig's process does. Each
// iteration runs both variants, in an order that alternates; medians of 300.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kRounds = 300, kHeap = 300 * 1024, kStack = 1 << 20, kPage = 4096 };

static const volatile char* text;
static size_t text_len;
static volatile char* heap;

static int child(void* unused) {
  (void)unused;
  unsigned sum = 0;
  for (size_t i = 0; i < 46; i++) sum += (unsigned char)text[i * 17 * kPage % text_len];
  for (size_t i = 0; i < 14; i++) heap[i * 5 * kPage % kHeap] = (char)sum;
  for (int s = 1; s <= 60; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(s, &sa, NULL);
  }
  _exit(0);
}

static double ms_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static void report(const char* name, double* v) {
  qsort(v, kRounds, sizeof *v, by_value);
  printf("%-34s median %.3f ms (p25 %.3f, p75 %.3f)\n", name, v[kRounds / 2], v[kRounds / 4], v[3 * kRounds / 4]);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s BINARY (brig's, to stand for its text)\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 64 * kPage) {
    perror(argv[1]);
    return 1;
  }
  text_len = (size_t)st.st_size & ~(size_t)(kPage - 1);
  void* t = mmap(NULL, text_len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  char* stack = mmap(NULL, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  heap = malloc(kHeap);
  if (t == MAP_FAILED || stack == MAP_FAILED || !heap) {
    perror("mmap");
    return 1;
  }
  text = t;
  memset((void*)heap, 1, kHeap);
  unsigned sum = 0;
  for (size_t i = 0; i < text_len; i += 8 * kPage) sum += (unsigned char)text[i];
  heap[0] = (char)sum;

  static double copy[kRounds], shared[kRounds];
  for (int r = 0; r < kRounds; r++) {
    for (int k = 0; k < 2; k++) {
      int share = (r + k) % 2;
      double t0 = ms_now();
      // CLONE_VFORK: the parent waits until the child ends, as brig's would
      // wait on its sync socket while init runs in its memory.
      int flags = SIGCHLD | (share ? CLONE_VM | CLONE_VFORK : 0);
      pid_t pid = clone(child, stack + kStack, flags, NULL);
      if (pid < 0) {
        perror("clone");
        return 1;
      }
      for (size_t i = 0; i < 39; i++) heap[i * 7 * kPage % kHeap] = 2;
      if (waitpid(pid, NULL, 0) != pid) {
        perror("waitpid");
        return 1;
      }
      (share ? shared : copy)[r] = ms_now() - t0;
    }
  }
  report("copy (fork-like clone):", copy);
  report("shared (CLONE_VM | CLONE_VFORK):", shared);
  return 0;
}
