#!/usr/bin/env bash
# build-agent-initramfs.sh KERNEL_DIR BRIG OUT.cpio.gz
#
# The initramfs of brig's microVM backend: build-initramfs.sh's base (the
# virtio-mmio, virtiofs, virtio-console, virtio-net and virtio-blk (for
# vm.image) modules with their load order)
# followed by a second gzip'd cpio (the kernel unpacks concatenated archives)
# holding /bin/brig and the shared libraries it links, at their host paths.
# The guest boots with rdinit=/bin/brig -- vm-agent, so brig itself is PID 1.
#
# Why the dynamic binary and its libs rather than a static build: it is the
# very binary the host runs (no second build configuration, libseccomp and
# libcap have no static variants in every setup), and it adds ~3 MB.
# Rebuild this after rebuilding brig.
set -euo pipefail
kdir=${1:?usage: build-agent-initramfs.sh KERNEL_DIR BRIG OUT.cpio.gz}
brig=${2:?usage: build-agent-initramfs.sh KERNEL_DIR BRIG OUT.cpio.gz}
out=${3:?usage: build-agent-initramfs.sh KERNEL_DIR BRIG OUT.cpio.gz}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/build-initramfs.sh" "$kdir" "$tmp/base.gz" virtio_mmio virtiofs virtio_console virtio_net virtio_blk >/dev/null
mkdir -p "$tmp/root/bin" "$tmp/root/rootfs"
# Debug info stays on the host: the guest needs the code only.
strip --strip-unneeded -o "$tmp/root/bin/brig" "$brig"
for lib in $(ldd "$brig" | grep -o '/[^ ]*'); do
  mkdir -p "$tmp/root$(dirname "$lib")"
  cp -L "$lib" "$tmp/root$lib"
done
(cd "$tmp/root" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$tmp/agent.gz"
mkdir -p "$(dirname "$out")"
cat "$tmp/base.gz" "$tmp/agent.gz" >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
