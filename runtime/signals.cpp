#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "runtime/container.hpp"

namespace brig::runtime {
namespace {
struct Sig {
  const char* name;
  int num;
};
constexpr Sig kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};
}  // namespace

Result<int> parse_signal(const std::string& s) {
  int n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
    if (n <= 0 || n > SIGRTMAX) return fail_msg("unknown signal \"{}\"", s);
    return n;
  }
  std::string u = s;
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::toupper(c); });
  if (u.rfind("SIG", 0) == 0) u = u.substr(3);
  for (auto& k : kSignals)
    if (u == k.name) return k.num;
  // RTMIN+N / RTMAX-N
  auto rt = [&](const char* base, int b, int sign) -> std::optional<int> {
    std::string pre = base;
    if (u == pre) return b;
    if (u.rfind(pre, 0) != 0 || u.size() <= pre.size() + 1) return std::nullopt;
    char op = u[pre.size()];
    if ((sign > 0 && op != '+') || (sign < 0 && op != '-')) return std::nullopt;
    int off = 0;
    auto [q, e] = std::from_chars(u.data() + pre.size() + 1, u.data() + u.size(), off);
    if (e != std::errc() || q != u.data() + u.size()) return std::nullopt;
    int v = b + sign * off;
    if (v < SIGRTMIN || v > SIGRTMAX) return std::nullopt;
    return v;
  };
  if (auto v = rt("RTMIN", SIGRTMIN, 1)) return *v;
  if (auto v = rt("RTMAX", SIGRTMAX, -1)) return *v;
  return fail_msg("unknown signal \"{}\"", s);
}

}  // namespace brig::runtime
