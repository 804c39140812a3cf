#!/usr/bin/env bash
# build-agent-image.sh BRIG OUT.img [raw|qcow2]
#
# A root disk for the microVM backend's `vm.image`: an ext4 filesystem (built
# into Debian's kernels) holding /bin/brig with the shared libraries it links
# at their host paths, busybox-static's applets in /bin (the guest's `ps`,
# `sh`), and the directories the agent mounts on (proc sys dev run tmp
# rootfs volumes); /etc/brig-image names the brig it came from. The guest
# boots brig's initramfs, which mounts this disk read-only and hands PID 1
# to its /bin/brig (see README "MicroVM backend"). Made with mkfs.ext4 -d,
# without loop devices or mounts; qcow2 through qemu-img (qemu-utils).
# Rebuild it after rebuilding brig: the host and the image's brig must speak
# the same control protocol.
set -euo pipefail
usage="usage: build-agent-image.sh BRIG OUT.img [raw|qcow2]"
brig=${1:?$usage}
out=${2:?$usage}
format=${3:-raw}
case "$format" in raw|qcow2) ;; *) echo "build-agent-image: format $format: raw or qcow2" >&2; exit 2 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,etc,proc,sys,dev,run,tmp,rootfs,volumes}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
  [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
rm -f "$root/bin/brig"
strip --strip-unneeded -o "$root/bin/brig" "$brig"
for lib in $(ldd "$brig" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo "brig $("$brig" --version | head -1)" >"$root/etc/brig-image"
kib=$(( $(du -sk "$root" | cut -f1) * 5 / 4 + 4096 ))
mkdir -p "$(dirname "$out")"
mkfs.ext4 -q -F -L brig-agent -d "$root" "$tmp/image.raw" "${kib}k" >/dev/null
if [ "$format" = qcow2 ]; then
  qemu-img convert -f raw -O qcow2 "$tmp/image.raw" "$out.tmp"
else
  mv "$tmp/image.raw" "$out.tmp"
fi
mv "$out.tmp" "$out"
echo "$out"
