#!/usr/bin/env bash
# fetch-kernel.sh CACHE_DIR [PACKAGE]
#
# Fetches a Debian kernel package WITHOUT installing it as the host's kernel
# (`apt-get download` + `dpkg-deb -x`) and unpacks it into
# CACHE_DIR/<kernel-release>/ :
#   vmlinuz   the bzImage (what `qemu -kernel` boots, microvm included)
#   config    the kernel's build config (to see what is built in)
#   modules/  lib/modules/<kernel-release>/ (the .ko files build-initramfs.sh picks)
# and prints that directory on stdout. A second run with the same candidate
# version reuses the cache (no network). PACKAGE defaults to
# linux-image-cloud-amd64, Debian's smallest x86-64 kernel: virtio, virtiofs,
# cgroup v2 (memory, cpu, io, pids, cpuset, hugetlb, rdma, misc) and
# BPF_CGROUP_DEVICE, but no 9p.
#
# Reused by the cgroup v2 test tier (test/vm/) and meant for the microVM
# backend (runtime/vm/), which needs the same kernel + initramfs pair.
set -euo pipefail
cache=${1:?usage: fetch-kernel.sh CACHE_DIR [PACKAGE]}
meta=${2:-linux-image-cloud-amd64}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The metapackage depends on exactly one linux-image-<release> package.
cand() { apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Depends: //p' | head -1; }
dep=$(cand "$meta")
if [ -z "$dep" ]; then
  apt-get update -qq
  dep=$(cand "$meta")
fi
pkg=$(printf '%s\n' "$dep" | tr ',|' '\n\n' | sed 's/ .*//;s/^ *//' | grep '^linux-image-' | head -1)
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve $meta to a linux-image package" >&2; exit 1; }
release=${pkg#linux-image-}
out=$cache/$release
if [ -s "$out/vmlinuz" ] && [ -d "$out/modules" ]; then
  echo "$out"
  exit 0
fi

tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's _apt user cannot write into root-only dirs: let it, to avoid the warning.
chmod 755 "$tmp"
(cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) || {
  apt-get update -qq
  (cd "$tmp" && apt-get download -qq "$pkg")
}
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"
mkdir -p "$tmp/out"
cp "$tmp/x/boot/vmlinuz-$release" "$tmp/out/vmlinuz"
cp "$tmp/x/boot/config-$release" "$tmp/out/config"
mv "$tmp/x/lib/modules/$release" "$tmp/out/modules"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
