#define CATCH_CONFIG_RUNNER
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  // runtime::protect_exe's fallback re-executes this binary with its
  // arguments (test_runtime.cpp, [selfexe]): the new process says it started
  // (status 30) rather than running the tests again.
  if (std::getenv("BRIG_TEST_SELFEXE_CHILD")) ::_exit(30);
  return Catch::Session().run(argc, argv);
}
