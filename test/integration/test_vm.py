"""The microVM backend (issue #8): the bundle runs inside a QEMU microvm
guest whose PID 1 is brig's agent, asked for with the io.brig.runtime=vm
annotation or a spec `vm` section.

Each test boots one guest (under TCG on machines without VMX/SVM: ~5-14 s).
Skipped, with the reason, when QEMU, virtiofsd, cpio or the Debian kernel
(contrib/vm/fetch-kernel.sh, apt-get download) are not available.
"""

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import BRIG, IS_RUNC, wait_for, proc_alive, proc_starttime

REPO = Path(__file__).resolve().parents[2]
QEMU = "/usr/bin/qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
BOOT_TIMEOUT = 300
PROTOCOL = 3  # kProtocol in runtime/vm/vm.hpp

pytestmark = pytest.mark.skipif(IS_RUNC, reason="the microVM backend is brig's own")


@pytest.fixture(scope="session")
def vm_env(tmp_path_factory):
    for path, pkg in ((QEMU, "qemu-system-x86"), (VIRTIOFSD, "qemu-system-x86"),
                      (shutil.which("cpio") or "/usr/bin/cpio", "cpio"), ("/bin/busybox", "busybox-static")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} missing (apt-get install {pkg})")
    cache = os.environ.get("BRIG_VM_CACHE") or os.path.join(os.path.dirname(BRIG), "vm-cache")
    res = subprocess.run([REPO / "contrib/vm/fetch-kernel.sh", cache], capture_output=True,
                         text=True, timeout=600)
    if res.returncode != 0:
        pytest.skip(f"no guest kernel: contrib/vm/fetch-kernel.sh failed: {res.stderr.strip()}")
    kdir = res.stdout.strip().splitlines()[-1]
    initrd = tmp_path_factory.mktemp("vm") / "initrd.img"
    subprocess.run([REPO / "contrib/vm/build-agent-initramfs.sh", kdir, BRIG, initrd],
                   check=True, capture_output=True, timeout=300)
    return {"BRIG_VM_KERNEL": os.path.join(kdir, "vmlinuz"), "BRIG_VM_INITRD": str(initrd)}


def descendants(pid):
    """Every live descendant of pid (children first), as (pid, start time)."""
    out = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in map(int, kids):
        out.append((k, proc_starttime(k)))
        out.extend(descendants(k))
    return out


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def vm_bundle(make_bundle, args, spec_vm=None, name=None):
    b = make_bundle(name)

    def fn(cfg):
        cfg["process"]["args"] = args
        cfg["root"]["readonly"] = False
        if spec_vm is not None:
            cfg["vm"] = spec_vm
        else:
            cfg.setdefault("annotations", {})["io.brig.runtime"] = "vm"
    b.set_config(fn)
    return b


def b_id_suffix():
    return os.urandom(4).hex()


def hw_virt():
    with open("/proc/cpuinfo") as f:
        flags = f.read().split()
    return "vmx" in flags or "svm" in flags


def test_run_output_and_exit_code(runtime, make_bundle, vm_env, tmp_path):
    # Commas in the state dir and the rootfs path: each is one QEMU / virtiofsd
    # option value, never a second option.
    runtime.root = str(tmp_path / "st,ate")
    uniq = f"brigvm-{b_id_suffix()}"
    b = vm_bundle(make_bundle, ["sh", "-c", "echo hello from the guest; uname -r; echo oops >&2; "
                                            f"touch /a/{uniq}-w; exit 7"], name="bun,dle")
    # A symlink to a host path: the mount under it and the process's write
    # land in the rootfs (resolved in the guest's root), never on the host.
    os.symlink("/tmp", b.rootfs / "a")
    b.set_config(lambda cfg: cfg["mounts"].append({"destination": f"/a/{uniq}/deep", "type": "tmpfs",
                                                   "source": "tmpfs"}))
    t0 = time.monotonic()
    res = runtime.run("run", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env)
    took = time.monotonic() - t0
    print(f"bundle-to-exit in the microVM: {took:.1f}s")
    assert res.returncode == 7, res
    lines = res.stdout.splitlines()
    assert lines[0] == "hello from the guest", res
    # the guest's kernel, not the host's
    assert lines[1] == os.path.basename(os.path.dirname(vm_env["BRIG_VM_KERNEL"])), res
    assert lines[1] != os.uname().release
    assert "oops" in res.stderr
    warnings = [l for l in res.stderr.splitlines() if "TCG" in l]
    assert len(warnings) == (0 if hw_virt() else 1), res
    assert runtime.state(b.id, check=False) is None
    assert (b.rootfs / "tmp" / uniq / "deep").is_dir() and (b.rootfs / "tmp" / f"{uniq}-w").exists()
    assert not os.path.exists(f"/tmp/{uniq}") and not os.path.exists(f"/tmp/{uniq}-w")


def test_lifecycle_kill_and_delete_leave_nothing(runtime, make_bundle, vm_env):
    # The spec's own vm section this time, with the same kernel and initrd.
    b = vm_bundle(make_bundle,
                  ["sh", "-c", "trap 'echo got TERM; exit 3' TERM; touch /up; while true; do sleep 1; done"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]},
                           "hypervisor": {"path": QEMU}})
    runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, check=True)
    st = runtime.state(b.id)
    assert st["status"] == "created"
    shim = st["pid"]
    shim_start = proc_starttime(shim)
    state_dir = Path(runtime.root) / b.id
    assert (state_dir / "ctl.sock").exists() and (state_dir / "vfs.sock").exists()
    # virtiofsd, and QEMU under its keeper and the PID 1 of its pid namespace
    helpers = descendants(shim)
    names = sorted(comm(p) for p, _ in helpers)
    assert len(helpers) == 4 and names[-2:] == ["qemu-system-x86", "virtiofsd"], names
    # QEMU runs as its own uid and gid (0x7f000000 + the shim's pid), no
    # capabilities left, under its seccomp filter and no_new_privs
    qemu = [p for p, _ in helpers if comm(p).startswith("qemu")]
    assert len(qemu) == 1, helpers
    status = dict(line.split(":", 1) for line in Path(f"/proc/{qemu[0]}/status").read_text().splitlines())
    own = str(0x7f000000 + shim)
    assert status["Uid"].split() == [own] * 4 and status["Gid"].split() == [own] * 4, status
    assert status["Groups"].split() == [own] or status["Groups"].split() == [], status
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1", status
    runtime.run("start", b.id, timeout=60, check=True)
    assert runtime.status(b.id) == "running"
    # The rootfs is the host's directory, shared over virtiofs: the guest's
    # write shows up here once the trap is set (PID 1 ignores an untrapped TERM).
    assert wait_for(lambda: (b.rootfs / "up").exists(), 60)
    # exec: a second process in the guest container (its pid namespace, its
    # cgroup), stdin/stdout/stderr relayed, its exit code ours.
    res = runtime.run("exec", b.id, "sh", "-c",
                      "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat; echo to-err >&2; "
                      "[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same-cgroup; "
                      "uname -r; exit 5", input="piped in\n", timeout=60)
    assert res.returncode == 5, res
    out = res.stdout.splitlines()
    assert out[0].startswith("sh -c trap"), res  # the container's init is its PID 1
    assert out[1:3] == ["piped in", "same-cgroup"], res
    assert out[3] != os.uname().release, res
    assert res.stderr == "to-err\n", res
    # ps: the guest's brig lists the container's processes (guest pids),
    # not the host's shim, QEMU and virtiofsd
    pids = json.loads(runtime.run("ps", "--format", "json", b.id, timeout=60, check=True).stdout)
    assert pids and shim not in pids and all(p not in pids for p, _ in helpers), pids
    table = runtime.run("ps", b.id, timeout=60, check=True).stdout
    assert "PID" in table.splitlines()[0] and "trap" in table, table
    # exec -d: back at once, the process runs on in the guest
    runtime.run("exec", "-d", b.id, "sh", "-c", "sleep 1; touch /detached", timeout=60, check=True)
    assert wait_for(lambda: (b.rootfs / "detached").exists(), 30)
    # stdin a process does not read never stalls the guest agent: another
    # exec still runs while 1 MiB waits for a sleeping one...
    big = Path(runtime.tmp_path) / "big"
    big.write_bytes(b"x" * (1 << 20))
    with open(big, "rb") as f:
        sleeper = subprocess.Popen(runtime.cmd("exec", b.id, "sleep", "1000"), stdin=f,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runtime.env())
    # nor does a `brig exec` that does not read what its process writes
    flood = subprocess.Popen(runtime.cmd("exec", b.id, "sh", "-c", "while [ ! -e /stop ]; do echo flood; done"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=runtime.env())
    try:
        time.sleep(2)
        res = runtime.run("exec", b.id, "echo", "still-served", timeout=30)
        assert res.stdout == "still-served\n", res
    finally:
        for p in (sleeper, flood):
            p.kill()
            p.wait()
        flood.stdout.close()
        (b.rootfs / "stop").touch()  # the flood ends in the guest too
    # virtiofsd runs without CAP_MKNOD: a device node made on the guest's
    # tmpfs /dev works, on the shared rootfs (the host's directory) it does not.
    res = runtime.run("exec", "--cap", "CAP_MKNOD", b.id, "sh", "-c",
                      "mknod /dev/n1 c 1 3 && echo tmpfs-ok; mknod /n2 c 1 3 || echo rootfs-refused",
                      timeout=60)
    assert res.stdout.split() == ["tmpfs-ok", "rootfs-refused"], res
    assert not (b.rootfs / "n2").exists()
    # an exec that cannot start: the guest brig's one error line, exit 1
    res = runtime.run("exec", b.id, "/nonexistent", timeout=60, check=False)
    assert res.returncode != 0 and "/nonexistent" in res.error, res
    runtime.run("kill", b.id, "TERM", check=True)
    assert runtime.wait_status(b.id, "stopped", timeout=60)
    runtime.run("delete", b.id, timeout=60, check=True)
    assert not state_dir.exists()
    assert not proc_alive(shim, shim_start)
    for pid, start in helpers:
        assert not proc_alive(pid, start), f"helper {pid} outlived delete"


def test_pause_freezes_the_guest_and_resume_thaws_it(runtime, make_bundle, vm_env):
    """pause freezes the VM's host cgroup (shim, QEMU, virtiofsd): the guest
    stops; resume lets it go on."""
    b = vm_bundle(make_bundle, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.2; done"])
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    count = b.rootfs / "count"

    def value():
        try:
            return count.read_text().strip()
        except FileNotFoundError:
            return ""
    assert wait_for(lambda: value() not in ("", "1"), 60)
    runtime.run("pause", b.id, timeout=60, check=True)
    assert runtime.status(b.id) == "paused"
    frozen = value()
    time.sleep(3)
    assert value() == frozen, "the guest ran on while paused"
    runtime.run("resume", b.id, timeout=60, check=True)
    assert runtime.status(b.id) == "running"
    assert wait_for(lambda: value() not in ("", frozen), 60), "the guest did not go on after resume"
    runtime.run("delete", "--force", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()


def test_qemu_dies_with_a_killed_shim(runtime, make_bundle, vm_env):
    """QEMU gives up root, and with it PR_SET_PDEATHSIG; it runs in a pid
    namespace whose PID 1 keeps it, so a SIGKILLed shim still takes QEMU and
    virtiofsd with it (a guest that never powers off cannot outlive it)."""
    b = vm_bundle(make_bundle, ["sleep", "1000"])
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    shim = runtime.state(b.id)["pid"]
    helpers = descendants(shim)
    assert any(comm(p).startswith("qemu") for p, _ in helpers), helpers
    os.kill(shim, 9)
    assert wait_for(lambda: all(not proc_alive(p, t) for p, t in helpers), 20), \
        [(p, comm(p)) for p, t in helpers if proc_alive(p, t)]
    assert runtime.wait_status(b.id, "stopped", timeout=30)
    runtime.run("delete", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()


def test_delete_force_powers_off_a_running_vm(runtime, make_bundle, vm_env):
    b = vm_bundle(make_bundle, ["sleep", "1000"])
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    st = runtime.state(b.id)
    assert st["status"] == "running"
    shim = st["pid"]
    helpers = [(int(p), proc_starttime(int(p)))
               for p in Path(f"/proc/{shim}/task/{shim}/children").read_text().split()]
    runtime.run("delete", "-f", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()
    for pid, start in helpers:
        assert wait_for(lambda: not proc_alive(pid, start), 10), f"helper {pid} outlived delete -f"


def test_missing_kernel_is_one_clear_error(runtime, make_bundle, vm_env):
    b = vm_bundle(make_bundle, ["true"], spec_vm={"kernel": {"path": "/nonexistent/vmlinuz",
                                                             "initrd": vm_env["BRIG_VM_INITRD"]}})
    res = runtime.run("create", "--bundle", b, b.id, check=False)
    assert "vm: /nonexistent/vmlinuz: no such file or directory" in res.error, res
    assert not (Path(runtime.root) / b.id).exists()


def test_guest_side_create_error_is_one_line_and_leaves_nothing(runtime, make_bundle, vm_env):
    b = vm_bundle(make_bundle, ["true"])
    b.set_config(lambda cfg: cfg["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"}))
    res = runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=False)
    lines = [l for l in res.stderr.splitlines() if "level=error" in l]
    assert len(lines) == 1, res
    assert "vm: in the guest: brig create failed: unable to start container process: mounts[" in lines[0], res
    assert "fsopen nosuchfs: no such device" in lines[0], res
    assert not (Path(runtime.root) / b.id).exists()


SUBREAPER_EXEC = r"""
import ctypes, os, signal, subprocess, sys, time
# As containerd's shim: a subreaper runs `exec -d --pid-file`, then signals
# and reaps the pid it names, and learns the process's status from it.
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pidfile, ready, sig = sys.argv[1], sys.argv[2], int(sys.argv[3])
argv = sys.argv[4:]
with open(pidfile + ".out", "w") as out, open(pidfile + ".err", "w") as err:
    rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err).returncode
print("exec", rc, flush=True)
if rc != 0:
    sys.exit(0)
relay = int(open(pidfile).read())
for _ in range(600):
    if os.path.exists(ready):
        break
    time.sleep(0.1)
os.kill(relay, sig)
_, st = os.waitpid(relay, 0)
print("status", os.waitstatus_to_exitcode(st), flush=True)
"""


def test_detached_exec_is_a_host_process_that_stands_for_it(runtime, make_bundle, vm_env, tmp_path):
    """exec -d --pid-file, as containerd runs every exec: the pid file names
    a host process (brig's relay) that holds the caller's stdio, passes its
    signals on to the process in the guest and exits with its status, reaped
    by the caller's subreaper; SIGKILLed, it takes the process along. An
    exec that cannot start fails exec -d, with no relay left."""
    b = vm_bundle(make_bundle, ["sleep", "1000"])
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    pidf = tmp_path / "e.pid"
    res = subprocess.run([sys.executable, "-c", SUBREAPER_EXEC, pidf, b.rootfs / "ready", str(signal.SIGTERM)]
                         + runtime.cmd("exec", "-d", "--pid-file", pidf, b.id, "sh", "-c",
                                       "echo out; echo err >&2; trap 'echo got-term; exit 7' TERM; "
                                       "touch /ready; while :; do sleep 0.2; done"),
                         capture_output=True, text=True, timeout=120, env=runtime.env())
    assert res.stdout.split("\n")[:2] == ["exec 0", "status 7"], res
    assert Path(f"{pidf}.out").read_text() == "out\ngot-term\n"
    assert Path(f"{pidf}.err").read_text() == "err\n"

    # SIGKILL of the relay: the process in the guest goes too
    def guest_sleepers():
        out = runtime.run("exec", b.id, "ps", "-o", "args", timeout=60, check=True).stdout
        return [l for l in out.splitlines() if "sleep 997" in l]
    kpid = tmp_path / "k.pid"
    runtime.run("exec", "-d", "--pid-file", kpid, b.id, "sleep", "997", timeout=60, check=True)
    relay = int(kpid.read_text())
    assert comm(relay) == "brig" and len(guest_sleepers()) == 1
    os.kill(relay, signal.SIGKILL)
    assert wait_for(lambda: not guest_sleepers(), 30)

    # one that cannot start: exec -d fails with the guest's line, no pid file
    npid = tmp_path / "n.pid"
    res = runtime.run("exec", "-d", "--pid-file", npid, b.id, "/nonexistent", timeout=60, check=False)
    assert res.returncode != 0 and "/nonexistent" in res.stderr, res
    assert not npid.exists()
    def cmdline(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""
    relays = [d for d in os.listdir("/proc") if d.isdigit() and str(npid).encode() in cmdline(d)]
    assert relays == [], relays
    runtime.run("delete", "-f", b.id, timeout=60, check=True)


@pytest.fixture(scope="session")
def vm_image(vm_env, tmp_path_factory):
    """contrib/vm/build-agent-image.sh's disk (raw), its /bin/ps a script
    that says where it comes from (debugfs edits the ext4 without a mount)."""
    for tool in ("mkfs.ext4", "debugfs"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} missing (apt-get install e2fsprogs)")
    d = tmp_path_factory.mktemp("vmimage")
    img = d / "agent.img"
    subprocess.run([REPO / "contrib/vm/build-agent-image.sh", BRIG, img], check=True, capture_output=True,
                   timeout=300)
    ps = d / "ps.sh"
    ps.write_text('#!/bin/sh\necho ps-from-the-image >&2\nexec /bin/busybox ps "$@"\n')
    cmds = d / "cmds"
    cmds.write_text(f"rm /bin/ps\nwrite {ps} /bin/ps\nsif /bin/ps mode 0100755\n")
    subprocess.run(["debugfs", "-w", "-f", cmds, img], check=True, capture_output=True, timeout=60)
    return img


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_vm_image_is_the_guests_root(runtime, make_bundle, vm_env, vm_image, tmp_path, fmt):
    """vm.image: the guest boots into the disk (the initramfs hands PID 1 to
    its /bin/brig), which QEMU holds read-only; the guest's programs are the
    image's (its `ps` answers `brig ps`), the container's rootfs is still
    the bundle's."""
    img = vm_image
    if fmt == "qcow2":
        if not shutil.which("qemu-img"):
            pytest.skip("qemu-img missing (apt-get install qemu-utils)")
        img = tmp_path / "agent.qcow2"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", vm_image, img], check=True)
    b = vm_bundle(make_bundle, ["sh", "-c", "echo in-the-container; touch /up; exec sleep 1000"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]},
                           "image": {"path": str(img), "format": fmt}})
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, check=True)
    assert wait_for(lambda: (b.rootfs / "up").exists(), 60)
    state_dir = Path(runtime.root) / b.id
    console = (state_dir / "console.log").read_text(errors="replace")
    assert "brig-agent: root /dev/vda (ext4): handing over to its /bin/brig" in console, console
    res = runtime.run("ps", b.id, timeout=60, check=True)
    assert res.stderr == "ps-from-the-image\n" and "sleep 1000" in res.stdout, res
    qemu = [p for p, _ in descendants(runtime.state(b.id)["pid"]) if comm(p).startswith("qemu")]
    assert len(qemu) == 1
    held = {}
    for fd in os.listdir(f"/proc/{qemu[0]}/fd"):
        try:
            if os.readlink(f"/proc/{qemu[0]}/fd/{fd}") == str(img):
                flags = Path(f"/proc/{qemu[0]}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
                held[fd] = int(flags, 8) & os.O_ACCMODE
        except OSError:
            pass
    assert held and set(held.values()) == {os.O_RDONLY}, held
    runtime.run("delete", "-f", b.id, timeout=60, check=True)
    assert not state_dir.exists()


def test_vm_image_backing_files_are_never_opened(runtime, make_bundle, vm_env, vm_image, tmp_path):
    """QEMU opens the image as root: a qcow2 naming a backing file (here the
    good image itself) must not hand the guest that file; the guest sees an
    empty disk and says so, in one line."""
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img missing (apt-get install qemu-utils)")
    over = tmp_path / "over.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(vm_image), "-F", "raw", over], check=True)
    b = vm_bundle(make_bundle, ["true"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]},
                           "image": {"path": str(over), "format": "qcow2"}})
    res = runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, check=False)
    lines = [l for l in res.stderr.splitlines() if "level=error" in l]
    assert len(lines) == 1 and "vm.image: mount /dev/vda" in lines[0], res
    assert not (Path(runtime.root) / b.id).exists()


def test_vm_image_without_brig_is_one_clear_error(runtime, make_bundle, vm_env, vm_image, tmp_path):
    img = tmp_path / "nobrig.img"
    shutil.copy(vm_image, img)
    subprocess.run(["debugfs", "-w", "-R", "rm /bin/brig", img], check=True, capture_output=True, timeout=60)
    b = vm_bundle(make_bundle, ["true"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]},
                           "image": {"path": str(img), "format": "raw"}})
    res = runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, check=False)
    lines = [l for l in res.stderr.splitlines() if "level=error" in l]
    assert len(lines) == 1 and res.returncode == 1, res
    assert "vm.image: /bin/brig of /dev/vda (ext4): no such file or directory" in lines[0].lower(), res
    assert not (Path(runtime.root) / b.id).exists()


@pytest.fixture
def pod_netns():
    """A network namespace as CNI leaves it for a pod: eth0 (a veth whose
    peer is in a second namespace, "outside", 10.99.0.1) with 10.99.0.2/24
    and a default route, and a device that is down (as tunl0 is where the
    ipip module is loaded). Yields (pod name, outside name)."""
    tag = os.urandom(3).hex()
    pod, out = f"brigpod-{tag}", f"brigout-{tag}"
    script = f"""set -e
ip netns add {pod}; ip netns add {out}
ip -n {out} link add veth0 type veth peer name eth0 netns {pod}
ip -n {out} addr add 10.99.0.1/24 dev veth0; ip -n {out} link set veth0 up; ip -n {out} link set lo up
ip -n {pod} addr add 10.99.0.2/24 dev eth0; ip -n {pod} link set eth0 up; ip -n {pod} link set lo up
ip -n {pod} route add default via 10.99.0.1
ip -n {pod} link add brigdn0 type veth peer name brigdn1"""  # down, like tunl0: not counted
    try:
        subprocess.run(["sh", "-c", script], check=True, timeout=30)
        yield pod, out
    finally:
        for n in (pod, out):
            subprocess.run(["ip", "netns", "del", n], timeout=30, stderr=subprocess.DEVNULL)


def test_network_namespace_given_by_path_is_passed_through(runtime, make_bundle, vm_env, pod_netns):
    """A network namespace made by someone else (CNI's for a pod, podman's):
    its eth0 is joined to a tap there by a tc redirect each way, and the
    guest's NIC takes eth0's MAC, address and default route, so traffic
    flows both ways. A second VM cannot take the same namespace; the
    namespace is left as found by delete, also after a SIGKILLed shim."""
    pod, out = pod_netns

    def in_ns(ns, *args, check=True):
        return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, timeout=30,
                              check=check)
    eth0_before = in_ns(pod, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    mac = in_ns(pod, "cat", "/sys/class/net/eth0/address").stdout.strip()
    server = subprocess.Popen(["ip", "netns", "exec", out, "busybox", "nc", "-ll", "-p", "80", "-e", "echo",
                               "hello-from-outside"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        b = vm_bundle(make_bundle, ["sh", "-c", "cat /sys/class/net/eth0/address; ip route; "
                                                "nc -w 5 10.99.0.1 80; nc -ll -p 81 -e echo hello-from-the-vm"])

        def use_pod(cfg):
            for ns in cfg["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/run/netns/{pod}"
        # a config refused before anything is made never touches the namespace
        bad = vm_bundle(make_bundle, ["true"])
        bad.set_config(use_pod)
        bad.set_config(lambda cfg: cfg["mounts"].append({"destination": "/x", "type": "bind",
                                                         "source": "/nonexistent/brig-vol"}))
        res = runtime.run("create", "--bundle", bad, bad.id, timeout=60, env=vm_env, check=False)
        assert "no such file or directory" in res.stderr, res
        assert "brig-tap0" not in in_ns(pod, "ip", "-o", "link").stdout
        assert "ingress" not in in_ns(pod, "tc", "qdisc", "show", "dev", "eth0").stdout

        b.set_config(use_pod)
        runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
        got = ""
        for _ in range(120):
            got = in_ns(out, "busybox", "nc", "-w", "2", "10.99.0.2", "81", check=False).stdout
            if "hello-from-the-vm" in got:
                break
            time.sleep(0.5)
        assert "hello-from-the-vm" in got
        # (run -d's stdout, which the container keeps, is its scratch file)
        lines = "".join(p.read_text() for p in Path(runtime.scratch).glob("*.out"))
        assert mac in lines and "default via 10.99.0.1 dev eth0" in lines and "hello-from-outside" in lines, lines
        filters = in_ns(pod, "tc", "filter", "show", "dev", "eth0", "ingress").stdout
        assert "mirred" in filters or "u32" in filters, filters
        assert "brig-tap0" in in_ns(pod, "ip", "-o", "link").stdout

        # a second VM in the same namespace: one line, nothing left of it
        b2 = vm_bundle(make_bundle, ["true"])
        b2.set_config(use_pod)
        res = runtime.run("create", "--bundle", b2, b2.id, timeout=BOOT_TIMEOUT, env=vm_env, check=False)
        lines = [l for l in res.stderr.splitlines() if "level=error" in l]
        assert len(lines) == 1 and "is carried into another microVM already" in lines[0], res
        assert not (Path(runtime.root) / b2.id).exists()
        assert "hello-from-the-vm" in in_ns(out, "busybox", "nc", "-w", "2", "10.99.0.2", "81", check=False).stdout

        # the shim SIGKILLed: the tap goes with QEMU, the redirect stays until delete
        shim = runtime.state(b.id)["pid"]
        helpers = descendants(shim)
        os.kill(shim, signal.SIGKILL)
        assert wait_for(lambda: all(not proc_alive(p, t) for p, t in helpers), 20)
        assert wait_for(lambda: "brig-tap0" not in in_ns(pod, "ip", "-o", "link").stdout, 20)
        runtime.run("delete", "-f", b.id, timeout=60, check=True)
        assert in_ns(pod, "tc", "filter", "show", "dev", "eth0", "ingress").stdout == ""
        assert "ingress" not in in_ns(pod, "tc", "qdisc", "show", "dev", "eth0").stdout
        assert in_ns(pod, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout == eth0_before
    finally:
        server.kill()
        server.wait()


def host_mounts_under(path):
    """Mount points below `path` in this (the host's) mount namespace."""
    prefix = str(path) + "/"
    return [l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines()
            if l.split()[4].startswith(prefix)]


def test_bind_mounts_share_host_paths_with_the_guest(runtime, make_bundle, vm_env, tmp_path):
    """A bind's source is the host's path (never a guest file of that name):
    a host directory read and written, a host file and directory read-only
    (on the host side too: the guest's kernel cannot write them either), the
    host's /etc/hostname. The host-side binds live only in virtiofsd's own
    mount namespace and go with it."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("host-data\n")
    (vol / "sub").mkdir()
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.7 from-the-host\n")
    rodir = tmp_path / "rodir"
    rodir.mkdir()
    (rodir / "r").write_text("ro-data\n")
    b = vm_bundle(make_bundle, ["sh", "-c",
                                "cat /data/in; echo from-guest > /data/out; cat /data/sub/deep; "
                                "cat /etc/hosts; cat /host-hostname; cat /ro/r; "
                                "echo x >> /etc/hosts && echo WROTE-FILE; touch /ro/x && echo WROTE-DIR; "
                                "touch /up; while [ ! -e /data/stop ]; do sleep 0.2; done; echo done"])
    b.set_config(lambda cfg: cfg["mounts"].extend([
        {"destination": "/data", "type": "bind", "source": str(vol), "options": ["rbind", "rw"]},
        {"destination": "/etc/hosts", "type": "bind", "source": str(hosts), "options": ["bind", "ro"]},
        {"destination": "/host-hostname", "type": "bind", "source": "/etc/hostname", "options": ["ro", "bind"]},
        {"destination": "/ro", "source": str(rodir), "options": ["rbind", "ro"]}]))
    n = len(json.loads((b.path / "config.json").read_text())["mounts"])
    # a submount of the rbind source comes along
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", vol / "sub"], check=True)
    try:
        (vol / "sub" / "deep").write_text("submount\n")
        out = tmp_path / "out.txt"
        with open(out, "w") as o:
            proc = subprocess.Popen(runtime.cmd("run", "--bundle", b, b.id), stdout=o, stderr=subprocess.PIPE,
                                    text=True, env=runtime.env(vm_env))
        try:
            assert wait_for(lambda: (b.rootfs / "up").exists() or proc.poll() is not None, BOOT_TIMEOUT)
            assert proc.poll() is None, proc.stderr.read()
            state_dir = Path(runtime.root) / b.id
            assert (state_dir / "vols.sock").exists()
            # the binds are in the volumes' virtiofsd's namespace, not the host's
            assert host_mounts_under(state_dir) == []
            vfsds = [p for p, _ in descendants(runtime.state(b.id)["pid"]) if comm(p) == "virtiofsd"]
            assert len(vfsds) == 2, vfsds
            # (chroot'ed into the volumes directory, it sees its mounts from there)
            volsd = [p for p in vfsds if os.readlink(f"/proc/{p}/root") == str(state_dir / "volumes")]
            assert len(volsd) == 1, [os.readlink(f"/proc/{p}/root") for p in vfsds]
            theirs = {}
            for l in Path(f"/proc/{volsd[0]}/mountinfo").read_text().splitlines():
                f = l.split()
                if f[4] != "/":
                    theirs[f[4]] = f[5].split(",")[0]
            assert theirs == {f"/{n - 4}": "rw", f"/{n - 4}/sub": "rw", f"/{n - 3}": "ro",
                              f"/{n - 2}": "ro", f"/{n - 1}": "ro"}, theirs
            (vol / "stop").touch()
            assert proc.wait(timeout=120) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lines = out.read_text().splitlines()
        assert lines == ["host-data", "submount", "192.0.2.7 from-the-host",
                         Path("/etc/hostname").read_text().strip(), "ro-data", "done"], lines
        assert (vol / "out").read_text() == "from-guest\n"
        assert hosts.read_text() == "192.0.2.7 from-the-host\n" and not (rodir / "x").exists()
        assert not (Path(runtime.root) / b.id).exists()
    finally:
        subprocess.run(["umount", vol / "sub"], check=True)


@pytest.mark.parametrize("source,why", [
    ("/nonexistent/brig-vol", "no such file or directory"),
    ("/dev/null", "only directories and regular files can be shared with the guest")])
def test_bind_mount_the_guest_cannot_have_is_one_clear_error(runtime, make_bundle, vm_env, source, why):
    b = vm_bundle(make_bundle, ["true"])
    b.set_config(lambda cfg: cfg["mounts"].append({"destination": "/x", "type": "bind", "source": source}))
    n = len(json.loads((b.path / "config.json").read_text())["mounts"]) - 1
    res = runtime.run("create", "--bundle", b, b.id, timeout=60, env=vm_env, check=False)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if "level=error" in l]
    assert len(lines) == 1, res
    assert f"vm: mounts[{n}].source {source}: {why}" in lines[0], res
    assert not (Path(runtime.root) / b.id).exists()


def fault_build():
    env = dict(os.environ, BRIG_FAULT="list")
    res = subprocess.run([BRIG], env=env, capture_output=True, text=True, timeout=30)
    return res.returncode == 0 and "start.before-fifo" in res.stdout.split()


def test_guest_side_start_failure_fails_start(runtime, make_bundle, vm_env):
    if not fault_build():
        pytest.skip("brig built without -DBRIG_FAULT_INJECTION=ON")
    # Unknown NAME=value kernel parameters reach the guest's PID 1 as its
    # environment: the guest's `brig start` (only) fails at the named step.
    b = vm_bundle(make_bundle, ["sleep", "100"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"],
                                      "parameters": ["BRIG_FAULT=start.before-fifo:fail"]}})
    runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, check=True)
    res = runtime.run("start", b.id, timeout=60, check=False)
    assert res.returncode == 1, res
    assert res.error == "vm: in the guest: fault injected at start.before-fifo", res
    # the guest kills the container it could not start: the VM goes
    assert runtime.wait_status(b.id, "stopped", timeout=60)
    runtime.run("delete", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()


def test_start_the_guest_never_answers_stops_the_vm(runtime, make_bundle, vm_env):
    """`start` waits for the guest's answer (120 s; test builds take
    BRIG_VM_START_TIMEOUT); past it, start fails and the VM goes, so the
    process cannot start later behind the caller's back."""
    if not fault_build():
        pytest.skip("brig built without -DBRIG_FAULT_INJECTION=ON")
    b = vm_bundle(make_bundle, ["sh", "-c", "touch /ran; sleep 100"])
    runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    shim = runtime.state(b.id)["pid"]
    helpers = descendants(shim)
    qemu = [p for p, _ in helpers if comm(p).startswith("qemu")]
    assert len(qemu) == 1, helpers
    os.kill(qemu[0], 19)  # SIGSTOP: the guest hears nothing
    try:
        res = runtime.run("start", b.id, timeout=60, check=False, env={"BRIG_VM_START_TIMEOUT": "3"})
        assert res.returncode == 1, res
        assert res.error == "vm: the guest did not answer start within 3 s", res
        assert runtime.status(b.id) == "stopped"
        assert wait_for(lambda: all(not proc_alive(p, t) for p, t in helpers), 20), \
            [(p, comm(p)) for p, t in helpers if proc_alive(p, t)]
    finally:
        if proc_alive(*[(p, t) for p, t in helpers if p == qemu[0]][0]):
            os.kill(qemu[0], 18)
    time.sleep(2)
    assert not (b.rootfs / "ran").exists()
    runtime.run("delete", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()


def test_agent_of_another_protocol_is_one_clear_error(runtime, make_bundle, vm_env):
    """The initramfs holds a brig of its own: a host brig and a guest agent
    that speak different protocol versions refuse each other at create with
    one line saying what to rebuild (a guest older than the ack frame says
    so from the host side: seen with a kept initramfs)."""
    if not fault_build():
        pytest.skip("brig built without -DBRIG_FAULT_INJECTION=ON")
    ours = PROTOCOL
    for env, params in (({"BRIG_VM_PROTOCOL": "1"}, []), ({}, [f"BRIG_VM_PROTOCOL={ours + 1}"])):
        b = vm_bundle(make_bundle, ["true"],
                      spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"],
                                          "parameters": params}})
        res = runtime.run("create", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=env, check=False)
        host, guest = (1, ours) if env else (ours, ours + 1)
        errors = [l for l in res.stderr.splitlines() if "level=error" in l]
        assert len(errors) == 1 and res.returncode == 1, res
        assert (f"vm: the host's brig speaks protocol {host}, this guest agent {guest}: rebuild the initramfs "
                "with the host's brig (contrib/vm/build-agent-initramfs.sh)") in errors[0], res
        assert not (Path(runtime.root) / b.id).exists()


def test_user_namespace_without_qemus_uid_keeps_qemu_root(runtime, make_bundle, vm_env):
    """In a user namespace that maps only root, QEMU cannot switch to its
    own uid: it stays root there, with a warning, instead of every VM failing."""
    b = vm_bundle(make_bundle, ["echo", "hi from a user namespace"])
    runtime.track(b.id)
    res = subprocess.run(["unshare", "--user", "--map-root-user", "--", *runtime.cmd("run", "--bundle", b, b.id)],
                         capture_output=True, text=True, timeout=BOOT_TIMEOUT, env=runtime.env(vm_env))
    assert res.returncode == 0 and res.stdout == "hi from a user namespace\n", res
    warns = [l for l in res.stderr.splitlines() if "are not mapped in this user namespace" in l]
    assert len(warns) == 1 and "QEMU keeps running as root" in warns[0], res.stderr
    assert not (Path(runtime.root) / b.id).exists()


@pytest.mark.skipif("detect_leaks" in os.environ.get("ASAN_OPTIONS", ""),
                    reason="sanitizer build: the ASan-instrumented brig never runs in a guest sized to "
                           "a 64 MiB limit (console: '(error -26)', then busybox init); the "
                           "plain build passes; test/README.md, Sanitizers")
def test_memory_limit_sizes_the_guest_and_applies_inside(runtime, make_bundle, vm_env):
    b = vm_bundle(make_bundle, ["sh", "-c", "cat /sys/fs/cgroup/memory.max; head -n1 /proc/meminfo"])
    b.set_config(lambda cfg: cfg["linux"].setdefault("resources", {}).update(
        {"memory": {"limit": 64 << 20}}))
    res = runtime.run("run", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0] == str(64 << 20), res  # the guest's cgroup v2
    total_kib = int(lines[1].split()[1])
    assert 100 << 10 < total_kib <= (64 + 96) << 10, res  # limit + overhead, not 256 MiB


def test_update_and_events_act_inside_the_guest(runtime, make_bundle, vm_env):
    """The container's cgroup is the guest's: `update` and `events` go to the
    guest's brig (before, both were refused); a value the guest's kernel
    refuses is one error line naming the guest."""
    b = vm_bundle(make_bundle, ["sleep", "1000"])
    runtime.run("run", "-d", "--bundle", b, b.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    runtime.run("update", "--memory", "64M", "--pids-limit", "42", b.id, timeout=60, check=True)
    res = runtime.run("exec", b.id, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", timeout=60,
                      check=True)
    assert res.stdout.split() == [str(64 << 20), "42"], res
    # an argument that is not UTF-8 reaches the guest as U+FFFD, as runc's
    # JSON of a process writes it (the request's JSON writer threw on it)
    res = runtime.run("exec", b.id, "echo", os.fsdecode(b"a\xffb"), timeout=60, check=True)
    assert res.stdout == "a\ufffdb\n", res
    # the resources file, merged into the state's config as for namespaces
    res = runtime.run("update", "--resources", "-", b.id, input=json.dumps({"pids": {"limit": 77}}), timeout=60,
                      check=True)
    res = runtime.run("exec", b.id, "cat", "/sys/fs/cgroup/pids.max", timeout=60, check=True)
    assert res.stdout.strip() == "77", res
    saved = json.loads((Path(runtime.root) / b.id / "state.json").read_text())
    assert "77" in json.dumps(saved) and str(64 << 20) in json.dumps(saved)
    # checked on the host first: one line, nothing sent
    res = runtime.run("update", "--resources", "-", b.id, input='{"memory": {"limit": "x"}}', timeout=60)
    assert res.returncode == 1 and "memory.limit" in res.error, res
    # refused by the guest's kernel (the guest has one CPU): its reason, once
    res = runtime.run("update", "--cpuset-cpus", "7", b.id, timeout=60)
    assert res.returncode == 1 and res.error.startswith("update: in the guest: "), res
    # stats of the container's cgroup in the guest
    res = runtime.run("events", "--stats", b.id, timeout=60, check=True)
    ev = json.loads(res.stdout)
    assert ev["type"] == "stats" and ev["id"] == b.id, ev
    assert ev["data"]["pids"]["current"] >= 1 and ev["data"]["pids"]["limit"] == 77, ev
    assert ev["data"]["memory"]["usage"]["limit"] == 64 << 20, ev
    # a stream of events ends with the VM
    p = runtime.popen("events", "--interval", "300ms", b.id)
    time.sleep(2)
    runtime.run("kill", b.id, "KILL", check=True)
    code = p.wait(timeout=60)
    p.errfile.seek(0)
    assert code == 0, p.errfile.read()
    p.outfile.seek(0)
    lines = [json.loads(l) for l in p.outfile.read().splitlines()]
    assert lines and all(l["type"] == "stats" for l in lines), lines
    runtime.run("delete", b.id, timeout=60, check=True)


def test_foreground_run_forwards_signals_inside(runtime, make_bundle, vm_env):
    b = vm_bundle(make_bundle, ["sh", "-c", "trap 'echo got TERM; exit 4' TERM; touch /up; "
                                            "while true; do sleep 1; done"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]}})
    p = runtime.popen("run", "--bundle", b, b.id)
    try:
        up = wait_for(lambda: (b.rootfs / "up").exists() or p.poll() is not None, BOOT_TIMEOUT)
        p.errfile.seek(0)
        assert up and p.poll() is None, f"the guest never ran the process: {p.errfile.read()}"
        p.send_signal(15)
        assert p.wait(timeout=60) == 4
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p.outfile.seek(0)
    assert "got TERM" in p.outfile.read()


class Console:
    """A --console-socket listener that keeps the pty master it is sent."""

    def __init__(self, path):
        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.srv.settimeout(BOOT_TIMEOUT)
        self.master = None
        self.seen = b""

    def take(self):
        conn, _ = self.srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        self.master = fds[0]
        self.srv.close()

    def write(self, text):
        os.write(self.master, text.encode())

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, text, timeout=60):
        end = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"never saw {text!r} on the terminal: {self.seen!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"terminal closed before {text!r}: {self.seen!r}"
                self.seen += chunk
        return self.seen.decode(errors="replace")

    def until(self, line, text, timeout=60):
        """Types `line` again until `text` shows (a resize travels async)."""
        end = time.monotonic() + timeout
        while True:
            self.write(line)
            try:
                return self.expect(text, timeout=1)
            except AssertionError:
                if time.monotonic() > end:
                    raise

    def close(self):
        if self.master is not None:
            os.close(self.master)
        self.srv.close()


def test_terminal_through_console_sockets(runtime, make_bundle, vm_env, tmp_path):
    """process.terminal: a pty inside the guest; brig's host pty master goes
    over the console socket; typing, output and resizes cross both ways. Then
    exec -t into the same container through a second console socket."""
    b = vm_bundle(make_bundle, ["sh"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]}})

    def cfg(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": 30, "width": 100}
        c["process"]["env"] += ["PS1=ctr# ", "PATH=/bin"]
    b.set_config(cfg)
    con = Console(tmp_path / "console.sock")
    econ = Console(tmp_path / "exec-console.sock")
    dcon = Console(tmp_path / "dexec-console.sock")
    try:
        runtime.run("create", "--console-socket", con.path, "--bundle", b, b.id, timeout=BOOT_TIMEOUT,
                    check=True)
        con.take()
        runtime.run("start", b.id, timeout=60, check=True)
        con.expect("ctr# ")
        con.write("echo typed-$((6*7)); tty; busybox stty size\n")
        t = con.expect("30 100")
        assert "typed-42" in t and "/dev/pts/0" in t, t
        con.resize(40, 120)  # the shim looks every 200 ms
        con.until("busybox stty size\n", "40 120")

        p = runtime.popen("exec", "-t", "--console-socket", econ.path, b.id, "sh", "-c",
                          "while read x; do [ $x = q ] && exit 3; echo got-$x; busybox stty size; done")
        econ.take()
        econ.resize(25, 90)
        t = econ.until("line\n", "25 90")
        assert "got-line" in t, t
        econ.write("q\n")
        assert p.wait(timeout=60) == 3
        # exec -d -t: back once the process runs; the terminal stays with
        # the console socket's holder, through a host relay (the pid file's)
        pidf = tmp_path / "dexec.pid"
        runtime.run("exec", "-d", "-t", "--pid-file", pidf, "--console-socket", dcon.path, b.id, "sh", "-c",
                    "read x; echo detached-got-$x; busybox stty size; exit 4", timeout=60, check=True)
        dcon.take()
        relay = int(pidf.read_text())
        relay_start = proc_starttime(relay)
        dcon.resize(33, 77)
        time.sleep(0.5)
        dcon.write("hi\n")
        t = dcon.expect("33 77")
        assert "detached-got-hi" in t, t
        assert wait_for(lambda: not proc_alive(relay, relay_start), 30)
        con.write("exit 7\n")
        assert runtime.wait_status(b.id, "stopped", timeout=60)
    finally:
        con.close()
        econ.close()
        dcon.close()
    runtime.run("delete", b.id, timeout=60, check=True)


def test_network_reaches_a_namespace_container_on_the_same_bridge(runtime, make_bundle, vm_env, tmp_path):
    """io.brig.network: the VM gets a virtio-net NIC on a tap on the network's
    bridge with an address from the same lease store as namespace containers;
    it reaches one over TCP and ICMP; delete removes the tap and the lease.
    Everything runs in a throwaway network namespace (as test_network.py)."""
    from test_network import NFT, NetEnv, SERVER, ip_of, nc, record
    net = NetEnv(tmp_path)
    runtime.prefix = ["nsenter", f"--net={net.path}"]
    runtime.extra_env = {"BRIG_CONFIG_DIR": str(net.config), "BRIG_NETWORK_STATE_DIR": str(net.state)}
    try:
        a = make_bundle()
        a.set_config(lambda c: (c["process"].update(args=SERVER),
                                c.setdefault("annotations", {}).update({"io.brig.network": "brig"})))
        runtime.run("run", "-d", "--bundle", a, a.id, check=True)
        v = vm_bundle(make_bundle, SERVER,
                      spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]}})
        ann = {"io.brig.network": "brig"}
        if NFT:
            ann["io.brig.network.ports"] = "8080:80/tcp"
        v.set_config(lambda c: c.setdefault("annotations", {}).update(ann))
        runtime.run("run", "-d", "--bundle", v, v.id, timeout=BOOT_TIMEOUT, check=True)
        ipa, ipv = ip_of(runtime, a.id), ip_of(runtime, v.id)
        tap = record(runtime, v.id)["hostDevice"]
        assert ipa != ipv and ipv.startswith("10.87."), (ipa, ipv)
        assert tap in net.links()
        assert len(net.leases()) == 2
        # the guest's eth0 has the lease; the container shares the guest's netns
        r = runtime.run("exec", v.id, "/bin/busybox", "ip", "-o", "addr", "show", "eth0", timeout=60, check=True)
        assert f"{ipv}/16" in r.stdout, r
        r = runtime.run("exec", v.id, "sh", "-c", f"nc -w 5 {ipa} 80", timeout=60, check=True)
        assert "hello" in r.stdout, r
        r = runtime.run("exec", "--cap", "CAP_NET_RAW", v.id, "/bin/busybox", "ping", "-c", "1", "-W", "5", ipa,
                        timeout=60, check=True)
        assert "1 packets received" in r.stdout, r
        # and the host side (the test netns) reaches the VM, directly and
        # through the published port on the bridge's address
        assert net.sh("busybox", "ping", "-c", "1", "-W", "5", ipv, check=False).returncode == 0
        assert "hello" in nc(net, ipv)
        if NFT:
            assert "hello" in nc(net, "10.87.0.1", 8080)
            assert ipv in json.dumps(net.nft_elements())
            # the tap is guarded like a veth: the guest's own MAC and address
            # only; an address the guest gives itself gets nowhere
            mac = runtime.run("exec", v.id, "cat", "/sys/class/net/eth0/address", timeout=60, check=True).stdout.strip()
            guard = json.dumps(net.nft_elements("bridge"))
            assert tap in guard and mac in guard and ipv in guard, guard
            r = runtime.run("exec", "--cap", "CAP_NET_ADMIN", "--cap", "CAP_NET_RAW", v.id, "sh", "-c",
                            "ip addr add 10.87.0.250/16 dev eth0 && "
                            f"/bin/busybox ping -c 2 -W 2 -I 10.87.0.250 {ipa}; ip addr del 10.87.0.250/16 dev eth0",
                            timeout=60)
            assert "0 packets received" in r.stdout, r
        runtime.run("delete", "-f", v.id, timeout=60, check=True)
        assert tap not in net.links()
        assert len(net.leases()) == 1
        runtime.run("delete", "-f", a.id, check=True)
        net.assert_clean(runtime)
    finally:
        for cid in list(runtime.ids):
            runtime.run("delete", "-f", cid, timeout=60)
        net.close()
        runtime.prefix, runtime.extra_env = [], {}


def test_foreground_run_and_exec_on_the_callers_terminal(runtime, make_bundle, vm_env):
    """No console socket: `run` and `exec -t` in the foreground relay the
    caller's own terminal (here a pty pair), its size included."""
    import pty
    b = vm_bundle(make_bundle, ["sh"],
                  spec_vm={"kernel": {"path": vm_env["BRIG_VM_KERNEL"], "initrd": vm_env["BRIG_VM_INITRD"]}})

    def cfg(c):
        c["process"]["terminal"] = True
        c["process"]["env"] += ["PS1=ctr# ", "PATH=/bin"]
    b.set_config(cfg)
    terms, procs = [], []

    def attach(*args):
        m, s = pty.openpty()
        fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        argv, _, _ = runtime._prepare(args, ())
        p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, env=runtime.env(), start_new_session=True)
        os.close(s)
        t = Console.__new__(Console)
        t.master, t.seen, t.srv = m, b"", socket.socket()
        terms.append(t)
        procs.append(p)
        return t, p
    try:
        run, rp = attach("run", "--bundle", b, b.id)
        run.expect("ctr# ", timeout=BOOT_TIMEOUT)
        run.write("busybox stty size\n")
        run.expect("33 111")
        ex, ep = attach("exec", "-t", b.id, "sh", "-c", "busybox stty size; read x; echo got-$x; exit 4")
        ex.expect("33 111")
        ex.write("word\n")
        ex.expect("got-word")
        assert ep.wait(timeout=60) == 4
        run.write("exit 6\n")
        assert rp.wait(timeout=60) == 6
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for t in terms:
            t.close()


def pump(proc, data, timeout):
    """Writes `data` to proc's stdin while reading its stdout, both at once;
    returns (bytes read, exit status), or fails on a stall."""
    import threading
    got = bytearray()

    def writer():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while True:
        left = end - time.monotonic()
        if left <= 0:
            proc.kill()
            pytest.fail(f"stalled: {len(got)} of {len(data)} bytes came back in {timeout}s")
        if select.select([fd], [], [], min(left, 1))[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            got += chunk
    t.join(5)
    return bytes(got), proc.wait(timeout=60)


def test_stdio_both_ways_at_once_never_deadlocks(runtime, make_bundle, vm_env):
    """The control channel carries stdin one way and stdout the other: with
    `cat` echoing, both ends write at once. Neither may block the other
    (the shim and the agent queue their frames and keep reading), for the
    container's stdio and for an exec's. 4 MiB each way is four flow-control
    windows: a lost acknowledgement stalls it. (Before the queues, under TCG
    the guest was too slow to fill both directions at once: this test did not
    catch that deadlock; the queues remove it by construction.)"""
    b = vm_bundle(make_bundle, ["cat"])
    runtime.track(b.id)
    data = os.urandom(1 << 20) * 4
    p = subprocess.Popen(runtime.cmd("run", "--bundle", b, b.id), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=runtime.env(vm_env), start_new_session=True)
    got, rc = pump(p, data, BOOT_TIMEOUT)
    assert rc == 0 and got == data, (rc, len(got))
    # EOF comes while a window's worth still waits for a process that is not
    # reading yet: it reaches the process after all of it
    b3 = vm_bundle(make_bundle, ["sh", "-c", "sleep 3; wc -c"])
    runtime.track(b3.id)
    p = subprocess.Popen(runtime.cmd("run", "--bundle", b3, b3.id), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=runtime.env(vm_env), start_new_session=True)
    got, rc = pump(p, data, BOOT_TIMEOUT)
    assert rc == 0 and got.split() == [str(len(data)).encode()], (rc, got)
    # the same through `brig exec`, in a running container
    b2 = vm_bundle(make_bundle, ["sleep", "1000"])
    runtime.run("run", "-d", "--bundle", b2, b2.id, timeout=BOOT_TIMEOUT, env=vm_env, check=True)
    # the process writes its own stream while it reads ours
    p = subprocess.Popen(runtime.cmd("exec", b2.id, "sh", "-c", "cat >/dev/null & head -c 4194304 /dev/zero; wait"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=runtime.env(), start_new_session=True)
    got, rc = pump(p, data, 120)
    assert rc == 0 and got == bytes(4 << 20), (rc, len(got))
    runtime.run("delete", "-f", b2.id, timeout=60, check=True)


def test_stdin_nobody_reads_is_held_back_on_the_host(runtime, make_bundle, vm_env):
    """Input a process does not read waits in the caller's pipe, not in the
    guest's memory: at most a window's worth crosses into the VM, for an
    exec and for the container's own stdin; signals still get through."""
    b = vm_bundle(make_bundle, ["sh", "-c", "trap 'exit 9' TERM; touch /up; while :; do sleep 1; done"])
    runtime.track(b.id)
    run = subprocess.Popen(runtime.cmd("run", "--bundle", b, b.id), stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runtime.env(vm_env),
                           start_new_session=True)
    ex = None
    try:
        assert wait_for(lambda: (b.rootfs / "up").exists() or run.poll() is not None, BOOT_TIMEOUT)
        assert run.poll() is None
        ex = subprocess.Popen(runtime.cmd("exec", b.id, "sleep", "1000"), stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=runtime.env(),
                              start_new_session=True)
        time.sleep(2)
        for proc in (run, ex):
            os.set_blocking(proc.stdin.fileno(), False)
        chunk = b"y" * 65536

        def feed(seconds):
            taken = {run.pid: 0, ex.pid: 0}
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                moved = False
                for proc in (run, ex):
                    try:
                        taken[proc.pid] += os.write(proc.stdin.fileno(), chunk)
                        moved = True
                    except BlockingIOError:
                        pass
                if not moved:
                    time.sleep(0.2)
            return taken
        # A window (1 MiB) crosses, plus what the pipes, sockets and virtio
        # queues on the way hold; then nothing more, however long we push.
        first = feed(10)
        more = feed(6)
        print(f"stdin taken while nobody reads it: {first} B, then {more} B")
        for pid in first:
            assert 1 << 20 <= first[pid] < 4 << 20 and more[pid] == 0, (first, more)
        ex.send_signal(15)
        assert ex.wait(timeout=60) == 143
        run.send_signal(15)
        assert run.wait(timeout=60) == 9
    finally:
        for proc in (run, ex):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_kill_works_while_nobody_reads_the_output(runtime, make_bundle, vm_env, tmp_path):
    """A container flooding a stdout nobody reads: the shim does not block
    on it (so `kill` still reaches the guest) and the guest holds the rest."""
    # PID 1 traps TERM; the flood is its child, blocked writing once the
    # window is full (as it would be on a full pipe with runc)
    b = vm_bundle(make_bundle, ["sh", "-c", "trap 'exit 9' TERM; (while :; do echo flood-flood-flood; done) & "
                                            "touch /up; while :; do sleep 1; done"])
    runtime.track(b.id)
    r, w = os.pipe()
    try:
        p = subprocess.Popen(runtime.cmd("run", "-d", "--bundle", b, b.id), stdin=subprocess.DEVNULL, stdout=w,
                             stderr=subprocess.DEVNULL, env=runtime.env(vm_env), start_new_session=True)
        assert p.wait(timeout=BOOT_TIMEOUT) == 0
        os.close(w)
        w = -1
        assert wait_for(lambda: (b.rootfs / "up").exists(), 60)
        time.sleep(3)  # the pipe is full by now
        shim = runtime.state(b.id)["pid"]
        assert Path(f"/proc/{shim}/wchan").read_text() != "pipe_write"
        runtime.run("kill", b.id, "TERM", check=True)
        assert runtime.wait_status(b.id, "stopped", timeout=60)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    runtime.run("delete", b.id, timeout=60, check=True)
    assert not (Path(runtime.root) / b.id).exists()
