// The seccomp plan: config.json -> seccomp::plan (the pure part: actions,
// operators, architectures, flags, argument rules) -> seccomp::compile
// (libseccomp builds the BPF program in memory; nothing is loaded).
#include <seccomp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/seccomp.hpp"
#include "spec/config.hpp"

using namespace brig;
namespace seccomp = brig::runtime::seccomp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = spec::parse_config(text);
  if (!cfg || !cfg->linux || !cfg->linux->seccomp) return 0;
  auto f = seccomp::plan(*cfg->linux->seccomp, SCMP_ARCH_X86_64);
  if (!f) {
    if (f.error().msg.empty()) std::abort();
    return 0;
  }
  bool nnp = cfg->process && cfg->process->noNewPrivileges;
  auto stage = seccomp::stage_for(*f, nnp);
  (void)seccomp::enosys_stub(f->enosys);
  if (f->rules.size() > 256) return 0;  // compile time grows with the rules, not the bugs
  auto prog = seccomp::compile(*f, stage);
  if (prog && prog->bpf.empty()) std::abort();
  return 0;
}
