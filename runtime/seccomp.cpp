#include "runtime/seccomp.hpp"

#include "runtime/core/sys.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/core/log.hpp"
#include "runtime/sync.hpp"
#include "spec/state.hpp"

namespace brig::runtime::seccomp {

namespace {

constexpr std::string_view kPath = "linux.seccomp";
constexpr uint32_t kX32Bit = 0x40000000;  // x32 syscall numbers carry it, on AUDIT_ARCH_X86_64

struct Named {
  std::string_view name;
  uint32_t value;
};

// The action without its errno; `takes_errno` for ERRNO and TRACE.
struct ActionKind {
  uint32_t base;
  bool takes_errno;
};

std::optional<ActionKind> action_kind(std::string_view a) {
  static constexpr std::array<std::pair<std::string_view, ActionKind>, 9> table{{
      {"SCMP_ACT_KILL", {SCMP_ACT_KILL_THREAD, false}},
      {"SCMP_ACT_KILL_THREAD", {SCMP_ACT_KILL_THREAD, false}},
      {"SCMP_ACT_KILL_PROCESS", {SCMP_ACT_KILL_PROCESS, false}},
      {"SCMP_ACT_TRAP", {SCMP_ACT_TRAP, false}},
      {"SCMP_ACT_ERRNO", {SCMP_ACT_ERRNO(0), true}},
      {"SCMP_ACT_TRACE", {SCMP_ACT_TRACE(0), true}},
      {"SCMP_ACT_ALLOW", {SCMP_ACT_ALLOW, false}},
      {"SCMP_ACT_LOG", {SCMP_ACT_LOG, false}},
      {"SCMP_ACT_NOTIFY", {SCMP_ACT_NOTIFY, false}},
  }};
  for (auto& [n, k] : table)
    if (n == a) return k;
  return std::nullopt;
}

std::optional<int> compare_op(std::string_view op) {
  static constexpr std::array<std::pair<std::string_view, int>, 7> table{{
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  }};
  for (auto& [n, v] : table)
    if (n == op) return v;
  return std::nullopt;
}

std::optional<unsigned> filter_flag(std::string_view f) {
  static constexpr std::array<std::pair<std::string_view, unsigned>, 4> table{{
      {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
      {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
      {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
      {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
  }};
  for (auto& [n, v] : table)
    if (n == f) return v;
  return std::nullopt;
}

// "SCMP_ARCH_X86_64" -> its token; libseccomp names them "x86_64".
std::optional<uint32_t> arch_token(const std::string& a) {
  if (!a.starts_with("SCMP_ARCH_")) return std::nullopt;
  std::string n = a.substr(10);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  uint32_t t = ::seccomp_arch_resolve_name(n.c_str());
  if (t == 0) return std::nullopt;
  return t;
}

// The action value for `action` with `errno_ret`; `where` is the JSON path
// of the object holding them, `field` the errno field's name.
Result<uint32_t> action_value(const std::string& action, const std::optional<uint32_t>& errno_ret,
                              const std::string& where, std::string_view action_field,
                              std::string_view errno_field) {
  auto k = action_kind(action);
  if (!k) return fail_msg("{}.{}: unknown action \"{}\"", where, action_field, action);
  if (!k->takes_errno) {
    if (errno_ret)
      return fail_msg("{}.{}: {} does not take an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)", where,
                      errno_field, action);
    return k->base;
  }
  uint32_t e = errno_ret.value_or(EPERM);
  if (e > 0xffff) return fail_msg("{}.{}: {} is out of range (0-65535)", where, errno_field, e);
  return k->base | e;
}

bool permissive(uint32_t action) { return action == SCMP_ACT_ALLOW || action == SCMP_ACT_LOG; }

}  // namespace

Result<Filter> plan(const spec::Seccomp& s, uint32_t native) {
  const std::string path(kPath);
  Filter f;
  TRY(f.default_action, action_value(s.defaultAction, s.defaultErrnoRet, path, "defaultAction", "defaultErrnoRet"));
  if (f.default_action == SCMP_ACT_NOTIFY)
    return fail_msg("{}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action", path);

  f.arches.push_back(native);
  for (size_t i = 0; i < s.architectures.size(); i++) {
    auto t = arch_token(s.architectures[i]);
    if (!t) return fail_msg("{}.architectures[{}]: unknown architecture \"{}\"", path, i, s.architectures[i]);
    if (std::find(f.arches.begin(), f.arches.end(), *t) == f.arches.end()) f.arches.push_back(*t);
  }
  for (size_t i = 0; i < s.flags.size(); i++) {
    auto fl = filter_flag(s.flags[i]);
    if (!fl) return fail_msg("{}.flags[{}]: unknown flag \"{}\"", path, i, s.flags[i]);
    f.flags |= *fl;
  }

  // Highest number per arch over every name the profile mentions.
  std::vector<std::optional<int>> max_nr(f.arches.size());
  for (size_t i = 0; i < s.syscalls.size(); i++) {
    const auto& r = s.syscalls[i];
    std::string where = fmt::format("{}.syscalls[{}]", path, i);
    if (r.names.empty()) return fail_msg("{}.names: must have at least one entry", where);
    TRY(uint32_t act, action_value(r.action, r.errnoRet, where, "action", "errnoRet"));
    if (act == SCMP_ACT_NOTIFY) f.notify = true;

    std::vector<ArgCmp> args;
    std::array<int, 6> per_index{};
    for (size_t k = 0; k < r.args.size(); k++) {
      const auto& a = r.args[k];
      auto op = compare_op(a.op);
      if (!op) return fail_msg("{}.args[{}].op: unknown operator \"{}\"", where, k, a.op);
      if (a.index > 5) return fail_msg("{}.args[{}].index: must be between 0 and 5", where, k);
      args.push_back(ArgCmp{a.index, *op, a.value, a.valueTwo.value_or(0)});
      per_index[a.index]++;
    }
    // Several comparisons of one argument cannot all hold in the way profiles
    // mean them (personality == A or == B): one rule each, as runc does.
    bool split = std::any_of(per_index.begin(), per_index.end(), [](int n) { return n > 1; });
    std::vector<std::vector<ArgCmp>> groups;
    if (split) {
      for (auto& a : args) groups.push_back({a});
    } else {
      groups.push_back(args);
    }

    for (const auto& name : r.names) {
      if (act == SCMP_ACT_NOTIFY && name == "sendmsg")
        return fail_msg("{}: SCMP_ACT_NOTIFY cannot be used for sendmsg (brig hands the listener fd over with it)",
                        where);
      int nr = ::seccomp_syscall_resolve_name_arch(native, name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        if (std::find(f.skipped.begin(), f.skipped.end(), name) == f.skipped.end()) f.skipped.push_back(name);
        continue;
      }
      std::vector<int> arch_nrs;
      for (size_t a = 0; a < f.arches.size(); a++) {
        int n = ::seccomp_syscall_resolve_name_arch(f.arches[a], name.c_str());
        arch_nrs.push_back(n < 0 ? -1 : n);
        if (n >= 0 && (!max_nr[a] || n > *max_nr[a])) max_nr[a] = n;
      }
      // The same action as the default: nothing to add (libseccomp refuses it).
      if (act == f.default_action) continue;
      for (const auto& g : groups) f.rules.push_back(Rule{name, nr, arch_nrs, act, g, where});
    }
  }

  if (f.notify) {
    if (!s.listenerPath || s.listenerPath->empty())
      return fail_msg("{}.listenerPath: must be set when SCMP_ACT_NOTIFY is used", path);
    f.listener_path = *s.listenerPath;
    f.listener_metadata = s.listenerMetadata;
    f.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    // TSYNC with a listener needs TSYNC_ESRCH from the kernel.
    if (f.flags & SECCOMP_FILTER_FLAG_TSYNC) f.flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  } else {
    // Only meaningful with a listener; the kernel refuses it without one.
    f.flags &= ~static_cast<unsigned>(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
  }

  if (!permissive(f.default_action) && f.default_action != SCMP_ACT_ERRNO(ENOSYS)) {
    for (size_t a = 0; a < f.arches.size(); a++)
      if (max_nr[a]) f.enosys.push_back(ArchLimit{f.arches[a], *max_nr[a]});
  }
  return f;
}

Stage stage_for(const Filter& f, bool no_new_privileges) {
  if (!no_new_privileges) return Stage::before_caps;
  if (f.notify) return Stage::before_ready;
  return Stage::before_exec;
}

std::vector<struct sock_filter> enosys_stub(const std::vector<ArchLimit>& limits) {
  std::vector<struct sock_filter> p;
  auto ins = [&](uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
    p.push_back(sock_filter{code, jt, jf, k});
  };
  const uint32_t arch_off = offsetof(struct seccomp_data, arch);
  const uint32_t nr_off = offsetof(struct seccomp_data, nr);
  const uint32_t enosys = SECCOMP_RET_ERRNO | ENOSYS;
  for (const auto& l : limits) {
    const auto max = static_cast<uint32_t>(l.max_nr);
    ins(BPF_LD | BPF_W | BPF_ABS, arch_off);
    if (l.arch == SCMP_ARCH_X86_64 || l.arch == SCMP_ARCH_X32) {
      // Both come as AUDIT_ARCH_X86_64; x32 numbers have kX32Bit set.
      bool x32 = l.arch == SCMP_ARCH_X32;
      ins(BPF_JMP | BPF_JEQ | BPF_K, SCMP_ARCH_X86_64, 0, 4);
      ins(BPF_LD | BPF_W | BPF_ABS, nr_off);
      if (x32) {
        ins(BPF_JMP | BPF_JGE | BPF_K, kX32Bit, 0, 2);
      } else {
        ins(BPF_JMP | BPF_JGE | BPF_K, kX32Bit, 2, 0);
      }
    } else {
      ins(BPF_JMP | BPF_JEQ | BPF_K, l.arch, 0, 3);
      ins(BPF_LD | BPF_W | BPF_ABS, nr_off);
    }
    ins(BPF_JMP | BPF_JGT | BPF_K, max, 0, 1);
    ins(BPF_RET | BPF_K, enosys);
  }
  return p;
}

Result<Program> compile(const Filter& f, Stage stage) {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(::seccomp_init(f.default_action), ::seccomp_release);
  if (!ctx) return fail_msg("seccomp: init filter: invalid default action {:#x}", f.default_action);
  // brig loads the program itself; libseccomp only builds it.
  ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  for (uint32_t a : f.arches) {
    int rc = ::seccomp_arch_add(ctx.get(), a);
    if (rc < 0 && rc != -EEXIST) return fail_err(-rc, fmt::format("seccomp: add architecture {:#x}", a));
  }
  for (const auto& r : f.rules) {
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& a : r.args)
      cmps.push_back(scmp_arg_cmp{a.index, static_cast<scmp_compare>(a.op), a.a, a.b});
    int rc = ::seccomp_rule_add_array(ctx.get(), r.action, r.nr, static_cast<unsigned>(cmps.size()),
                                      cmps.empty() ? nullptr : cmps.data());
    if (rc < 0) return fail_err(-rc, fmt::format("seccomp: add rule for \"{}\" ({})", r.name, r.where));
  }

  int mfd = ::memfd_create("brig-seccomp", MFD_CLOEXEC);
  if (mfd < 0) return fail_errno("seccomp: memfd_create");
  Fd mem(mfd);
  int rc = ::seccomp_export_bpf(ctx.get(), mem.get());
  if (rc < 0) return fail_err(-rc, "seccomp: export filter");
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size < 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    return fail_msg("seccomp: export filter: unexpected size {}", static_cast<long>(size));

  Program p;
  p.bpf = enosys_stub(f.enosys);
  size_t stub = p.bpf.size();
  p.bpf.resize(stub + static_cast<size_t>(size) / sizeof(sock_filter));
  size_t want = static_cast<size_t>(size), got = 0;
  auto* dst = reinterpret_cast<char*>(p.bpf.data() + stub);
  while (got < want) {
    ssize_t n = ::pread(mem.get(), dst + got, want - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail_errno("seccomp: read exported filter");
    got += static_cast<size_t>(n);
  }
  if (p.bpf.size() > BPF_MAXINSNS)
    return fail_msg("seccomp: the filter has {} instructions, more than the kernel's {}", p.bpf.size(),
                    BPF_MAXINSNS);
  p.flags = f.flags;
  p.stage = stage;
  p.notify = f.notify;
  return p;
}

Result<std::optional<Program>> prepare(const spec::Config& cfg) {
  if (!cfg.linux || !cfg.linux->seccomp) return std::optional<Program>{};
  TRY(Filter f, plan(*cfg.linux->seccomp, ::seccomp_arch_native()));
  for (const auto& n : f.skipped) log::debug(fmt::format("seccomp: unknown syscall \"{}\" skipped", n));
  bool nnp = cfg.process && cfg.process->noNewPrivileges;
  TRY(Program p, compile(f, stage_for(f, nnp)));
  return std::optional<Program>(std::move(p));
}

Result<Fd> install(const Program& p) {
  struct sock_fprog prog {};
  prog.len = static_cast<unsigned short>(p.bpf.size());
  prog.filter = const_cast<struct sock_filter*>(p.bpf.data());
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p.flags, &prog);
  if (rc < 0) return fail_errno("load seccomp filter");
  if (p.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) return Fd(static_cast<int>(rc));
  return Fd();
}

Result<void> install_at(const Program* p, Stage stage, int sync_fd) {
  if (!p || p->stage != stage) return {};
  TRY(Fd listener, install(*p));
  if (p->notify) TRY_CTX_VOID(send_with_fd(sync_fd, Msg::seccomp_fd, listener), "seccomp listener fd");
  return {};
}

std::string process_state_json(const std::string& id, pid_t pid, const std::string& bundle,
                               const std::map<std::string, std::string>& annotations,
                               const std::optional<std::string>& metadata) {
  nlohmann::ordered_json st;
  st["ociVersion"] = spec::kOciVersion;
  st["id"] = id;
  st["status"] = "creating";
  st["pid"] = pid;
  st["bundle"] = bundle;
  if (!annotations.empty()) st["annotations"] = annotations;
  nlohmann::ordered_json j;
  j["ociVersion"] = spec::kOciVersion;
  j["fds"] = {"seccompFd"};
  j["pid"] = pid;
  if (metadata && !metadata->empty()) j["metadata"] = *metadata;
  j["state"] = st;
  return spec::go_json_dump(j);  // as runc marshals it; a path's invalid UTF-8 replaced
}

Result<void> send_to_listener(const std::string& path, const std::string& state_json, BorrowedFd listener) {
  auto sock = sys::connect_unix(path);
  if (!sock) return fail_err(sock.error().err, fmt::format("connect to seccomp listener {}", path));
  // The fd rides on the first sendmsg; the rest of the JSON, if the socket
  // took only part of it, follows without.
  auto first = sys::send_with_fd(*sock, state_json, listener);
  if (!first) return fail(std::move(first.error()).context(fmt::format("send to seccomp listener {}", path)));
  ssize_t n;
  size_t sent = *first;
  while (sent < state_json.size()) {
    n = ::send(sock->get(), state_json.data() + sent, state_json.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("send to seccomp listener {}", path);
    sent += static_cast<size_t>(n);
  }
  return {};
}

Result<void> hand_to_listener(const spec::Config& cfg, const std::string& id, const std::string& bundle,
                              pid_t pid, BorrowedFd listener) {
  if (!cfg.linux || !cfg.linux->seccomp || !cfg.linux->seccomp->listenerPath)
    return fail_msg("sync: a seccomp listener fd from init, but no linux.seccomp.listenerPath");
  const auto& s = *cfg.linux->seccomp;
  return send_to_listener(*s.listenerPath, process_state_json(id, pid, bundle, cfg.annotations, s.listenerMetadata),
                          listener);
}

}  // namespace brig::runtime::seccomp
