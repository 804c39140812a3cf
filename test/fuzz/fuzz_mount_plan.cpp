// The mount plan: config.json -> rootfs::plan (mounts, devices, masked and
// read-only paths, sysctls, propagation) with a fixed host context (a hybrid
// cgroup host like CI's). Also the mount option parser on its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "namespaces/namespaces.hpp"
#include "rootfs/plan.hpp"
#include "spec/config.hpp"

using namespace brig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = spec::parse_config(text);
  if (!cfg) return 0;
  for (const auto& m : cfg->mounts) (void)rootfs::parse_options(m.options);

  static const std::vector<spec::Namespace> none;
  auto nsp = ns::plan(cfg->linux ? cfg->linux->namespaces : none);
  rootfs::Context ctx;
  ctx.bundle = "/bundle";
  ctx.cgroup_path = "/brig/fuzz";
  ctx.cgroups = {
      {"/sys/fs/cgroup/memory", "/", {"memory"}, false},
      {"/sys/fs/cgroup/cpu,cpuacct", "/", {"cpu", "cpuacct"}, false},
      {"/sys/fs/cgroup/unified", "/", {}, true},
  };
  if (nsp) {
    ctx.ns = *nsp;
    ctx.cgroupns = nsp->creates("cgroup");
    ctx.userns = nsp->has("user");
  }
  auto plan = rootfs::plan(*cfg, ctx);
  if (!plan) {
    if (plan.error().msg.empty()) std::abort();
    return 0;
  }
  // Every target the plan mounts on is absolute and clean (apply.cpp resolves
  // them inside the root; a relative or dotted one would be a planner bug).
  for (const auto& op : plan->ops) {
    if (op.target.empty() || op.target[0] != '/') std::abort();
    if (op.target.find("/../") != std::string::npos || op.target.ends_with("/..")) std::abort();
  }
  return 0;
}
