#!/usr/bin/env bash
# Installs the dependencies, builds brig with warnings as errors, and runs the
# whole test suite: Catch2 unit tests, the integration tests driving the binary
# (with fault injection compiled in), the network, client and pure cgroup v2
# (QEMU guest) tiers; then an ASan+UBSan build runs the unit tests and part of
# the integration tier; then builds the libFuzzer targets with clang and runs
# each for a bounded time (test/README.md).
#   BRIG_CI_FUZZ=0          skip the fuzz pass
#   BRIG_CI_SANITIZE=subset (default) a g++ ASan+UBSan build running the unit
#                           tests and a subset of the integration tier
#   BRIG_CI_SANITIZE=full   ... running the unit, integration and network tiers
#                           (about 25 min more on 2 cores: on demand)
#   BRIG_CI_SANITIZE=0      no sanitizer pass
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
# the clients tier drives the same binary: once, in the first pass, is enough
case ${BRIG_CI_SANITIZE:-subset} in
  full|1) pass "g++ ASan+UBSan (full)" build-asan "-R '^(unit|integration|integration-network)\$'" -- \
            -DBRIG_SANITIZE=ON -DBRIG_FAULT_INJECTION=ON ;;
  subset) pass "g++ ASan+UBSan (subset)" build-asan "-R '^(unit|integration-sanitize-subset)\$'" -- \
            -DBRIG_SANITIZE=ON -DBRIG_FAULT_INJECTION=ON ;;
  0) ;;
  *) echo "BRIG_CI_SANITIZE: subset, full or 0" >&2; exit 2 ;;
esac
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
