#!/usr/bin/env bash
# Installs the dependencies, builds brig with warnings as errors, and runs the
# whole test suite in two passes (test/README.md):
#   1. g++ with fault injection: every ctest tier (unit, integration, network,
#      clients against brig and runc, the pure cgroup v2 QEMU guest);
#   2. clang 16 with ASan+UBSan, fault injection and the libFuzzer targets, one
#      build tree: the unit tests and part of the integration tier under the
#      sanitizers, then each fuzz target for a bounded time.
# Both build with -g1 (line tables: enough for sanitizer and crash stacks,
# a quarter less compile time than -g).
#   BRIG_CI_SANITIZE=subset (default) pass 2 runs unit + integration-sanitize-subset
#   BRIG_CI_SANITIZE=full   ... unit, integration and network tiers (about 12 min more)
#   BRIG_CI_SANITIZE=0      pass 2 runs no tests under the sanitizers
#   BRIG_CI_FUZZ=0          pass 2 runs no fuzz targets
# (both 0: no second pass at all)
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/deps.sh --test
jobs=$(nproc)
t0=$SECONDS
# The issue's 1000 create/start/delete cycles (test_churn.py; about 2 min)
export BRIG_CHURN_CYCLES=${BRIG_CHURN_CYCLES:-1000}
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
       -DBRIG_WERROR=ON -DBRIG_FAULT_INJECTION=ON)

# build NAME DIR CMAKE-ARGS...: configure and build everything, timed.
build() {
  local name=$1 dir=$2
  shift 2
  echo "== $name: build ($(( SECONDS - t0 ))s since start)"
  cmake -S . -B "$dir" "${flags[@]}" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}
# tests NAME DIR CTEST-ARGS...
tests() {
  local name=$1 dir=$2
  shift 2
  echo "== $name ($(( SECONDS - t0 ))s since start)"
  (cd "$dir" && ctest --output-on-failure --no-tests=error --timeout 2400 "$@")
}

build "g++" build-test
tests "g++: every tier" build-test

case ${BRIG_CI_SANITIZE:-subset} in
  full|1) san='^(unit|integration|integration-network)$' ;;
  subset) san='^(unit|integration-sanitize-subset)$' ;;
  0) san= ;;
  *) echo "BRIG_CI_SANITIZE: subset, full or 0" >&2; exit 2 ;;
esac
fuzz=${BRIG_CI_FUZZ:-1}
if [ -n "$san" ] || [ "$fuzz" = 1 ]; then
  build "clang-16 ASan+UBSan+libFuzzer" build-san -DCMAKE_CXX_COMPILER=clang++-16 -DBRIG_FUZZ=ON
  # the clients tier drives the same binary: once, in the first pass, is enough
  [ -z "$san" ] || tests "clang-16 ASan+UBSan: $san" build-san -R "$san"
  [ "$fuzz" != 1 ] || tests "clang-16 libFuzzer runs" build-san -V -L fuzz
fi
echo "== done ($(( SECONDS - t0 ))s)"
