// features.json (features.md, features-linux.md): what the runtime supports.
// Absent (std::nullopt) means "unknown", as the spec says.
#pragma once

#include <concepts>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"

namespace brig::spec {

struct Enabled {
  std::optional<bool> enabled;
};

struct CgroupFeatures {
  std::optional<bool> v1, v2, systemd, systemdUser, rdma;
};

struct SeccompFeatures {
  std::optional<bool> enabled;
  std::optional<std::vector<std::string>> actions, operators, archs, knownFlags, supportedFlags;
};

struct MountExtensions {
  std::optional<Enabled> idmap;
};

struct LinuxFeatures {
  std::optional<std::vector<std::string>> namespaces, capabilities;
  std::optional<CgroupFeatures> cgroup;
  std::optional<SeccompFeatures> seccomp;
  std::optional<Enabled> apparmor, selinux, intelRdt;
  std::optional<MountExtensions> mountExtensions;
  std::optional<Enabled> netDevices;
};

struct Features {
  std::string ociVersionMin, ociVersionMax;
  std::optional<std::vector<std::string>> hooks, mountOptions;
  std::optional<LinuxFeatures> linux;
  std::map<std::string, std::string> annotations;
  std::optional<std::vector<std::string>> potentiallyUnsafeConfigAnnotations;
};

// Keys in the order `runc features` prints them; absent optionals omitted.
nlohmann::ordered_json to_json(const Features&);
// Validates per features-schema.json (ociVersionMin/Max required, enums).
Result<Features> parse_features(std::string_view json_text);
Result<Features> parse_features_json(const nlohmann::json& doc);
// A template so that strings never convert to json: only a json document lands here.
template <class J>
  requires std::same_as<J, nlohmann::json>
Result<Features> parse_features(const J& doc) {
  return parse_features_json(doc);
}

// The lists the spec knows (inputs for brig_features()).
const std::vector<std::string>& known_mount_options();  // config.md's Linux table
const std::vector<std::string>& known_capabilities();   // CAP_CHOWN .. CAP_CHECKPOINT_RESTORE
const std::vector<std::string>& known_seccomp_actions();
const std::vector<std::string>& known_seccomp_operators();
const std::vector<std::string>& known_seccomp_archs();
const std::vector<std::string>& known_seccomp_flags();

// What brig supports; defaults describe a full Linux build. The runtime
// fills in what it detects (cgroup versions, apparmor/selinux, seccomp flags
// the kernel accepts, libseccomp version annotation...).
struct FeatureSupport {
  std::vector<std::string> hooks = {"prestart",       "createRuntime", "createContainer",
                                    "startContainer", "poststart",     "poststop"};
  std::vector<std::string> namespaces = {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"};
  std::vector<std::string> capabilities = known_capabilities();
  std::vector<std::string> mountOptions = known_mount_options();
  bool cgroupV1 = true, cgroupV2 = true, systemd = true, systemdUser = true, rdma = false;
  bool seccomp = true;
  std::vector<std::string> seccompSupportedFlags = known_seccomp_flags();
  bool apparmor = false, selinux = false, intelRdt = false, idmapMounts = true, netDevices = true;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> potentiallyUnsafeConfigAnnotations;
};

Features make_features(const FeatureSupport& = {});
nlohmann::ordered_json brig_features(const FeatureSupport& = {});

}  // namespace brig::spec
