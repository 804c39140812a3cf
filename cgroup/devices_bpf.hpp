// cgroup v2 device policy: the rules compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
// program (pure), and its attachment to a cgroup (raw bpf(2), no libbpf).
//
// Semantics: for every access bit the kernel asks about (mknod, read, write),
// the last rule in config order that matches the device and names that bit
// decides; no matching rule denies. This is the in-order reading of the list
// that v1's devices.allow/deny writes give for the usual lists.
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "spec/config.hpp"

namespace brig::cgroup {

std::vector<bpf_insn> device_program(const std::vector<spec::DeviceCgroup>& rules);

}  // namespace brig::cgroup
