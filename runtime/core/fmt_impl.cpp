// The compiled part of {fmt}, built into brig. Debian ships it only as a
// shared library, and every brig command would otherwise pay the dynamic
// loader for libfmt.so (contrib/bench/README.md). Included once, the header
// defines the out-of-line functions the templates call.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>,
                                 locale_ref);
}  // namespace detail
FMT_END_NAMESPACE
