#!/usr/bin/env bash
# bench.sh BRIG [RUNS] [CACHE_DIR]
#
# The microVM backend's cost over the VM itself: bundle-to-exit time of
# `brig run` (a busybox bundle running `echo`, io.brig.runtime=vm) against a
# bare QEMU boot of the same kernel and initramfs that powers off at once
# (rdinit=/bin/reboot -f), both with the same machine options and accelerator.
# Prints one line per run and the medians.
set -euo pipefail
brig=$(realpath "${1:?usage: bench.sh BRIG [RUNS] [CACHE_DIR]}")
runs=${2:-3}
cache=${3:-${BRIG_VM_CACHE:-$(dirname "$brig")/vm-cache}}
here=$(cd "$(dirname "$0")" && pwd)
kdir=$("$here/fetch-kernel.sh" "$cache")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/build-agent-initramfs.sh" "$kdir" "$brig" "$tmp/initrd.img" >/dev/null
mkdir -p "$tmp/b/rootfs/bin" "$tmp/b/rootfs"/{proc,sys,dev,tmp,etc,root}
cp /bin/busybox "$tmp/b/rootfs/bin/"
ln -s busybox "$tmp/b/rootfs/bin/echo"
ln -s busybox "$tmp/b/rootfs/bin/sh"
(cd "$tmp/b" && "$brig" spec && python3 -c '
import json; c = json.load(open("config.json"))
c["process"]["terminal"] = False; c["process"]["args"] = ["echo", "hello"]
c["annotations"] = {"io.brig.runtime": "vm"}
json.dump(c, open("config.json", "w"))')
export BRIG_VM_KERNEL=$kdir/vmlinuz BRIG_VM_INITRD=$tmp/initrd.img
accel=(-accel tcg -cpu max)
extra=("tsc_early_khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)")
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then accel=(-accel kvm -cpu host); extra=(); fi
now() { date +%s.%N; }
bare=() full=()
for i in $(seq "$runs"); do
  t=$(now)
  qemu-system-x86_64 -M microvm,memory-backend=mem -m 256M -smp 1 "${accel[@]}" \
    -object memory-backend-memfd,id=mem,size=256M,share=on -global virtio-mmio.force-legacy=false \
    -nodefaults -no-user-config -display none -no-reboot -serial none \
    -kernel "$kdir/vmlinuz" -initrd "$tmp/initrd.img" \
    -append "console=ttyS0 reboot=t panic=-1 pci=off quiet loglevel=4 ${extra[*]} rdinit=/bin/reboot -- -f"
  bare+=("$(awk "BEGIN { print $(now) - $t }")")
  t=$(now)
  "$brig" --root "$tmp/state" run "bench$$-$i" --bundle "$tmp/b" </dev/null >/dev/null 2>&1
  full+=("$(awk "BEGIN { print $(now) - $t }")")
  printf 'run %d: bare boot %.2fs, brig run %.2fs\n' "$i" "${bare[-1]}" "${full[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf 'median: bare boot %.2fs, brig run (bundle-to-exit) %.2fs\n' "$(median "${bare[@]}")" "$(median "${full[@]}")"
