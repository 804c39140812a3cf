#!/usr/bin/env bash
# run-cgroup2-tier.sh BRIG [CACHE_DIR]
#
# The pure cgroup v2 test tier. CI hosts are cgroup v1 hybrids, so this boots
# ONE QEMU microvm guest (Debian's cloud kernel, cgroup_no_v1=all, only cgroup2
# mounted at /sys/fs/cgroup) and runs the integration tests marked `cgroup`
# (test_cgroups*.py) inside it against the BRIG binary, then exits with
# pytest's status.
#
# How the guest gets brig and the tests: the host's root filesystem is shared
# read-only over virtiofs and becomes the guest's root (tmpfs on /tmp, /run,
# /root), so python3, pytest, busybox and BRIG come from the host at their
# usual paths with nothing copied or imaged. 9p is out: Debian's cloud kernel
# lacks it. A disk image would have to be rebuilt per run. Results come back
# over the serial console (this script's stdout): pytest's output, then one
# line "BRIG-VM-RESULT rc=N" that this script turns into its exit status
# (no such line = the guest died: exit 125).
#
# Pieces (reusable for the microVM backend, see contrib/vm/):
#   contrib/vm/fetch-kernel.sh    Debian kernel -> CACHE_DIR/<release>/
#   contrib/vm/build-initramfs.sh busybox + modules + contrib/vm/init
#   contrib/vm/launch.sh          virtiofsd + qemu (KVM if usable, else TCG)
#   test/vm/guest-init.py         the guest's PID 1: controllers on, pytest, poweroff
#
# CACHE_DIR (default: BRIG_VM_CACHE or <dir of BRIG>/vm-cache) keeps the
# kernel and initramfs between runs. BRIG_VM_PYTEST_K=name1,name2 narrows the
# tests (pytest -k "name1 or name2"); BRIG_VM_ACCEL=kvm|tcg forces an accelerator.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
brig=$(realpath "${1:?usage: run-cgroup2-tier.sh BRIG [CACHE_DIR]}")
cache=${2:-${BRIG_VM_CACHE:-$(dirname "$brig")/vm-cache}}
mkdir -p "$cache"
cache=$(realpath "$cache")
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }


kdir=$("$repo/contrib/vm/fetch-kernel.sh" "$cache")
# loop: the device-cgroup tests open /dev/loop0 (b 7:0), which needs its driver.
mods=(virtio_mmio virtiofs virtio_blk loop)
initrd=$cache/initramfs-$(basename "$kdir")-$(echo "${mods[*]}" | cksum | cut -d' ' -f1).gz
if [ ! -s "$initrd" ] || [ "$repo/contrib/vm/init" -nt "$initrd" ] ||
   [ "$repo/contrib/vm/build-initramfs.sh" -nt "$initrd" ]; then
  "$repo/contrib/vm/build-initramfs.sh" "$kdir" "$initrd" "${mods[@]}" >/dev/null
fi
# A small disk so io.max / io.weight have a real block device (/dev/vda).
disk=$cache/disk.img
[ -s "$disk" ] || truncate -s 16M "$disk"
echo "brig-vm: kernel $(basename "$kdir"), initramfs $(du -k "$initrd" | cut -f1) KiB, ready after $(elapsed) s"

# The checkout and the binary stay visible even under /tmp (tmpfs in the guest).
extra=("brig_keep=$repo,$(dirname "$brig")")
[ -z "${BRIG_VM_PYTEST_K:-}" ] || extra+=("brig_pytest_k=$BRIG_VM_PYTEST_K")
log=$cache/last-run.log
rc=0
"$repo/contrib/vm/launch.sh" --kernel "$kdir/vmlinuz" --initrd "$initrd" --mem 1024 --smp 2 \
  --disk "$disk" --cmd "$here/guest-init.py" --arg "$brig" --timeout "${BRIG_VM_TIMEOUT:-1200}" \
  -- loglevel=3 "${extra[@]}" 2>&1 | {
    # the console, with the wall-clock moment the guest's PID 1 spoke first
    booted=
    while IFS= read -r line; do
      printf '%s\n' "$line"
      if [ -z "$booted" ] && [[ $line == brig-guest:* ]]; then
        booted=1
        echo "brig-vm: guest userspace up after $(elapsed) s (wall clock)"
      fi
    done
  } | tee "$log" || rc=$?
result=$(sed -n 's/^BRIG-VM-RESULT rc=\([0-9]*\).*/\1/p' "$log" | tail -1)
echo "brig-vm: guest finished after $(elapsed) s (qemu exit $rc)"
if [ -z "$result" ]; then
  echo "brig-vm: no result line from the guest (see $log)" >&2
  exit 125
fi
echo "brig-vm: pytest exit status in the guest: $result"
exit "$result"
