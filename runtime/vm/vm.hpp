// The microVM backend (issue #8): the container runs inside a QEMU microvm
// guest whose PID 1 is brig itself (`brig vm-agent`). The host side is a shim
// process (the pid `state` reports) that owns QEMU and virtiofsd and talks to
// the agent over one virtio-serial port with the framed protocol below;
// `brig start` and `brig exec` reach the shim over its socket in the state
// dir with the same frames.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"
#include "spec/config.hpp"
#include "spec/jdoc.hpp"

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
  // `brig start` asks the shim with an empty one; the guest answers the shim
  // (and the shim `brig start`): empty = the process runs, else the error line.
  started = 10,
  // A second process (`brig exec`). Each payload starts with the 4-byte big
  // endian exec number the shim gives it (tag()); a `brig exec` talking to
  // the shim sends 0 and the shim puts the number in.
  // -> guest: {"process": {...}, "detach": bool} or {"brig": [args]}. With
  // detach the guest's `brig exec -d` starts the process on the exec's pipes
  // (or pty) and the agent, its reaper, follows it: exec_started once it
  // runs, its output, exec_exit with its own status; signals go to it, and
  // a client that hangs up (the host-side relay killed) takes it along.
  exec = 11,
  exec_in = 12,      // -> guest: stdin bytes; empty = EOF
  exec_out = 13,     // <- guest: stdout bytes
  exec_err = 14,     // <- guest: stderr bytes
  exec_exit = 15,    // <- guest: decimal wait status of the guest's `brig exec` (detach: the process's)
  exec_signal = 16,  // -> guest: decimal signal number
  // -> guest: "ROWS COLS" for a terminal: exec number, 0 = the container's.
  resize = 17,
  // Flow control, both ways: exec number (0 = the container's stdio), then
  // the decimal count of stream bytes the far end has passed on (to the
  // process's stdin; to the caller's stdout/stderr). A sender keeps at most
  // kWindow bytes of each stream unacknowledged, so neither end queues more
  // than that for a reader that does not read, and both always read.
  ack = 18,
  exec_started = 19,  // <- guest: a detached exec's process runs (empty)
};
inline constexpr Frame kLastFrame = Frame::exec_started;
constexpr uint32_t kMaxFrame = 1u << 20;
constexpr size_t kWindow = 1u << 20;
// The protocol's version: the host says its own in the config frame, the
// agent in the created frame ({"pid": N, "protocol": N}); each refuses
// another (the initramfs holds a brig of its own, built at install time).
// 1: before Frame::ack (its created frame was the bare pid).
// 2: Frame::ack. 3: the config frame's "volumes" (bind mounts' host
// paths); detached execs followed to their end (Frame::exec_started).
constexpr int kProtocol = 3;
// An ack frame's count (after its tag) taken off a stream's unacknowledged
// bytes; never below 0 (a count that does not parse takes nothing).
void take_ack(size_t& unacked, std::string_view count);
// Signals `kill` sends to stop a process (they end one by default): after
// one, its exit is not held back for a reader that does not read (1 s; at
// once when it had already ended). Others (SIGUSR1, SIGCONT...) change nothing.
inline bool stops_process(int sig) {
  return sig == 1 || sig == 2 || sig == 3 || sig == 9 || sig == 15;  // HUP INT QUIT KILL TERM
}
// The protocol a side speaks: kProtocol, or in test builds the value of
// BRIG_VM_PROTOCOL (to test the refusal).
int protocol();

// Whether an exec frame's payload asks for a detached exec ("detach": true).
bool detached(std::string_view exec_payload);

struct Msg {
  Frame type;
  std::string data;
};

std::string encode(Frame type, std::string_view data);

// The exec number in front of an exec frame's payload.
std::string tag(uint32_t n, std::string_view data);
// (number, rest); a payload shorter than the tag is number 0, rest empty.
std::pair<uint32_t, std::string_view> untag(std::string_view payload);

// The shim's socket in the container's state dir (`brig start`, `brig exec`).
inline constexpr const char* kShimSocket = "shim.sock";

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
// The same on a saved config, without parsing it all.
bool wanted(const spec::jdoc::Node& raw);

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
  std::string tap, mac;  // brig networking: a virtio-net device on this tap
  int tap_fd = -1;       // or on the tap this fd holds (a namespace passed through)
  bool volumes = false;  // a second virtiofs device: the bind mounts' sources (Volume)
  // vm.image: the guest's root disk (read-only virtio-blk) and QEMU's name
  // for its format; the agent on the initramfs hands PID 1 over to its
  // /bin/brig (kImageArg on the guest command line).
  std::string image, image_format;
  // Once set up (tap, sockets, /dev/kvm and files open), QEMU switches to
  // this uid and gid, with no capabilities; 0 keeps it root.
  uint32_t run_as = 0;
};

// The uid and gid a VM's QEMU runs as: its own per VM (the shim's pid is
// unique among live VMs), so one VM's QEMU cannot signal or ptrace another's.
// High and below 2^31, away from login and subordinate id ranges.
constexpr uint32_t kQemuIdBase = 0x7f000000;
// Whether `id` is inside one of the ranges of a /proc/PID/{uid,gid}_map
// (its first column: ids as this namespace sees them). In a user namespace
// that does not map QEMU's id, QEMU stays root (with a warning).
bool id_mapped(std::string_view map, uint32_t id);

// The guest command line's word naming vm.image's disk, and that disk.
inline constexpr const char* kImageArg = "brig.root";
inline constexpr const char* kImageDev = "/dev/vda";
// What the guest's root must hold for the agent to run from it.
inline constexpr const char* kImageBrig = "/bin/brig";

// vm.image's first bytes (`head`, 512 of them) against what QEMU would
// follow out of it: a qcow2 with an external data file, a vmdk that is a
// text descriptor naming extents. (Backing files are disabled in QEMU's
// arguments.) Refused in one line.
Result<void> check_image(const std::string& path, const std::string& format, std::string_view head);

// `defaults`: {qemu, kernel, initrd} used where the spec names none.
Result<Plan> plan(const spec::Config& cfg, const Host& host, const Plan& defaults);
// A value inside QEMU's "key=value,..." option lists: ',' doubled.
std::string qemu_escape(std::string_view v);
// A value inside virtiofsd's (libfuse's) "-o a=b,c": ',' and '\' backslashed.
std::string fuse_escape(std::string_view v);
// QEMU's argv (without argv[0]) for a plan and the sockets in `dir`.
std::vector<std::string> qemu_args(const Plan& p, const std::string& dir);

// Bind mounts name host paths; the guest's own files are never what they
// mean. Each bind's source is cloned (a host-side bind, read-only when the
// mount is) into `<state>/volumes/<index>` inside a mount namespace of
// virtiofsd's own, exported to the guest under kVolumesTag, mounted by the
// agent at kGuestVolumes; the guest's brig binds `/volumes/<index>`.
inline constexpr const char* kVolumesTag = "volumes";
inline constexpr const char* kGuestVolumes = "/volumes";
struct Volume {
  size_t index = 0;     // mounts[index]
  std::string source;   // absolute host path (relative ones are the bundle's)
  bool recursive = false;  // rbind: its submounts come along
  bool readonly = false;   // "ro": the clone's top is read-only
  bool rreadonly = false;  // "rro": the whole clone is
  bool dir = true;      // set on the host (stat) before the shim starts
};
// The bind mounts of `cfg` (never a "remount"), in mounts order.
Result<std::vector<Volume>> volumes(const spec::Config& cfg, const std::string& bundle);

// The config the agent runs: vm section and host-side hooks removed, the
// rootfs at /rootfs (the virtiofs mount). `networked` (brig networking on
// the VM's tap): the container shares the guest's network namespace, where
// the agent configures eth0, and brig's network annotations go. Each of
// `vols` has its source moved to kGuestVolumes/<index>.
nlohmann::json guest_config(const nlohmann::json& raw, bool networked = false, const std::vector<Volume>& vols = {});
// A locally administered MAC for a VM's NIC, from its owner (state dir).
std::string mac_for(const std::string& owner);

Host probe_host();
Plan default_paths();

// A listening unix socket at `path` (mode 0600), for the shim and the agent.
Result<Fd> listen_unix(const std::string& path, bool nonblock = false);
// "ROWS COLS" of a terminal, "" when it has none (or is no terminal).
std::string window_size(int tty);
// Sets a terminal's size from "ROWS COLS".
void set_window_size(int tty, std::string_view size);

// ---- host side: `brig start` / `brig exec` talking to the shim ---------------
// Waits for the guest's answer to the start just written to the fifo; `conn`
// was connected (connect_shim) before the fifo was written.
Result<Fd> connect_shim(const std::string& state_dir);
Result<void> await_start(BorrowedFd conn);
// Runs `process` in the guest container; its stdio is ours. Returns the exit
// code to leave with; with detach 0 once it runs, a host relay process
// (forked here) standing for it. `pid_file` gets that relay's pid, or ours.
// With process.terminal the terminal is a host pty whose master goes to
// `console_socket`, or, without one, the caller's own (raw meanwhile).
Result<int> exec_in_guest(const std::string& state_dir, const nlohmann::json& process, bool detach,
                          const std::string& console_socket, const std::string& pid_file = "");

// The guest's own brig run with `args` (the container id among them, e.g.
// {"ps", "--format", "json", ID}) on the guest container, `input` its stdin;
// its stdout ours, its stderr ours or, with `err`, collected there.
Result<int> brig_in_guest(const std::string& state_dir, const std::vector<std::string>& args,
                          std::string_view input = {}, std::string* err = nullptr);
// The message of a brig error line (`time=.. level=error msg="..."`), or the
// last line as it is.
std::string error_text(std::string line);
// What a guest brig that exited with `code` said (error_text of `err`), or,
// when it said nothing, its exit code.
std::string guest_failure(const std::string& err, int code);

// `brig vm-agent`: PID 1 in the guest. Never returns.
[[noreturn]] void agent_main();

}  // namespace brig::runtime::vm
