// What it costs to take present pages away, by how many there are.
//
//   gcc -O2 -o /tmp/flushcost contrib/bench/flushcost.c && /tmp/flushcost
//
// Not part of brig and not a test: a measurement for contrib/bench/README.md
// ("TLB flushes a page at a time"). A call that unmaps pages, moves them or
// takes a permission away ends with a TLB flush of the range it changed. x86
// Linux flushes a range of at most tlb_single_page_flush_ceiling pages (33)
// one page at a time (INVLPG), a larger one all at once; on a VM whose MMU
// the hypervisor shadows, each of those single-page flushes can be a trap.
// For each size: mremap of a populated anonymous mapping over another
// (flushes both ranges), mprotect of it to read-only, munmap of it. Means of
// 300 rounds.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { kRounds = 300, kPage = 4096 };

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(void) {
  static const int pages[] = {1, 4, 9, 16, 24, 32, 33, 34, 40, 64, 128};
  printf("pages  mremap_us  mprotect_us  munmap_us\n");
  for (size_t s = 0; s < sizeof pages / sizeof *pages; ++s) {
    size_t len = (size_t)pages[s] * kPage;
    double moved = 0, protected = 0, unmapped = 0;
    for (int r = 0; r < kRounds; ++r) {
      const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
      char* from = mmap(NULL, len, prot, flags, -1, 0);
      char* to = mmap(NULL, len, prot, flags, -1, 0);
      if (from == MAP_FAILED || to == MAP_FAILED) {
        perror("mmap");
        return 1;
      }
      memset(to, 1, len);
      double t0 = now_us();
      if (mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) {
        perror("mremap");
        return 1;
      }
      double t1 = now_us();
      mprotect(to, len, PROT_READ);
      double t2 = now_us();
      munmap(to, len);
      double t3 = now_us();
      moved += t1 - t0;
      protected += t2 - t1;
      unmapped += t3 - t2;
    }
    printf("%5d  %9.1f  %11.1f  %9.1f\n", pages[s], moved / kRounds, protected / kRounds, unmapped / kRounds);
  }
  return 0;
}
