// The size and duration syntaxes of runc's flags (docker's units.RAMInBytes,
// Go's time.ParseDuration), parsed by hand: a std::regex recursed once per
// character and overflowed the stack on a long value.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/error.hpp"

namespace brig::cmd {

// "512", "64m", "1.5G", "100MiB", "2 kb": bytes (binary multiples), what
// docker's RAMInBytes takes: its regex ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
// whose number then parses as a float ("1.2.3" does not). A value of 2^63
// bytes or more is an invalid size.
Result<int64_t> ram_in_bytes(const std::string& s);

// Go's time.ParseDuration: "5s", "500ms", "1m30s", "1.5s", ".5h", "-2m", "0";
// one or more number+unit pairs (ns, us, µs or μs, ms, s, m, h), a sign first,
// 2^63 ns or more an error. In milliseconds (truncated toward zero).
Result<int64_t> parse_duration_ms(const std::string& s);

}  // namespace brig::cmd
