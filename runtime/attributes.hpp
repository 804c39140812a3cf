// Process attributes applied in the child before exec: scheduler (sched_setattr),
// I/O priority, personality, execCPUAffinity, AppArmor/SELinux exec labels.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/error.hpp"
#include "spec/config.hpp"

namespace brig::runtime {

// "0-3,7" -> {0,1,2,3,7}; errors name the list.
Result<std::vector<int>> parse_cpu_list(const std::string& list);
Result<void> set_cpu_affinity(const std::string& list, const char* field);
// A label asked for on a host without that LSM is an error (in the parent, at create/exec).
Result<void> check_lsm(const spec::Process& p);
// scheduler, ioPriority, linux.personality (cfg may be null for exec's own process).
Result<void> apply_attributes(const spec::Process& p, const spec::Config* cfg);
// The LSM labels for the coming execve, through a verified procfs.
Result<void> apply_exec_labels(const spec::Process& p);

}  // namespace brig::runtime
