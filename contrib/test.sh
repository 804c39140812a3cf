#!/usr/bin/env bash
# Installs the dependencies, builds brig with warnings as errors, and runs the
# whole test suite (Catch2 unit tests + integration tests driving the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRIG_WERROR=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure --timeout 2400
