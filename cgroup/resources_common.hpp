// Helpers shared by the v1 and v2 planners (internal to cgroup/).
#pragma once

#include <string>
#include <vector>

#include "cgroup/resources.hpp"

namespace brig::cgroup::detail {

inline const std::string kRes = "linux.resources";

inline std::string fld(std::string_view a) { return fmt::format("{}.{}", kRes, a); }
inline std::string fld(std::string_view a, size_t i, std::string_view b) {
  return fmt::format("{}.{}[{}].{}", kRes, a, i, b);
}

// Collects writes, checking the controller and file exist first.
struct Plan {
  const Probe& probe;
  std::vector<Write> out;

  Result<void> need(std::string_view ctrl, const std::string& field) const {
    if (!probe.mounted(ctrl))
      return fail_msg("{}: cgroup controller {} is not {}", field, ctrl, v2 ? "available" : "mounted");
    return {};
  }
  Result<void> add(std::string ctrl, std::string file, std::string value, std::string field,
                   Write::Check check = Write::Check::none) {
    TRY_VOID(need(ctrl, field));
    if (!probe.has_file(ctrl, file)) return fail_msg("{}: {}: not supported by this kernel", field, file);
    out.push_back(Write{std::move(ctrl), std::move(file), std::move(value), std::move(field), check});
    return {};
  }
  // A file the controller has had in every kernel (devices.allow): not looked up.
  Result<void> add_known(std::string ctrl, std::string file, std::string value, std::string field) {
    TRY_VOID(need(ctrl, field));
    out.push_back(Write{std::move(ctrl), std::move(file), std::move(value), std::move(field), Write::Check::none});
    return {};
  }
  bool v2 = false;
};

// "1:3"; negative numbers are wildcards.
inline std::string dev_num(int64_t major, int64_t minor) {
  auto n = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return n(major) + ":" + n(minor);
}

}  // namespace brig::cgroup::detail
