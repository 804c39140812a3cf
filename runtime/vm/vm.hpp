// The microVM backend (issue #8): the container runs inside a QEMU microvm
// guest whose PID 1 is brig itself (`brig vm-agent`). The host side is a shim
// process (the pid `state` reports) that owns QEMU and virtiofsd and talks to
// the agent over one virtio-serial port with the framed protocol below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime::vm {

// ---- protocol: [type:1][length:4, big endian][payload] ----------------------
enum class Frame : uint8_t {
  config = 1,   // host -> guest: {"id": ..., "config": {...}}
  created = 2,  // guest -> host: the container exists, waiting for start
  error = 3,    // guest -> host: one line, create failed
  start = 4,    // host -> guest
  signal = 5,   // host -> guest: decimal signal number
  in = 6,       // host -> guest: stdin bytes; empty = EOF
  out = 7,      // guest -> host: stdout bytes
  err = 8,      // guest -> host: stderr bytes
  exit = 9,     // guest -> host: decimal wait status of the container process
};
constexpr uint32_t kMaxFrame = 1u << 20;

struct Msg {
  Frame type;
  std::string data;
};

std::string encode(Frame type, std::string_view data);

// Feed it bytes as they come; next() pops whole frames.
class Decoder {
 public:
  void feed(const char* p, size_t n) { buf_.append(p, n); }
  // A frame, nothing yet, or an error for a malformed stream.
  Result<std::optional<Msg>> next();

 private:
  std::string buf_;
};

// ---- plan: spec -> what to launch (pure) ------------------------------------
inline constexpr const char* kAnnotation = "io.brig.runtime";  // = "vm"

bool wanted(const spec::Config& cfg);

struct Host {
  bool hw_virt = false;  // vmx/svm in /proc/cpuinfo and /dev/kvm opens
  uint64_t tsc_khz = 0;
  unsigned cpus = 1;
};

struct Plan {
  std::string qemu, kernel, initrd;
  bool kvm = false;
  std::vector<std::string> kernel_args;  // the guest command line, in order
  std::vector<std::string> extra_qemu;   // vm.hypervisor.parameters
  uint64_t mem_mib = 256;
  unsigned vcpus = 1;
};

// `defaults`: {qemu, kernel, initrd} used where the spec names none.
Result<Plan> plan(const spec::Config& cfg, const Host& host, const Plan& defaults);
// QEMU's argv (without argv[0]) for a plan and the sockets in `dir`.
std::vector<std::string> qemu_args(const Plan& p, const std::string& dir);
// The config the agent runs: vm section and host-side hooks removed, the
// rootfs at /rootfs (the virtiofs mount).
nlohmann::json guest_config(const nlohmann::json& raw);

Host probe_host();
Plan default_paths();

// `brig vm-agent`: PID 1 in the guest. Never returns.
[[noreturn]] void agent_main();

}  // namespace brig::runtime::vm
