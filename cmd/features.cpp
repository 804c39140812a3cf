// features: what this build of brig really supports (features.md, spec v1.3).
#include <cstdio>

#include "cgroup/resctrl.hpp"
#include "cmd/cli.hpp"
#include "spec/features.hpp"
#include "spec/state.hpp"

namespace brig::cmd {
namespace {

// Keep in step with the code: a feature is listed only once it works.
spec::FeatureSupport brig_support() {
  spec::FeatureSupport s;
  s.systemd = false;            // only the cgroupfs manager
  s.systemdUser = false;
  s.rdma = false;
  s.apparmor = false;
  s.selinux = false;
  s.intelRdt = cgroup::resctrl::available();  // as runc: where resctrl is mounted
  s.idmapMounts = true;
  s.netDevices = true;
  s.annotations = {{"io.github.brig.version", BRIG_VERSION}};
  return s;
}

cli::Register features_cmd("features", [] {
  return cli::Command{
    .name = "features",
    .summary = "show the enabled features",
    .description = "Show the enabled features.\n   The result is parsable as a JSON.\n"
                   "   See https://github.com/opencontainers/runtime-spec/blob/main/features.md",
    .min_args = 0,
    .max_args = 0,
    .action =
        [](cli::Context&) {
          std::string s = spec::go_json_dump(spec::brig_features(brig_support()), 4) + "\n";
          std::fwrite(s.data(), 1, s.size(), stdout);
          return 0;
        },
  };
});

}  // namespace
}  // namespace brig::cmd
