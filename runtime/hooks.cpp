#include "runtime/hooks.hpp"

#include <algorithm>
#include <cstdint>

#include "runtime/core/sys.hpp"

namespace brig::runtime {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<void> run_hook(const spec::Hook& hook, const std::string& state_json,
                      const std::vector<std::string>* env_if_absent) {
  sys::Program p{.argv = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args,
                 .path = hook.path,
                 .env = hook.env,  // absent: brig's own, unless the caller gives one
                 .input = state_json,
                 .output_limit = 64 * 1024};
  if (!p.env && env_if_absent) p.env = *env_if_absent;
  // Seconds, above 0 (validated); clamped so that the milliseconds fit.
  if (hook.timeout) p.timeout_ms = std::min<int64_t>(*hook.timeout, INT64_MAX / 1000) * 1000;
  TRY(sys::Ran ran, sys::run_program(p));
  std::string reason;
  if (ran.timed_out)
    reason = fmt::format("hook ran past specified timeout of {:.1f}s", static_cast<double>(*hook.timeout));
  else if (!ran.ok())
    reason = ran.exit_text();
  if (reason.empty()) return {};
  return fail_msg("{}, stdout: {}, stderr: {}", reason, trimmed(ran.out), trimmed(ran.err));
}

Result<void> run_hooks(const std::vector<spec::Hook>& hooks, const std::string& phase,
                       const std::string& state_json, const std::vector<std::string>* env_if_absent) {
  for (size_t i = 0; i < hooks.size(); i++) {
    auto r = run_hook(hooks[i], state_json, env_if_absent);
    if (!r) return fail(std::move(r.error()).context(fmt::format("error running {} hook #{}", phase, i)));
  }
  return {};
}

}  // namespace brig::runtime
