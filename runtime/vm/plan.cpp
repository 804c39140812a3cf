// The microVM backend's pure half: frames, and spec -> QEMU/kernel plan.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "netns/attach.hpp"
#include "rootfs/plan.hpp"
#include "runtime/core/sys.hpp"
#include "runtime/vm/vm.hpp"

namespace brig::runtime::vm {

std::string encode(Frame type, std::string_view data) {
  std::string s;
  s.reserve(5 + data.size());
  s.push_back(static_cast<char>(type));
  uint32_t n = static_cast<uint32_t>(data.size());
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((n >> shift) & 0xff));
  s.append(data);
  return s;
}

std::string tag(uint32_t n, std::string_view data) {
  std::string s;
  s.reserve(4 + data.size());
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((n >> shift) & 0xff));
  s.append(data);
  return s;
}

std::pair<uint32_t, std::string_view> untag(std::string_view payload) {
  if (payload.size() < 4) return {0, {}};
  uint32_t n = 0;
  for (int i = 0; i < 4; i++) n = (n << 8) | static_cast<uint8_t>(payload[i]);
  return {n, payload.substr(4)};
}

Result<std::optional<Msg>> Decoder::next() {
  if (buf_.size() < 5) return std::optional<Msg>{};
  uint8_t t = static_cast<uint8_t>(buf_[0]);
  if (t < static_cast<uint8_t>(Frame::config) || t > static_cast<uint8_t>(kLastFrame))
    return fail_msg("vm: control channel: unknown frame type {}", t);
  uint32_t n = 0;
  for (int i = 1; i < 5; i++) n = (n << 8) | static_cast<uint8_t>(buf_[i]);
  if (n > kMaxFrame) return fail_msg("vm: control channel: frame of {} bytes is too large", n);
  if (buf_.size() < 5 + size_t{n}) return std::optional<Msg>{};
  Msg m{static_cast<Frame>(t), buf_.substr(5, n)};
  buf_.erase(0, 5 + size_t{n});
  return std::optional<Msg>{std::move(m)};
}

bool wanted(const spec::Config& cfg) {
  if (cfg.vm) return true;
  auto it = cfg.annotations.find(kAnnotation);
  return it != cfg.annotations.end() && it->second == "vm";
}

bool wanted(const spec::jdoc::Node& raw) {
  if (raw.find("vm")) return true;
  const spec::jdoc::Node* a = raw.find("annotations");
  const spec::jdoc::Node* v = a ? a->member(kAnnotation) : nullptr;
  return v && v->is_string() && v->str() == "vm";
}

constexpr uint64_t kGuestOverheadMib = 96;

Result<Plan> plan(const spec::Config& cfg, const Host& host, const Plan& defaults) {
  Plan p = defaults;
  if (cfg.hooks && (!cfg.hooks->prestart.empty() || !cfg.hooks->createRuntime.empty() ||
                    !cfg.hooks->createContainer.empty() || !cfg.hooks->startContainer.empty()))
    return fail_msg("vm: prestart/createRuntime/createContainer/startContainer hooks are not supported by the microVM backend yet");
  // linux.resources size the guest unless vm.hwConfig does: the memory
  // limit plus room for the guest kernel and agent, the CPU quota rounded up.
  if (cfg.linux && cfg.linux->resources) {
    const auto& r = *cfg.linux->resources;
    if (r.memory && r.memory->limit && *r.memory->limit > 0)
      p.mem_mib = (static_cast<uint64_t>(*r.memory->limit) + (1 << 20) - 1) / (1 << 20) + kGuestOverheadMib;
    if (r.cpu && r.cpu->quota && *r.cpu->quota > 0) {
      uint64_t period = r.cpu->period.value_or(100000);
      if (period > 0) p.vcpus = static_cast<unsigned>((static_cast<uint64_t>(*r.cpu->quota) + period - 1) / period);
    }
  }
  if (cfg.vm) {
    const spec::Vm& v = *cfg.vm;
    if (v.image) {
      // The guest's own root: a read-only virtio-blk disk the agent hands
      // PID 1 over to (its /bin/brig); the container's rootfs stays shared.
      static const std::pair<const char*, const char*> formats[] = {
          {"raw", "raw"}, {"qcow2", "qcow2"}, {"vdi", "vdi"}, {"vmdk", "vmdk"}, {"vhd", "vpc"}};
      std::string f = v.image->format.empty() ? "raw" : v.image->format;
      auto it = std::find_if(std::begin(formats), std::end(formats), [&](const auto& x) { return f == x.first; });
      if (it == std::end(formats))
        return fail_msg("vm.image.format: \"{}\" is not one of raw, qcow2, vdi, vmdk, vhd", f);
      p.image = v.image->path;
      p.image_format = it->second;
    }
    if (v.hypervisor) {
      if (!v.hypervisor->path.empty()) p.qemu = v.hypervisor->path;
      p.extra_qemu = v.hypervisor->parameters;
    }
    if (!v.kernel.path.empty()) p.kernel = v.kernel.path;
    if (v.kernel.initrd) p.initrd = *v.kernel.initrd;
    if (v.hwConfig) {
      // Xen's passthrough: nothing a QEMU microvm on x86 has (no device tree).
      const auto& hw = *v.hwConfig;
      if (hw.deviceTree) return fail_msg("vm.hwConfig.deviceTree: the x86 microvm machine takes no device tree");
      if (!hw.dtdevs.empty() || !hw.iomems.empty() || !hw.irqs.empty())
        return fail_msg("vm.hwConfig: dtdevs, iomems and irqs (device passthrough) are not supported by the QEMU microvm backend");
      if (v.hwConfig->vcpus) p.vcpus = *v.hwConfig->vcpus;
      if (v.hwConfig->memory) p.mem_mib = (*v.hwConfig->memory + (1 << 20) - 1) >> 20;
    }
  }
  if (p.vcpus == 0) return fail_msg("vm.hwConfig.vcpus: must be at least 1");
  if (p.vcpus > host.cpus) p.vcpus = host.cpus;
  if (p.mem_mib < 128) p.mem_mib = 128;
  for (const auto* path : {&p.qemu, &p.kernel, &p.initrd})
    if (path->empty() || path->front() != '/')
      return fail_msg("vm: hypervisor, kernel and initrd need absolute paths (got \"{}\")", *path);
  p.kvm = host.hw_virt;
  p.kernel_args = {"console=ttyS0", "reboot=t", "panic=-1", "pci=off", "quiet", "loglevel=4",
                   "cgroup_no_v1=all", "rdinit=/bin/brig"};
  // TCG guests hang calibrating an unstable TSC without it.
  if (!p.kvm) p.kernel_args.push_back(fmt::format("tsc_early_khz={}", host.tsc_khz ? host.tsc_khz : 2000000));
  if (!p.image.empty()) p.kernel_args.push_back(fmt::format("{}={}", kImageArg, kImageDev));
  if (cfg.vm)
    for (const auto& a : cfg.vm->kernel.parameters) p.kernel_args.push_back(a);
  p.kernel_args.push_back("--");
  p.kernel_args.push_back("vm-agent");
  return p;
}

std::string qemu_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == ',') out.push_back(',');
    out.push_back(c);
  }
  return out;
}

std::string fuse_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::vector<std::string> qemu_args(const Plan& p, const std::string& dir) {
  std::string d = qemu_escape(dir);
  std::string mem = fmt::format("{}M", p.mem_mib);
  std::string cmdline;
  for (const auto& a : p.kernel_args) cmdline += (cmdline.empty() ? "" : " ") + a;
  std::vector<std::string> a = {
      "-M", "microvm,memory-backend=mem", "-m", mem, "-smp", std::to_string(p.vcpus),
      "-accel", p.kvm ? "kvm" : "tcg", "-cpu", p.kvm ? "host" : "max",
      "-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on",
      "-global", "virtio-mmio.force-legacy=false",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      // QEMU's own seccomp filter: no exec, no obsolete syscalls; no setuid
      // either, unless it must drop to run_as itself (after that it has no
      // privilege left to gain back).
      "-sandbox", fmt::format("on,obsolete=deny,elevateprivileges={},spawn=deny,resourcecontrol=deny",
                              p.run_as ? "allow" : "deny"),
      // Paths built from the state dir go into QEMU's key=value lists: a
      // comma in them is doubled, or it would start a new key.
      "-chardev", "file,id=con,path=" + d + "/console.log", "-serial", "chardev:con",
      "-chardev", "socket,id=vfs,path=" + d + "/vfs.sock",
      "-device", "vhost-user-fs-device,chardev=vfs,tag=rootfs",
      "-device", "virtio-serial-device",
      "-chardev", "socket,id=ctl,path=" + d + "/ctl.sock,server=on,wait=off",
      "-device", "virtserialport,chardev=ctl,name=brig.ctl",
      "-kernel", p.kernel, "-initrd", p.initrd, "-append", cmdline};
  // Read-only: VMs may share it, and the guest's writes go to RAM (tmpfs).
  // No backing file (QEMU opens files as root, before -runas: a qcow2 or
  // vmdk naming one would hand the guest any host file).
  if (!p.image.empty()) {
    nlohmann::json node = {{"driver", p.image_format},
                           {"node-name", "image"},
                           {"read-only", true},
                           {"file", {{"driver", "file"}, {"filename", p.image}, {"read-only", true}}}};
    if (p.image_format == "qcow2" || p.image_format == "vmdk") node["backing"] = nullptr;
    a.insert(a.end(), {"-blockdev", node.dump(), "-device", "virtio-blk-device,drive=image"});
  }
  if (p.volumes)
    a.insert(a.end(), {"-chardev", "socket,id=vols,path=" + d + "/vols.sock", "-device",
                       fmt::format("vhost-user-fs-device,chardev=vols,tag={}", kVolumesTag)});
  if (!p.tap.empty() || p.tap_fd >= 0) {
    std::string tap = p.tap_fd >= 0 ? fmt::format("fd={}", p.tap_fd)
                                    : "ifname=" + qemu_escape(p.tap) + ",script=no,downscript=no";
    a.insert(a.end(), {"-netdev", "tap,id=net0," + tap, "-device",
                       "virtio-net-device,netdev=net0,mac=" + p.mac});
  }
  if (p.run_as) a.insert(a.end(), {"-runas", fmt::format("{}:{}", p.run_as, p.run_as)});
  a.insert(a.end(), p.extra_qemu.begin(), p.extra_qemu.end());
  return a;
}

Result<std::vector<Volume>> volumes(const spec::Config& cfg, const std::string& bundle) {
  std::vector<Volume> out;
  for (size_t i = 0; i < cfg.mounts.size(); i++) {
    const auto& m = cfg.mounts[i];
    TRY(rootfs::MountFlags fl, rootfs::parse_options(m.options));
    if (fl.remount || !(fl.bind || m.type.value_or("") == "bind")) continue;
    std::string src = m.source.value_or("");
    if (src.empty()) return fail_msg("mounts[{}].source: a bind mount needs a source", i);
    Volume v;
    v.index = i;
    v.source = sys::clean_path(src.front() == '/' ? src : bundle + "/" + src);
    v.recursive = fl.rbind;
    v.readonly = fl.readonly();
    v.rreadonly = fl.rreadonly();
    out.push_back(std::move(v));
  }
  return out;
}

nlohmann::json guest_config(const nlohmann::json& raw, bool networked, const std::vector<Volume>& vols) {
  nlohmann::json c = raw;
  c.erase("vm");
  for (const auto& v : vols) {
    auto& m = c["mounts"];
    if (m.is_array() && v.index < m.size() && m[v.index].is_object())
      m[v.index]["source"] = fmt::format("{}/{}", kGuestVolumes, v.index);
  }
  c.erase("hooks");  // poststart/poststop run on the host
  c["root"]["path"] = "/rootfs";
  if (c.contains("annotations") && c["annotations"].is_object()) {
    auto& an = c["annotations"];
    an.erase(kAnnotation);
    if (networked)
      for (auto it = an.begin(); it != an.end();) {
        if (it.key().starts_with("io.brig.network")) it = an.erase(it);
        else ++it;
      }
  }
  if (networked && c.contains("linux") && c["linux"].contains("namespaces") && c["linux"]["namespaces"].is_array()) {
    auto& ns = c["linux"]["namespaces"];
    for (auto it = ns.begin(); it != ns.end();) {
      if (it->is_object() && it->value("type", "") == "network") it = ns.erase(it);
      else ++it;
    }
  }
  return c;
}

std::string error_text(std::string line) {
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.find('\n') != std::string::npos) line = line.substr(line.rfind('\n') + 1);
  size_t at = line.find("msg=\"");
  if (at == std::string::npos || line.size() < at + 6 || line.back() != '"') return line;
  std::string out;
  for (size_t i = at + 5; i + 1 < line.size(); i++) {
    if (line[i] == '\\' && i + 2 < line.size()) i++;
    out.push_back(line[i]);
  }
  return out;
}

std::string guest_failure(const std::string& err, int code) {
  std::string e = error_text(err);
  return e.empty() ? fmt::format("brig exited with {} and no message", code) : e;
}

void take_ack(size_t& unacked, std::string_view count) {
  size_t k = std::strtoull(std::string(count).c_str(), nullptr, 10);
  unacked = k >= unacked ? 0 : unacked - k;
}

Result<void> check_image(const std::string& path, const std::string& format, std::string_view head) {
  auto be = [&](size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | static_cast<uint8_t>(head[at + i]);
    return v;
  };
  if (format == "qcow2") {
    if (head.size() < 80 || head.substr(0, 4) != std::string_view("QFI\xfb", 4))
      return fail_msg("vm.image: {} is not a qcow2 image", path);
    if (be(4, 4) >= 3 && (be(72, 8) & 4))
      return fail_msg("vm.image: {} keeps its data in an external file: not opened for the guest", path);
  } else if (format == "vmdk") {
    // A text descriptor names extent files of its own choosing: only the
    // single-file sparse formats are taken.
    if (head.size() < 4 || (head.substr(0, 4) != "KDMV" && head.substr(0, 4) != "COWD"))
      return fail_msg("vm.image: {} is not a single-file sparse vmdk (a descriptor naming other files is refused)",
                      path);
  }
  return {};
}

bool detached(std::string_view exec_payload) {
  auto j = nlohmann::json::parse(exec_payload, nullptr, false);
  if (!j.is_object()) return false;
  auto d = j.find("detach");
  return d != j.end() && d->is_boolean() && d->get<bool>();
}

int protocol() {
#ifdef BRIG_FAULT_INJECTION
  if (const char* v = std::getenv("BRIG_VM_PROTOCOL"); v && std::atoi(v) > 0) return std::atoi(v);
#endif
  return kProtocol;
}

bool id_mapped(std::string_view map, uint32_t id) {
  size_t pos = 0;
  while (pos < map.size()) {
    size_t nl = map.find('\n', pos);
    std::string line(map.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? map.size() : nl + 1;
    unsigned long long inside = 0, outside = 0, count = 0;
    if (std::sscanf(line.c_str(), "%llu %llu %llu", &inside, &outside, &count) != 3) continue;
    if (id >= inside && id - inside < count) return true;
  }
  return false;
}

std::string mac_for(const std::string& owner) { return netns::mac_for(owner); }

Host probe_host() {
  Host h;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus = n > 0 ? static_cast<unsigned>(n) : 1;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  bool flags = false;
  while (std::getline(in, line)) {
    if (!flags && line.starts_with("flags")) {
      flags = true;
      std::istringstream ws(line.substr(line.find(':') + 1));
      std::string w;
      while (ws >> w)
        if (w == "vmx" || w == "svm") h.hw_virt = true;
    } else if (!h.tsc_khz && line.starts_with("cpu MHz")) {
      h.tsc_khz = static_cast<uint64_t>(std::atof(line.c_str() + line.find(':') + 1) * 1000);
    }
  }
  // Hardware virtualization AND a /dev/kvm that opens (a paravirtual
  // /dev/kvm without vmx/svm boots no stock kernel).
  if (h.hw_virt) {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) h.hw_virt = false;
    else ::close(fd);
  }
  return h;
}

Plan default_paths() {
  auto env = [](const char* k, const char* d) {
    const char* v = std::getenv(k);
    return std::string(v && *v ? v : d);
  };
  Plan p;
  p.qemu = env("BRIG_VM_QEMU", "/usr/bin/qemu-system-x86_64");
  p.kernel = env("BRIG_VM_KERNEL", "/var/lib/brig/vm/vmlinuz");
  p.initrd = env("BRIG_VM_INITRD", "/var/lib/brig/vm/initrd.img");
  return p;
}

}  // namespace brig::runtime::vm
