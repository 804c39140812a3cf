// See selfexe.hpp.
#include "runtime/selfexe.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "runtime/core/fd.hpp"
#include "runtime/core/log.hpp"
#include "runtime/core/raw.hpp"
#include "runtime/core/sys.hpp"

extern char** environ;

namespace brig::runtime {
namespace {

constexpr const char* kMemfdName = "brig-sealed";
// Set across the re-exec: a second unprotected start is an error, not a loop.
constexpr const char* kMarker = "_BRIG_EXE_REEXEC";

bool running_sealed_memfd() {
  std::array<char, 256> buf{};
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return false;
  std::string link(buf.data(), static_cast<size_t>(n));
  return link.starts_with(std::string("/memfd:") + kMemfdName);
}

// Our own binary, as a detached read-only bind mount (an O_PATH fd).
Result<Fd> readonly_view() {
  int t = ::open_tree(AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (t < 0) return fail_errno("open_tree /proc/self/exe");
  Fd tree(t);
  struct mount_attr a {};
  a.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &a, sizeof a) < 0)
    return fail_errno("mount_setattr read-only /proc/self/exe");
  return tree;
}

// Our own binary, copied into a memfd sealed against every write.
Result<Fd> sealed_copy() {
  TRY(Fd self, sys::open("/proc/self/exe", O_RDONLY));
  struct stat st;
  if (::fstat(self.get(), &st) < 0) return fail_errno("stat /proc/self/exe");
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_EXEC
  int mfd = ::memfd_create(kMemfdName, flags | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = ::memfd_create(kMemfdName, flags);
#else
  int mfd = ::memfd_create(kMemfdName, flags);
#endif
  if (mfd < 0) return fail_errno("memfd_create");
  Fd copy(mfd);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(copy.get(), self.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n < 0) return fail_errno("copy /proc/self/exe");
    if (n == 0) return fail_msg("copy /proc/self/exe: short read");
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    return fail_errno("seal memfd");
  return copy;
}

// The code brig's common commands run, set by set_hot_text (empty: none).
uintptr_t hot_text_lo = 0, hot_text_hi = 0;

// Maps the range in: 0, an errno, or -1 when no range is set.
int populate_hot_text() {
  if (hot_text_hi <= hot_text_lo) return -1;
  return ::madvise(reinterpret_cast<void*>(hot_text_lo), hot_text_hi - hot_text_lo, MADV_POPULATE_READ) == 0 ? 0
                                                                                                            : errno;
}
// What the move's populate_hot_text returned.
int hot_text_after_move = -1;
// Whether the move replaced the mappings with one call (replace_in_one_call).
bool moved_in_one_call = false;

// For the debug log: what the move did with the hot code.
std::string hot_text_note() {
  if (hot_text_after_move < 0) return "";
  if (hot_text_after_move > 0) return fmt::format("; hot code not mapped: {}", std::strerror(hot_text_after_move));
  return fmt::format("; hot code mapped ({} KiB)", (hot_text_hi - hot_text_lo) >> 10);
}

// One mapping of our binary, from /proc/self/maps.
struct ExeMapping {
  uintptr_t lo = 0, hi = 0;
  off_t offset = 0;
  int prot = 0;
  std::string path;
};

Result<std::vector<ExeMapping>> exe_mappings(const struct stat& exe) {
  TRY(std::string maps, sys::read_file("/proc/self/maps"));
  std::vector<ExeMapping> out;
  std::string_view rest(maps);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    auto m = parse_maps_line(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!m || m->inode != exe.st_ino || m->dev != exe.st_dev) continue;
    out.push_back({m->lo, m->hi, m->offset, m->prot, std::string(m->path)});
  }
  if (out.empty()) return fail_msg("no mapping of /proc/self/exe in /proc/self/maps");
  return out;
}

// The range the loader wrote and then made read-only (PT_GNU_RELRO) in our
// own image: its pages hold relocated pointers, not the file's bytes. The
// load address comes from dl_iterate_phdr (the main program is reported
// first): a static-pie made by GNU ld has no PT_PHDR to work it out from.
std::pair<uintptr_t, uintptr_t> relro_range() {
  std::pair<uintptr_t, uintptr_t> r{0, 0};
  ::dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* out) -> int {
        auto* range = static_cast<std::pair<uintptr_t, uintptr_t>*>(out);
        for (size_t i = 0; i < info->dlpi_phnum; ++i)
          if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
            *range = {info->dlpi_addr + info->dlpi_phdr[i].p_vaddr,
                      info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz};
        return 1;  // the main program only
      },
      &r);
  return r;
}

// Page-aligned, whole words. Not memcpy: under AddressSanitizer the data
// segment holds poisoned redzones around globals, which a checked copy would
// report; volatile keeps the compiler from making a memcpy of the loop.
__attribute__((no_sanitize("address", "undefined"))) void copy_words(void* to, const void* from, size_t len) {
  auto* d = static_cast<volatile uint64_t*>(to);
  auto* s = static_cast<const volatile uint64_t*>(from);
  for (size_t i = 0; i < len / sizeof(uint64_t); ++i) d[i] = s[i];
}

#if defined(__x86_64__)
#define BRIG_ONE_CALL_MOVE 1
#if defined(__clang__)
#define BRIG_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define BRIG_NO_COVERAGE __attribute__((no_sanitize_coverage))
#endif
struct RawCall {
  long nr;
  long a[6];
  long want = -1;  // the result it must return (a pwrite's length), or -1: any but an error
};

// A list of raw calls, and what puts things back should one fail.
struct RawPlan {
  const RawCall* calls;
  size_t n;
  size_t undo_after;  // a failure at an index above this one runs `undo`
  const RawCall* undo;
  size_t n_undo;
};

// Makes a raw call (runtime/core/raw.hpp: no libc, so nothing goes through
// the GOT, which holds the file's unrelocated bytes while
// replace_in_one_call() runs): its result, or -errno (EIO for a short result).
__attribute__((always_inline, no_sanitize("address", "undefined"))) BRIG_NO_COVERAGE inline long raw_call(
    const RawCall& c) {
  long r = raw::call(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
  if (r < 0 && r > -4096) return r;
  return c.want >= 0 && r != c.want ? -EIO : r;
}

// Makes plan.calls in order: plan.n, or the index of the first that failed,
// its errno in *err. A failure past plan.undo_after makes plan.undo here too,
// before any other code runs: a sanitizer or coverage hook, or any code that
// reads a pointer from brig's data, needs the pages back first. Should the
// undo fail as well, brig says so and exits 125, with no libc.
__attribute__((noinline, no_sanitize("address", "undefined"))) BRIG_NO_COVERAGE size_t
run_raw(const RawPlan& plan, long* err) {
  for (size_t i = 0; i < plan.n; ++i) {
    long r = raw_call(plan.calls[i]);
    if (r >= 0) continue;
    *err = -r;
    if (i > plan.undo_after)
      for (size_t k = 0; k < plan.n_undo; ++k)
        if (raw_call(plan.undo[k]) < 0) {
          static const char msg[] = "brig: self-exe protection: cannot restore the loader-written pages\n";
          (void)raw::call(SYS_write, 2, reinterpret_cast<long>(msg), sizeof msg - 1);
          (void)raw::call(SYS_exit_group, 125);
        }
    return i;
  }
  return plan.n;
}
#endif

#ifdef BRIG_ONE_CALL_MOVE
// The binary's mappings replaced with one mmap of the view over all of
// them, which takes its present pages away with one full TLB flush. Each
// call that takes away 33 pages or fewer flushes them one by one instead
// (x86's tlb_single_page_flush_ceiling), and on a VM each of those is a trap
// to the hypervisor: replacing the loader-written pages (RELRO and data, 9
// pages) on their own, then making RELRO read-only again, cost 0.5 ms of CPU
// a container with 20 starting at once (contrib/bench/README.md). Those
// pages are first written to a memfd, then mapped from it (private) over the
// view's unrelocated bytes before anything reads them; no page is present
// there yet, so neither that nor the protections set after flushes anything.
// Returns false, having changed nothing but made a memfd, when the layout
// does not allow it (mappings not contiguous, or the unwritten ones not at
// one offset from the file's) or the memfd cannot be made, written or
// sealed; an error, the pages put back, when a call after the view's mmap
// fails.
Result<bool> replace_in_one_call(const Fd& view, const std::vector<ExeMapping>& maps,
                                 const std::function<bool(const ExeMapping&)>& is_written) {
  uintptr_t base = maps.front().lo, top = maps.back().hi;
  off_t off0 = -1;
  int prot = 0;
  for (size_t k = 0; k < maps.size(); ++k) {
    if (k > 0 && maps[k].lo != maps[k - 1].hi) return false;
    if (is_written(maps[k])) continue;
    off_t o = maps[k].offset - static_cast<off_t>(maps[k].lo - base);
    if (o < 0 || (off0 >= 0 && o != off0)) return false;
    off0 = o;
    prot |= maps[k].prot;
  }
  if (off0 < 0) return false;
  struct Run {
    uintptr_t lo, hi;
    off_t at;  // in the memfd
  };
  std::vector<Run> runs;
  off_t size = 0;
  for (const auto& m : maps) {
    if (!is_written(m)) continue;
    if (!runs.empty() && runs.back().hi == m.lo) {
      runs.back().hi = m.hi;
    } else {
      runs.push_back({m.lo, m.hi, size});
    }
    size = runs.back().at + static_cast<off_t>(runs.back().hi - runs.back().lo);
  }
  // Sealed once written: private mappings of it stay allowed, but nothing
  // can change the pages the GOT is read from (through /proc/PID/map_files,
  // say). Where no memfd can be made, the mapping-at-a-time move remains.
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_NOEXEC_SEAL
  int mfd = ::memfd_create("brig-relocated", flags | MFD_NOEXEC_SEAL);
  if (mfd < 0 && errno == EINVAL) mfd = ::memfd_create("brig-relocated", flags);
#else
  int mfd = ::memfd_create("brig-relocated", flags);
#endif
  if (mfd < 0) return false;
  Fd copy(mfd);
  auto call = [](long nr, long a0, long a1, long a2, long a3 = 0, long a4 = 0, long a5 = 0, long want = -1) {
    return RawCall{nr, {a0, a1, a2, a3, a4, a5}, want};
  };
  // The pages are copied (by the kernel: no sanitizer checks the buffer,
  // which holds the redzones of instrumented globals) by the first raw
  // calls, so nothing runs between the copy and the mmap that could write
  // them and be lost: an allocator's state in brig's own data, in a static
  // or sanitizer build.
  std::vector<RawCall> calls;
  for (const auto& r : runs) {
    long len = static_cast<long>(r.hi - r.lo);
    calls.push_back(call(SYS_pwrite64, copy.get(), static_cast<long>(r.lo), len, r.at, 0, 0, len));
  }
  calls.push_back(call(SYS_fcntl, copy.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
  size_t undo_after = calls.size();  // the view's mmap: from here on the GOT is the file's bytes
  calls.push_back(call(SYS_mmap, static_cast<long>(base), static_cast<long>(top - base), prot, MAP_PRIVATE | MAP_FIXED,
                       view.get(), off0));
  for (const auto& r : runs)
    calls.push_back(call(SYS_mmap, static_cast<long>(r.lo), static_cast<long>(r.hi - r.lo), PROT_READ,
                         MAP_PRIVATE | MAP_FIXED, copy.get(), r.at));
  for (const auto& m : maps)
    if (m.prot != (is_written(m) ? PROT_READ : prot))
      calls.push_back(call(SYS_mprotect, static_cast<long>(m.lo), static_cast<long>(m.hi - m.lo), m.prot));
  // Should a call after the view's mmap fail, the written pages are put back
  // from the memfd into anonymous memory and every mapping gets its
  // protection back; brig then re-executes itself from the view.
  std::vector<RawCall> undo;
  for (const auto& r : runs) {
    long len = static_cast<long>(r.hi - r.lo);
    undo.push_back(call(SYS_mmap, static_cast<long>(r.lo), len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0));
    undo.push_back(call(SYS_pread64, copy.get(), static_cast<long>(r.lo), len, r.at, 0, 0, len));
  }
  for (const auto& m : maps)
    if (m.prot != (is_written(m) ? PROT_READ | PROT_WRITE : prot))
      undo.push_back(call(SYS_mprotect, static_cast<long>(m.lo), static_cast<long>(m.hi - m.lo), m.prot));

#ifdef BRIG_FAULT_INJECTION
  // Tests: BRIG_SELFEXE_BREAK=N makes the Nth call after the view's mmap
  // fail (EINVAL), to walk the undo and the re-exec after it.
  if (const char* b = std::getenv("BRIG_SELFEXE_BREAK")) {
    size_t k = undo_after + std::strtoul(b, nullptr, 10);
    if (k > undo_after && k < calls.size()) calls[k] = call(SYS_mprotect, 1, 4096, PROT_READ);
  }
#endif
  sigset_t all, old;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  long err = 0;
  size_t done = run_raw({calls.data(), calls.size(), undo_after, undo.data(), undo.size()}, &err);
  if (done < calls.size()) {
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    if (done < undo_after) return false;  // nothing changed but the memfd
    return fail_err(static_cast<int>(err), fmt::format("replace the mappings of the binary at {:#x} (call {} of {})",
                                                       base, done + 1, calls.size()));
  }
  // Each page in at once: the relocated pointers read-only, the data copied
  // on write now rather than by a fault apiece (neither flushes anything:
  // no page is present yet). Kernels before 5.14 refuse the advice.
  for (const auto& m : maps)
    if (is_written(m))
      ::madvise(reinterpret_cast<void*>(m.lo), m.hi - m.lo,
                (m.prot & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
  if (hot_text_lo >= base && hot_text_hi <= top) hot_text_after_move = populate_hot_text();
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  moved_in_one_call = true;
  return true;
}
#endif

// Points this process's mappings of its binary, and /proc/self/exe, at
// `view` (an O_RDONLY fd of the read-only view) without an exec: the same
// inode, so the same page-cache pages and bytes. On x86_64 the view is
// mapped over the whole binary in one call and the pages the loader wrote
// (data, relocations) put back from a memfd (replace_in_one_call); where the
// layout does not allow that, or elsewhere, those pages are copied into
// anonymous memory moved over them and the rest is mapped anew from the view,
// a mapping at a time. Then PR_SET_MM_MAP swaps mm->exe_file, and
// /proc/self/maps is read again to see that no mapping of the old path is
// left. Single-threaded callers only; signals are blocked while data pages
// are copied, so no handler writes a global the copy would lose.
Result<void> remap_in_place(const Fd& view) {
  struct stat st;
  if (::fstat(view.get(), &st) < 0) return fail_errno("stat the read-only view");
  TRY(auto maps, exe_mappings(st));
  auto [relro_lo, relro_hi] = relro_range();

  // mm fields for PR_SET_MM_MAP, unchanged: the call sets them all.
  TRY(std::string stat, sys::read_own_stat());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return fail_msg("parse /proc/self/stat");
  std::vector<unsigned long> field(3, 0);  // field[i]: the i-th (1-based) field of stat
  for (size_t i = paren + 2; i < stat.size();) {
    size_t sp = stat.find(' ', i);
    if (sp == std::string::npos) sp = stat.size();
    field.push_back(std::strtoul(stat.c_str() + i, nullptr, 10));
    i = sp + 1;
  }
  if (field.size() <= 51) return fail_msg("parse /proc/self/stat: {} fields", field.size() - 1);
  struct prctl_mm_map mm {};
  mm.start_code = field[26];
  mm.end_code = field[27];
  mm.start_stack = field[28];
  mm.start_data = field[45];
  mm.end_data = field[46];
  mm.start_brk = field[47];
  mm.brk = static_cast<uint64_t>(::syscall(SYS_brk, 0));
  mm.arg_start = field[48];
  mm.arg_end = field[49];
  mm.env_start = field[50];
  mm.env_end = field[51];
  mm.exe_fd = static_cast<uint32_t>(view.get());

  // A private mapping of the file past its end would fault (SIGBUS) where
  // the copy writes; the loader never maps so, but check rather than crash.
  for (const auto& m : maps)
    if (m.offset + static_cast<off_t>(m.hi - m.lo) > st.st_size)
      return fail_msg("mapping {:#x} reaches past the end of the binary", m.lo);

  // The pages the loader wrote (data, and the RELRO range it relocated) are
  // copied, each run of adjacent ones into one anonymous mapping that one
  // mremap moves over them; then each gets its protection back. Three calls
  // a run (the data segment is one), where a file-backed copy of each mapping
  // took three apiece: every call that takes present pages away ends in a
  // TLB flush, which this VM makes dear, most of all with containers started
  // in parallel (contrib/bench/README.md). The rest is mapped anew from the
  // view.
  auto is_written = [&](const ExeMapping& m) {
    return (m.prot & PROT_WRITE) || (m.lo < relro_hi && m.hi > relro_lo);
  };
  bool moved = false;
#ifdef BRIG_ONE_CALL_MOVE
  bool one_call = true;
#ifdef BRIG_FAULT_INJECTION
  // Tests: BRIG_SELFEXE_ONE_CALL=0 takes the mapping-at-a-time move, which
  // this architecture otherwise takes only for an unusual layout.
  if (const char* v = std::getenv("BRIG_SELFEXE_ONE_CALL"); v && std::string_view(v) == "0") one_call = false;
#endif
  if (one_call) {
    TRY(moved, replace_in_one_call(view, maps, is_written));
  }
#endif
  sigset_t all, old;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  for (size_t i = moved ? maps.size() : 0; i < maps.size();) {
    const auto& m = maps[i];
    size_t len = m.hi - m.lo;
    if (!is_written(m)) {
      // Replaced in one call: the code running here faults its page back in
      // from the view, byte for byte the same.
      auto p = ::syscall(SYS_mmap, m.lo, len, m.prot, MAP_PRIVATE | MAP_FIXED, view.get(), m.offset);
      if (p != static_cast<long>(m.lo)) {
        ::sigprocmask(SIG_SETMASK, &old, nullptr);
        return fail_errno("map the read-only view over {:#x}", m.lo);
      }
      // The code the common commands run is mapped back in one call
      // (populate_hot_text); the rest faults back in as it runs. Populating
      // all of the text made 1.4 MiB more resident, above crun's peak RSS,
      // and was no faster (contrib/bench/README.md).
      if (hot_text_lo >= m.lo && hot_text_hi <= m.hi) hot_text_after_move = populate_hot_text();
      ++i;
      continue;
    }
    size_t end = i + 1;  // the run of written mappings: maps[i, end)
    while (end < maps.size() && is_written(maps[end]) && maps[end].lo == maps[end - 1].hi) ++end;
    uintptr_t lo = m.lo, hi = maps[end - 1].hi;
    // MAP_POPULATE: every page is made in this one call, not by a fault per
    // page in copy_words.
    void* copy = ::mmap(nullptr, hi - lo, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (copy == MAP_FAILED) {
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      return fail_errno("map a copy of {:#x}", lo);
    }
    copy_words(copy, reinterpret_cast<void*>(lo), hi - lo);
    // From here to the move nothing may write this range: raw syscalls only.
    if (::syscall(SYS_mremap, copy, hi - lo, hi - lo, MREMAP_MAYMOVE | MREMAP_FIXED, lo) != static_cast<long>(lo)) {
      int e = errno;
      ::munmap(copy, hi - lo);
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      return fail_err(e, fmt::format("move the copy of {:#x}", lo));
    }
    for (; i < end; ++i)
      if (maps[i].prot != (PROT_READ | PROT_WRITE) &&
          ::mprotect(reinterpret_cast<void*>(maps[i].lo), maps[i].hi - maps[i].lo, maps[i].prot) != 0) {
        ::sigprocmask(SIG_SETMASK, &old, nullptr);
        return fail_errno("protect the copy of {:#x}", maps[i].lo);
      }
  }
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP, &mm, sizeof mm, 0) != 0) return fail_errno("prctl PR_SET_MM_MAP");
  // The kernel refuses the swap while a mapping of the old path is left, but
  // not on every filesystem (overlayfs lets it through): every mapping of the
  // binary must now be the view's, whose path is "/", the root of its
  // detached mount.
  TRY(auto after, exe_mappings(st));
  for (const auto& m : after)
    if (m.path != "/") return fail_msg("mapping {:#x} still names {}", m.lo, m.path);
  return {};
}

}  // namespace

std::optional<MapsLine> parse_maps_line(std::string_view s) {
  // "lo-hi perms offset major:minor inode", then spaces and the path (if any),
  // the numbers in hex but the inode in decimal. Parsed by hand: sscanf, a
  // line at a time, was most of the cost of reading the maps.
  const char* p = s.data();
  const char* end = s.data() + s.size();
  auto number = [&](auto& v, int base, char sep) {
    uint64_t x = 0;
    auto [q, ec] = std::from_chars(p, end, x, base);
    if (ec != std::errc() || q == p || q == end || *q != sep) return false;
    v = static_cast<std::remove_reference_t<decltype(v)>>(x);
    p = q + 1;
    return true;
  };
  MapsLine m;
  unsigned maj = 0, min = 0;
  if (!number(m.lo, 16, '-') || !number(m.hi, 16, ' ')) return std::nullopt;
  if (end - p < 5 || p[4] != ' ') return std::nullopt;
  m.prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) | (p[2] == 'x' ? PROT_EXEC : 0);
  p += 5;
  if (!number(m.offset, 16, ' ') || !number(maj, 16, ':') || !number(min, 16, ' ')) return std::nullopt;
  m.dev = makedev(maj, min);
  uint64_t ino = 0;
  auto [q, ec] = std::from_chars(p, end, ino, 10);
  if (ec != std::errc() || q == p || (q != end && *q != ' ')) return std::nullopt;
  m.inode = ino;
  while (q != end && *q == ' ') ++q;
  m.path = std::string_view(q, static_cast<size_t>(end - q));
  return m;
}

void set_hot_text(uintptr_t lo, uintptr_t hi) {
  hot_text_lo = lo & ~uintptr_t{4095};
  hot_text_hi = (hi + 4095) & ~uintptr_t{4095};
  populate_hot_text();
}

bool needs_protected_exe(const spec::Config& cfg) {
  if (!cfg.linux) return true;
  for (const auto& n : cfg.linux->namespaces) {
    if (n.type != "user") continue;
    if (!n.path) return false;  // a new user namespace
    // Joined: safe unless it is our own (the host's) user namespace.
    struct stat joined, own;
    if (::stat(n.path->c_str(), &joined) < 0 || ::stat("/proc/self/ns/user", &own) < 0) return true;
    return joined.st_dev == own.st_dev && joined.st_ino == own.st_ino;
  }
  return true;
}

bool exe_protected() {
  struct statvfs sv;
  if (::statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY)) return true;
  return running_sealed_memfd();
}

Result<void> protect_exe() {
  bool again = std::getenv(kMarker) != nullptr;
  ::unsetenv(kMarker);  // never passed on (hooks, the container)
  if (exe_protected()) {
    // On a read-only mount (an immutable /usr, or `mount --bind -o ro` of
    // the binary), or already our sealed copy: nothing to move.
    log::debug("self-exe protection: binary already read-only (a read-only mount or a sealed copy)");
    return {};
  }
  if (again) return fail_msg("self-exe protection: still writable after the re-exec");

  auto view = readonly_view();
  if (view) {
    // O_PATH cannot be mapped: the same file, opened for reading.
    auto rd = sys::open(fmt::format("/proc/self/fd/{}", view->get()), O_RDONLY | O_CLOEXEC);
    auto r = rd ? remap_in_place(*rd) : Result<void>(fail(std::move(rd.error())));
    if (r && exe_protected()) {
      log::debug(fmt::format("self-exe protection: remapped in place{}{}", moved_in_one_call ? " (one call)" : "",
                             hot_text_note()));
      return {};
    }
    // Old kernels (no PR_SET_MM_MAP, or no CONFIG_CHECKPOINT_RESTORE): what
    // was remapped is the same bytes; the re-exec below finishes the job.
    log::debug(fmt::format("self-exe protection: in place: {}; re-executing",
                           r ? "still writable" : r.error().msg));
  } else {
    auto copy = sealed_copy();
    if (!copy) return fail(std::move(copy.error()).context("self-exe protection"));
    view = std::move(copy);
  }
  TRY(std::string cmdline, sys::read_file("/proc/self/cmdline"));
  std::vector<char*> argv;
  for (size_t i = 0; i < cmdline.size(); i += std::char_traits<char>::length(cmdline.data() + i) + 1)
    argv.push_back(cmdline.data() + i);
  argv.push_back(nullptr);
  ::setenv(kMarker, "1", 1);
  ::execveat(view->get(), "", argv.data(), environ, AT_EMPTY_PATH);
  int e = errno;
  ::unsetenv(kMarker);
  return fail_err(e, "self-exe protection: execveat");
}

}  // namespace brig::runtime
