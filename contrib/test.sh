#!/usr/bin/env bash
# Installs the dependencies, builds brig with warnings as errors, and runs the
# whole test suite: Catch2 unit tests, the integration tests driving the binary
# (with fault injection compiled in), the network, client and pure cgroup v2
# (QEMU guest) tiers; then builds the libFuzzer targets with clang and runs each
# for a bounded time (test/README.md).
#   BRIG_CI_FUZZ=0      skip the fuzz pass
#   BRIG_CI_SANITIZE=1  also build and run the suite under ASan+UBSan (one more
#                       full build: on demand, not in the default run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/deps.sh --test
jobs=$(nproc)
t0=$SECONDS

# pass NAME BUILD-DIR CTEST-ARGS -- CMAKE-ARGS...: configure, build, test, time it.
pass() {
  local name=$1 dir=$2 tests=$3
  shift 4
  echo "== $name: build ($(( SECONDS - t0 ))s since start)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRIG_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $name: tests ($(( SECONDS - t0 ))s since start)"
  (cd "$dir" && eval "ctest --output-on-failure --timeout 2400 $tests")
}

pass "g++" build-test "" -- -DBRIG_FAULT_INJECTION=ON
if [ "${BRIG_CI_SANITIZE:-0}" = 1 ]; then
  # the clients tier drives the same binary: once, in the first pass, is enough
  pass "g++ ASan+UBSan" build-asan "-R '^(unit|integration|integration-network)\$'" -- -DBRIG_SANITIZE=ON -DBRIG_FAULT_INJECTION=ON
fi
if [ "${BRIG_CI_FUZZ:-1}" = 1 ]; then
  # only the fuzz targets (and the library under them) are built with clang
  echo "== clang-16 libFuzzer: build ($(( SECONDS - t0 ))s since start)"
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRIG_WERROR=ON \
    -DCMAKE_CXX_COMPILER=clang++-16 -DBRIG_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j"$jobs" --target \
    fuzz_config fuzz_process fuzz_state fuzz_cli fuzz_mount_plan fuzz_seccomp_plan fuzz_netlink
  echo "== clang-16 libFuzzer: runs ($(( SECONDS - t0 ))s since start)"
  (cd build-fuzz && ctest --output-on-failure -V -L fuzz)
fi
echo "== done ($(( SECONDS - t0 ))s)"
