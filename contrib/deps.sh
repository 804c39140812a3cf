#!/usr/bin/env bash
# Installs what brig needs to build, test and demo on Debian 12 (as root).
# Sourced by quickstart.sh and test.sh; safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config git
      libseccomp-dev nlohmann-json3-dev libcap-dev libmnl-dev libfmt-dev catch2
      busybox-static jq nftables lld)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(python3 python3-pytest iproute2 util-linux)
  # newuidmap/newgidmap: rootless maps beyond the caller's own id
  pkgs+=(uidmap)
  # The client tier (test/clients): the programs that drive a runtime.
  pkgs+=(podman conmon runc containerd containernetworking-plugins
         python3-grpcio python3-grpc-tools tmux)
  # libFuzzer (test/fuzz): clang 16 and its runtime libraries
  pkgs+=(clang-16 libclang-rt-16-dev)
  # the pure cgroup v2 tier (test/vm/): QEMU with virtiofsd, cpio for the
  # initramfs; its kernel is fetched with apt-get download, never installed;
  # qemu-utils (qemu-img) and e2fsprogs (mkfs.ext4) make vm.image disks
  pkgs+=(qemu-system-x86 cpio qemu-utils e2fsprogs)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
