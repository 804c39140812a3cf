#!/bin/bash
# Benchmark brig against crun and runc, interleaved, on one busybox bundle.
#
#   bash contrib/bench/run.sh [--brig PATH] [--also NAME=PATH] [--floor] [--quick] [-n N]
#                             [--batches N] [--json FILE] [--phases N]
#
# Installs runc, crun and a static busybox from Debian, builds brig (Release)
# into build-bench/ unless --brig is given, and prints a table of medians,
# p10-p90 and the ratios brig/crun and brig/runc (and brig/floor, floor/crun).
# Needs root. Everything it makes (containers, cgroups under /brigbench, state,
# bundles) is removed at the end. --floor adds floor.c, the least work this
# container needs (not a runtime), as one more runtime, and floor-safe, the
# same with what the project's rules ask of any runtime (dynamic PIE with
# libc and libmnl, mount targets resolved inside the rootfs). See
# contrib/bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
brig=""
args=()
also=()  # NAME=PATH of every --also (and the floor): bench.py's runtimes, and the cleanup's
floor=""
while [ $# -gt 0 ]; do
  case "$1" in
    --brig) brig=$2; shift 2 ;;
    --brig=*) brig=${1#--brig=}; shift ;;
    --also) also+=("$2"); shift 2 ;;  # NAME=PATH, e.g. brig-static=./b/brig
    --floor) floor=1; shift ;;
    --quick) args+=(--quick); shift ;;
    -n|--batches|--json|--phases) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }

need=()
for p in runc crun busybox-static python3 gcc libc6-dev ${floor:+libmnl-dev}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi

if [ -z "$brig" ]; then
  cmake -S "$src" -B "$src/build-bench" -DCMAKE_BUILD_TYPE=Release -DBRIG_TESTS=OFF >/dev/null
  cmake --build "$src/build-bench" -j2 --target brig >/dev/null
  brig=$src/build-bench/brig
fi
brig=$(realpath "$brig")

cgparent=/brigbench
work=$(mktemp -d /tmp/brigbench.XXXXXX)
# State on tmpfs like the runtimes' defaults (/run/runc, /run/crun, /run/brig)
# on any host where /run is a tmpfs. Where it is not (this VM: no systemd, /run
# on the root ext4), a tmpfs of its own: every runtime replaces its state file
# with a rename, which on ext4 starts writeback of the new file (auto_da_alloc).
state=$(mktemp -d /run/brigbench.XXXXXX)
state_mounted=""
if [ "$(stat -f -c %T "$state")" != tmpfs ]; then
  mount -t tmpfs -o mode=0700,size=64m brigbench "$state" && state_mounted=1
fi
mounted=()

cleanup() {
  set +e
  local pairs=("brig=$brig" "crun=$(command -v crun)" "runc=$(command -v runc)" "${also[@]}")
  for pair in "${pairs[@]}"; do
    rt=${pair%%=*} bin=${pair#*=}
    [ -d "$state/$rt" ] || continue
    for id in $(ls "$state/$rt" 2>/dev/null); do
      [ -d "$state/$rt/$id" ] && "$bin" --root "$state/$rt" delete --force "$id" >/dev/null 2>&1
    done
  done
  # Only the bench's own parent, in every mounted hierarchy, deepest first.
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h${cgparent#/}" ] && find "$h${cgparent#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  [ -n "$state_mounted" ] && umount "$state"
  rm -rf "$work" "$state"
  for c in "${mounted[@]}"; do
    umount "/sys/fs/cgroup/$c" && rmdir "/sys/fs/cgroup/$c"
  done
}
trap cleanup EXIT

# crun 1.8.1 refuses a hybrid host while cgroup2 still has controllers
# ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"). On Debian 12 kernels hugetlb is the one left there: mount it as
# a v1 hierarchy, as an admin of such a host would (unmounted again at exit).
# (cgroupfs reports every file as 0 bytes long: test its text, not [ -s ].)
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers)" ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    grep -q " /sys/fs/cgroup/$c " /proc/self/mountinfo && continue
    mkdir -p /sys/fs/cgroup/$c
    mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
    mounted+=("$c")
  done
fi

gcc -O2 -static -o "$work/maxrss" "$here/maxrss.c"
if [ -n "$floor" ]; then
  gcc -O2 -static -o "$work/floor" "$here/floor.c"
  gcc -O2 -fPIE -pie -DFLOOR_SAFE -o "$work/floor-safe" "$here/floor.c" -lmnl
  also+=("floor=$work/floor" "floor-safe=$work/floor-safe")
fi

# The bundle: a static busybox, runc's default config, /bin/true.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
for t in true sh sleep; do ln -s busybox "$work/rootfs/bin/$t"; done
(cd "$work" && runc spec)
python3 - "$work/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF

echo "brig: $brig ($("$brig" --version | head -1))"
echo "crun: $(command -v crun) ($(crun --version | head -1))"
echo "runc: $(command -v runc) ($(runc --version | head -1))"
runtimes=(--runtime "brig=$brig")
for a in "${also[@]}"; do runtimes+=(--runtime "$a"); done
python3 "$here/bench.py" "${runtimes[@]}" --runtime crun="$(command -v crun)" \
  --runtime runc="$(command -v runc)" --config "$work/config.json" --rootfs "$work/rootfs" \
  --cgroup-parent "$cgparent" --state-dir "$state" --maxrss "$work/maxrss" "${args[@]}"
