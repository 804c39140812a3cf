#include "cgroup/devices_bpf.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "cgroup/manager.hpp"
#include "runtime/core/sys.hpp"

namespace brig::cgroup {
namespace {

bpf_insn ins(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i;
  std::memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn ldx_w(uint8_t dst, int16_t off) { return ins(BPF_LDX | BPF_MEM | BPF_W, dst, 1, off, 0); }
bpf_insn mov_r(uint8_t dst, uint8_t src) { return ins(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn mov_k(uint8_t dst, int32_t k) { return ins(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, k); }
bpf_insn and_k(uint8_t dst, int32_t k) { return ins(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, k); }
bpf_insn rsh_k(uint8_t dst, int32_t k) { return ins(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, k); }
bpf_insn jne_k(uint8_t dst, int32_t k, int16_t off) { return ins(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, k); }
bpf_insn jeq_k(uint8_t dst, int32_t k, int16_t off) { return ins(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, k); }
bpf_insn ja(int16_t off) { return ins(BPF_JMP | BPF_JA, 0, 0, off, 0); }
bpf_insn exit_() { return ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Registers: r2 type, r3 access, r4 major, r5 minor, r6 scratch.
std::vector<bpf_insn> rule_code(const spec::DeviceCgroup& r, int16_t to_next_bit) {
  // The checks jump over the rest of this rule's code on a mismatch.
  std::vector<bpf_insn> checks;
  std::string t = r.type.value_or("a");
  int nchecks = (t != "a") + (r.major && *r.major >= 0) + (r.minor && *r.minor >= 0);
  int tail = r.allow ? 1 : 2;  // allow: ja next_bit; deny: r0 = 0, exit
  int left = nchecks;
  auto skip = [&] { return static_cast<int16_t>(--left + tail); };
  if (t != "a") checks.push_back(jne_k(2, t == "b" ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, skip()));
  if (r.major && *r.major >= 0) checks.push_back(jne_k(4, static_cast<int32_t>(*r.major), skip()));
  if (r.minor && *r.minor >= 0) checks.push_back(jne_k(5, static_cast<int32_t>(*r.minor), skip()));
  if (r.allow) {
    // Offset from the instruction after this ja to next_bit.
    checks.push_back(ja(to_next_bit));
  } else {
    checks.push_back(mov_k(0, 0));
    checks.push_back(exit_());
  }
  return checks;
}

bool matches_all(const spec::DeviceCgroup& r) {
  return r.type.value_or("a") == "a" && !(r.major && *r.major >= 0) && !(r.minor && *r.minor >= 0);
}

bool has_bit(const spec::DeviceCgroup& r, char c) {
  std::string a = r.access.value_or("rwm");
  if (a.empty()) a = "rwm";
  return a.find(c) != std::string::npos;
}

}  // namespace

std::vector<bpf_insn> device_program(const std::vector<spec::DeviceCgroup>& rules) {
  std::vector<bpf_insn> p = {
      ldx_w(2, 0),     // access_type
      mov_r(3, 2),
      and_k(2, 0xffff),  // type
      rsh_k(3, 16),      // access
      ldx_w(4, 4),       // major
      ldx_w(5, 8),       // minor
  };
  struct Bit {
    char c;
    int32_t mask;
  };
  for (Bit b : {Bit{'m', BPF_DEVCG_ACC_MKNOD}, Bit{'r', BPF_DEVCG_ACC_READ}, Bit{'w', BPF_DEVCG_ACC_WRITE}}) {
    // Rules newest first; build from the end so each knows its distance to next_bit.
    std::vector<bpf_insn> block = {mov_k(0, 0), exit_()};  // nothing matched: deny
    for (size_t i = 0; i < rules.size(); ++i) {
      const auto& r = rules[i];  // earlier rules come later in the block
      if (!has_bit(r, b.c)) continue;
      if (matches_all(r)) {
        // Nothing after a catch-all rule can run, and the verifier refuses
        // unreachable instructions: the block restarts from this rule
        // (allow: no code at all, deny: r0 = 0, exit).
        block.clear();
        if (!r.allow) block = {mov_k(0, 0), exit_()};
        continue;
      }
      auto code = rule_code(r, static_cast<int16_t>(block.size()));
      block.insert(block.begin(), code.begin(), code.end());
    }
    if (block.empty()) continue;  // this bit is always allowed
    p.push_back(mov_r(6, 3));
    p.push_back(and_k(6, b.mask));
    p.push_back(jeq_k(6, 0, static_cast<int16_t>(block.size())));
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(mov_k(0, 1));
  p.push_back(exit_());
  return p;
}

namespace {
long bpf(int cmd, bpf_attr& a) { return ::syscall(__NR_bpf, cmd, &a, sizeof a); }
}  // namespace

Result<void> attach_device_program(const std::string& dir, const std::vector<spec::DeviceCgroup>& rules) {
  auto prog = device_program(rules);
  TRY(Fd cg, sys::open(dir, O_RDONLY | O_DIRECTORY));
  // What is attached now (to detach once the new program is in).
  uint32_t ids[64] = {};
  bpf_attr q;
  std::memset(&q, 0, sizeof q);
  q.query.target_fd = static_cast<uint32_t>(cg.get());
  q.query.attach_type = BPF_CGROUP_DEVICE;
  q.query.prog_ids = reinterpret_cast<uint64_t>(ids);
  q.query.prog_cnt = 64;
  uint32_t old_cnt = bpf(BPF_PROG_QUERY, q) == 0 ? q.query.prog_cnt : 0;

  static const char license[] = "Apache";
  std::vector<char> logbuf(65536);
  bpf_attr l;
  std::memset(&l, 0, sizeof l);
  l.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  l.insns = reinterpret_cast<uint64_t>(prog.data());
  l.insn_cnt = static_cast<uint32_t>(prog.size());
  l.license = reinterpret_cast<uint64_t>(license);
  l.log_buf = reinterpret_cast<uint64_t>(logbuf.data());
  l.log_size = static_cast<uint32_t>(logbuf.size());
  l.log_level = 1;
  long pfd = bpf(BPF_PROG_LOAD, l);
  if (pfd < 0) {
    int e = errno;
    // The verifier's last words say why (e.g. "unreachable insn 12").
    std::string why(logbuf.data(), ::strnlen(logbuf.data(), logbuf.size()));
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (auto nl = why.rfind('\n'); nl != std::string::npos) why.erase(0, nl + 1);
    errno = e;
    if (!why.empty())
      return fail_errno("linux.resources.devices: load device cgroup program for {} ({})", dir, why);
    return fail_errno("linux.resources.devices: load device cgroup program for {}", dir);
  }
  Fd pf(static_cast<int>(pfd));

  bpf_attr a;
  std::memset(&a, 0, sizeof a);
  a.target_fd = static_cast<uint32_t>(cg.get());
  a.attach_bpf_fd = static_cast<uint32_t>(pf.get());
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, a) < 0) return fail_errno("linux.resources.devices: attach device cgroup program to {}", dir);

  for (uint32_t i = 0; i < old_cnt && i < 64; ++i) {
    bpf_attr g;
    std::memset(&g, 0, sizeof g);
    g.prog_id = ids[i];
    long ofd = bpf(BPF_PROG_GET_FD_BY_ID, g);
    if (ofd < 0) continue;
    Fd of(static_cast<int>(ofd));
    bpf_attr d;
    std::memset(&d, 0, sizeof d);
    d.target_fd = static_cast<uint32_t>(cg.get());
    d.attach_bpf_fd = static_cast<uint32_t>(of.get());
    d.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, d) < 0)
      return fail_errno("linux.resources.devices: detach old device cgroup program from {}", dir);
  }
  return {};
}

}  // namespace brig::cgroup
