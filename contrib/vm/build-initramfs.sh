#!/usr/bin/env bash
# build-initramfs.sh KERNEL_DIR OUT.cpio.gz [MODULE...]
#
# Builds a small initramfs (a gzip'd newc cpio, ~1.5 MB) for a kernel that
# fetch-kernel.sh unpacked into KERNEL_DIR:
#   /bin/busybox   busybox-static, with its applets linked
#   /lib/modules/  the named modules and what they depend on (read from each
#                  .ko's modinfo "depends="), listed in load order in
#                  /lib/modules/load (built-in ones, per modules.builtin, are skipped)
#   /init          contrib/vm/init (load modules, mount the host's root over
#                  virtiofs, switch_root into the command from the kernel cmdline)
# Default modules: the virtio-mmio transport (microvm), virtiofs, virtio-blk;
# add virtio_pci for a q35/pc machine.
set -euo pipefail
kdir=${1:?usage: build-initramfs.sh KERNEL_DIR OUT.cpio.gz [MODULE...]}
out=${2:?usage: build-initramfs.sh KERNEL_DIR OUT.cpio.gz [MODULE...]}
shift 2
mods=("$@")
[ ${#mods[@]} -gt 0 ] || mods=(virtio_mmio virtiofs virtio_blk)
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,sbin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$tmp/bin/busybox"
for a in $("$busybox" --list); do
  [ -e "$tmp/bin/$a" ] || ln -s busybox "$tmp/bin/$a"
done
cp "$here/init" "$tmp/init"
chmod 755 "$tmp/init"

# Resolve module dependencies (depth first, so dependencies load first).
declare -A seen=()
order=()
ko_of() { find "$kdir/modules/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -1; }
add() {
  local m=$1 f deps d
  [ -z "${seen[$m]:-}" ] || return 0
  seen[$m]=1
  f=$(ko_of "$m")
  if [ -z "$f" ]; then
    grep -qE "/$m\.ko$|/$(echo "$m" | tr _ -)\.ko$" "$kdir/modules/modules.builtin" && return 0
    echo "build-initramfs: module $m is neither built in nor in $kdir/modules" >&2
    exit 1
  fi
  deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
  for d in $deps; do add "$d"; done
  cp "$f" "$tmp/lib/modules/"
  order+=("$(basename "$f")")
}
for m in "${mods[@]}"; do add "$m"; done
printf '%s\n' "${order[@]}" >"$tmp/lib/modules/load"

mkdir -p "$(dirname "$out")"
(cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
