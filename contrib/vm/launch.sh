#!/usr/bin/env bash
# launch.sh --kernel VMLINUZ --initrd INITRD [options] [-- EXTRA-KERNEL-ARGS...]
#
# Boots a QEMU microvm guest whose root is a host directory shared over
# virtiofs (read-only in the guest; see contrib/vm/init), with the serial
# console on stdout, and exits with QEMU's status when the guest powers off.
#
#   --share DIR     host directory the guest uses as its root (default /)
#   --cmd PATH      program inside it to run as the guest's PID 1 (brig_cmd=)
#   --arg STRING    one argument for it, no spaces (brig_arg=)
#   --mem MiB       guest memory (default 1024)
#   --smp N         guest CPUs (default: 2, at most the host's)
#   --disk FILE     a raw image attached as a virtio-blk disk (/dev/vda)
#   --timeout SECS  kill QEMU after SECS (default 900)
#
# Why virtiofs: Debian's cloud kernel has no 9p at all, and virtiofs lets the
# guest see the host's python3, pytest, busybox and the freshly built brig with
# nothing to copy or image (a disk image would have to be rebuilt every run).
# Debian 12's qemu-system-x86 ships the C virtiofsd in /usr/lib/qemu/.
# Why microvm: no PCI/firmware probing (virtio-mmio devices found via ACPI),
# so it boots in ~1 s with KVM and a few seconds under TCG.
#
# Acceleration: KVM when the CPU flags show vmx/svm AND /dev/kvm opens;
# otherwise TCG (multi-threaded), which needs tsc_early_khz= on the guest
# command line (an unstable TSC calibration hangs the boot) and tsc=reliable
# (see below). BRIG_VM_ACCEL=
# kvm|tcg overrides. One line "brig-vm: accelerator: ..." says which it was.
set -euo pipefail
kernel= initrd= share=/ cmd= arg= mem=1024 smp=2 disk= timeout=900 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --cmd) cmd=$2; shift 2 ;;
    --arg) arg=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "launch.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$kernel" ] && [ -n "$initrd" ] || { echo "launch.sh: --kernel and --initrd are required" >&2; exit 2; }
qemu=$(command -v qemu-system-x86_64) || { echo "launch.sh: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }
vfsd=/usr/lib/qemu/virtiofsd
[ -x "$vfsd" ] || { echo "launch.sh: $vfsd missing" >&2; exit 2; }
n=$(nproc)
[ "$smp" -le "$n" ] || smp=$n

accel=${BRIG_VM_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  if grep -qwE 'vmx|svm' /proc/cpuinfo && { exec 9<>/dev/kvm; } 2>/dev/null; then
    exec 9>&-
    accel=kvm
  fi
fi
cmdline=(console=ttyS0 reboot=t panic=-1 pci=off quiet loglevel=4 cgroup_no_v1=all)
if [ "$accel" = kvm ]; then
  accel_args=(-accel kvm -cpu host)
  echo "brig-vm: accelerator: kvm"
else
  # The host's TSC rate; any plausible value keeps the TCG guest from hanging.
  khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
  [ -n "$khz" ] && [ "$khz" -gt 100000 ] || khz=2000000
  accel_args=(-accel tcg,thread=multi -cpu max)
  # tsc=reliable: without it the TSC fails the clocksource watchdog and the
  # guest falls back to jiffies, whose time crawls (and sleeps stretch) when
  # the emulation falls behind on a busy host.
  cmdline+=("tsc_early_khz=$khz" tsc=reliable)
  echo "brig-vm: accelerator: tcg (no usable KVM; tsc_early_khz=$khz)"
fi
[ -z "$cmd" ] || cmdline+=("brig_cmd=$cmd")
[ -z "$arg" ] || cmdline+=("brig_arg=$arg")
cmdline+=("${extra[@]}")

run=$(mktemp -d /tmp/brig-vm.XXXXXX)
vpid=
cleanup() {
  # (its "Unexpected poll revents" is just the guest going away)
  if [ -s "$run/virtiofsd.log" ]; then
    grep -v 'Unexpected poll revents' "$run/virtiofsd.log" | sed 's/^/virtiofsd: /' >&2 || true
  fi
  [ -z "$vpid" ] || kill "$vpid" 2>/dev/null || true
  [ -z "$vpid" ] || wait "$vpid" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$vfsd" --socket-path="$run/vfs.sock" -o source="$share" -o cache=auto \
  -o sandbox=chroot -o log_level=${BRIG_VM_VIRTIOFSD_LOG:-err} --rlimit-nofile=0 </dev/null >"$run/virtiofsd.log" 2>&1 &
vpid=$!
for _ in $(seq 100); do
  [ -S "$run/vfs.sock" ] && break
  kill -0 "$vpid" 2>/dev/null || { cat "$run/virtiofsd.log" >&2; exit 2; }
  sleep 0.05
done

args=(-M microvm,memory-backend=mem -m "${mem}M" -smp "$smp" "${accel_args[@]}"
      -object "memory-backend-memfd,id=mem,size=${mem}M,share=on"
      -global virtio-mmio.force-legacy=false
      -nodefaults -no-user-config -display none -no-reboot
      -serial stdio
      -chardev "socket,id=vfs,path=$run/vfs.sock"
      -device "vhost-user-fs-device,chardev=vfs,tag=hostroot"
      -kernel "$kernel" -initrd "$initrd" -append "${cmdline[*]}")
if [ -n "$disk" ]; then
  args+=(-drive "id=disk0,file=$disk,format=raw,if=none,cache=unsafe"
         -device virtio-blk-device,drive=disk0)
fi
rc=0
timeout --foreground -k 5 "$timeout" "$qemu" "${args[@]}" </dev/null || rc=$?
exit "$rc"
