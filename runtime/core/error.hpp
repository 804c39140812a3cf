// The one error type of brig, and Result<T>.
//
// An Error carries the errno of the failing call (0 when there is none) and a
// message built as a chain of context, outermost first, the way crun and runc
// print them:  "mount /proc on /run/x/rootfs/proc: Permission denied".
// Code returns Result<T>; nothing throws across the clone/fork child path.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace brig {

struct Error {
  int err = 0;          // errno of the failing call, 0 if none
  std::string msg;      // full text, context chain included, errno text appended

  // "what: errno text" (or "what" alone when err == 0). The errno text is
  // written the way runc (Go) writes it: "no such file or directory".
  static Error sys(int e, std::string_view what) {
    Error x;
    x.err = e;
    x.msg = e ? fmt::format("{}: {}", what, errno_text(e)) : std::string(what);
    return x;
  }
  static std::string errno_text(int e) {
    std::string t = std::strerror(e);
    if (!t.empty() && t[0] >= 'A' && t[0] <= 'Z' && !(t.size() > 1 && t[1] >= 'A' && t[1] <= 'Z'))
      t[0] = static_cast<char>(t[0] - 'A' + 'a');
    return t;
  }
  static Error plain(std::string_view what) { return sys(0, what); }

  // Prefix this error with the step it happened in: "step: <old message>".
  Error&& context(std::string_view step) && {
    msg = fmt::format("{}: {}", step, msg);
    return std::move(*this);
  }
  Error& context(std::string_view step) & {
    msg = fmt::format("{}: {}", step, msg);
    return *this;
  }
};

template <class T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }

// An error from the current errno: fail_errno("open {}", path).
template <class... A>
inline std::unexpected<Error> fail_errno(fmt::format_string<A...> f, A&&... a) {
  int e = errno;
  return fail(Error::sys(e, fmt::format(f, std::forward<A>(a)...)));
}
template <class... A>
inline std::unexpected<Error> fail_msg(fmt::format_string<A...> f, A&&... a) {
  return fail(Error::plain(fmt::format(f, std::forward<A>(a)...)));
}
inline std::unexpected<Error> fail_err(int e, std::string_view what) { return fail(Error::sys(e, what)); }

}  // namespace brig

// Propagate an error, adding nothing:   TRY(auto x, f());  or  TRY_VOID(g());
#define BRIG_CAT2(a, b) a##b
#define BRIG_CAT(a, b) BRIG_CAT2(a, b)
#define TRY_IMPL(tmp, decl, expr)                                   \
  auto tmp = (expr);                                                \
  if (!tmp) return ::std::unexpected(std::move(tmp).error());       \
  decl = std::move(*tmp)
#define TRY(decl, expr) TRY_IMPL(BRIG_CAT(_brig_try_, __LINE__), decl, expr)
#define TRY_VOID(expr)                                                      \
  do {                                                                      \
    auto _brig_r = (expr);                                                  \
    if (!_brig_r) return ::std::unexpected(std::move(_brig_r).error());     \
  } while (0)
// Propagate with one more step of context.
#define TRY_CTX_VOID(expr, ...)                                             \
  do {                                                                      \
    auto _brig_r = (expr);                                                  \
    if (!_brig_r)                                                           \
      return ::std::unexpected(std::move(_brig_r).error().context(fmt::format(__VA_ARGS__))); \
  } while (0)
