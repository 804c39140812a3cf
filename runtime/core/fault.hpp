// Fault injection for tests: make brig die (SIGKILL) or fail at a named step.
//
// Built only with -DBRIG_FAULT_INJECTION=ON (the test build); otherwise every
// BRIG_FAULT(step) is an empty statement and the environment is never read.
//
//   BRIG_FAULT=<step>:kill   brig SIGKILLs itself when it reaches <step>
//   BRIG_FAULT=<step>:fail   the step returns the error "fault injected at <step>"
//   BRIG_FAULT=<step>:sleep  brig sleeps 0.3 s there (to test what may overtake the step);
//                            <step>:sleep=MS sleeps MS milliseconds
//   BRIG_FAULT=<step>:throw  the step throws, as a bug would (nothing catches it)
//   BRIG_FAULT=list          `brig` prints every step name, one a line, and exits 0
//
// Each step is one line in the code, `BRIG_FAULT("create.after-cgroup");`, in a
// function returning Result<T>. The walk in test/integration/test_faults.py
// takes the names from `BRIG_FAULT=list` and checks each one is reached.
#pragma once

#include <string_view>
#include <vector>

#include "runtime/core/error.hpp"

namespace brig::fault {

// Every step, in lifecycle order (kept in step with the BRIG_FAULT lines:
// the walk fails for a listed step that is never reached).
const std::vector<std::string_view>& steps();
// Whether this build has fault injection compiled in.
bool enabled();

// The check behind BRIG_FAULT: dies, fails, or returns {}.
Result<void> hit(std::string_view step);

}  // namespace brig::fault

#ifdef BRIG_FAULT_INJECTION
#define BRIG_FAULT(step) TRY_VOID(::brig::fault::hit(step))
#else
#define BRIG_FAULT(step) \
  do {                   \
  } while (0)
#endif
