#!/usr/bin/env bash
# Installs the build dependencies, builds brig, makes a busybox bundle with
# `brig spec`, and runs it: the container prints its hostname, that it is
# PID 1, and its own mount table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRIG_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
cmake --install build >/dev/null   # /usr/local/bin/brig, man page, completion

bundle=$(mktemp -d /tmp/brig-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for app in sh hostname cat ls echo; do ln -s busybox "$bundle/rootfs/bin/$app"; done
cd "$bundle"
brig spec
jq '.process.terminal = false | .hostname = "brig-demo"
    | .process.args = ["sh", "-c", "echo \"hostname: $(hostname)\"; echo \"my pid: $$\"; echo \"my mounts:\"; cat /proc/self/mountinfo"]' \
  config.json > config.json.new && mv config.json.new config.json
echo "== brig run demo (bundle $bundle) =="
brig run "demo-$$"
