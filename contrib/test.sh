#!/usr/bin/env bash
# Installs the dependencies, builds brig with warnings as errors, and runs the
# whole test suite: Catch2 unit tests + integration tests driving the binary
# (with fault injection compiled in), then the same suite built with
# ASan+UBSan, then each libFuzzer target for a bounded time (test/README.md).
#   BRIG_CI_SANITIZE=0  skip the sanitizer pass
#   BRIG_CI_FUZZ=0      skip the fuzz pass
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
if [ "${BRIG_CI_SANITIZE:-1}" = 1 ]; then
  # the clients tier drives the same binary: once, in the first pass, is enough
  pass "g++ ASan+UBSan" build-asan "-R '^(unit|integration|integration-network)\$'" -- -DBRIG_SANITIZE=ON -DBRIG_FAULT_INJECTION=ON
fi
if [ "${BRIG_CI_FUZZ:-1}" = 1 ]; then
  # the unit tests built by clang check the fuzz build's std::expected workaround
  pass "clang-16 libFuzzer" build-fuzz "-R '^unit\$' && ctest --output-on-failure -V -L fuzz" -- \
    -DCMAKE_CXX_COMPILER=clang++-16 -DBRIG_FUZZ=ON
fi
echo "== done ($(( SECONDS - t0 ))s)"
