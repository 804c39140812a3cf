"""podman + conmon drive the runtime under test (podman --runtime BRIG)."""

import os
import subprocess
import time
from pathlib import Path

from conftest import (BRIG, CG_PARENT, IS_RUNC, PODMAN_IMAGE, cgroup_file, new_name, proc_cgroup,
                      run, wait_for)

IMG = PODMAN_IMAGE


def test_run_stdout_and_exit_code(podman):
    r = podman("run", "--rm", IMG, "sh", "-c", "echo hello from $(cat /proc/1/comm); exit 7",
               check=False)
    assert r.returncode == 7, r.stderr
    assert r.stdout == "hello from sh\n"


def test_run_stdin(podman):
    r = podman("run", "--rm", "-i", IMG, "sh", "-c", "wc -c; cat /dev/null", input="x" * 1000)
    assert r.stdout.strip() == "1000"


def test_run_user(podman):
    r = podman("run", "--rm", "--user", "1000:1000", IMG, "id")
    assert r.stdout.startswith("uid=1000(user) gid=1000(user)"), r.stdout


def test_run_missing_binary_error(podman):
    """podman gives the runtime --log FILE --log-format json and shows the
    error it reads back from that json log."""
    r = podman("run", "--rm", IMG, "/no/such/binary", check=False)
    assert r.returncode == 127, r
    rt = os.path.basename(BRIG)
    assert f'{rt}: {rt} create failed: unable to start container process: exec: ' \
        f'"/no/such/binary": stat /no/such/binary: no such file or directory: ' \
        f'OCI runtime attempted to invoke a command that was not found' in r.stderr, r.stderr


def test_detached_exec_ps_top_kill_rm(podman):
    name = new_name()
    podman("run", "-d", "--name", name, IMG, "sh", "-c",
           "trap 'echo got-usr1 >/tmp/sig' USR1; while true; do sleep 0.1; done")
    try:
        assert podman.inspect(name, "{{.State.Status}}") == "running"
        st = podman.state(name)
        assert (st["status"], st["pid"]) == ("running", int(podman.inspect(name, "{{.State.Pid}}")))
        r = podman("exec", name, "sh", "-c", "echo in-exec; id -u")
        assert r.stdout == "in-exec\n0\n"
        r = podman("exec", name, "sh", "-c", "exit 42", check=False)
        assert r.returncode == 42
        r = podman("exec", "--user", "1000", name, "id", "-u")
        assert r.stdout.strip() == "1000"
        podman("exec", "-d", name, "sh", "-c", "echo detached > /tmp/d")
        assert wait_for(lambda: podman("exec", name, "cat", "/tmp/d", check=False).stdout
                        == "detached\n", what="exec -d")
        r = podman("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Status}}")
        assert r.stdout.startswith(f"{name} Up"), r.stdout
        r = podman("top", name, "pid", "args")
        assert "while true" in r.stdout or "sh -c" in r.stdout, r.stdout
        podman("kill", "-s", "USR1", name)
        r = wait_for(lambda: podman("exec", name, "cat", "/tmp/sig", check=False).stdout,
                     what="USR1 trap")
        assert r == "got-usr1\n"
        podman("kill", "-s", "KILL", name)
        wait_for(lambda: podman.inspect(name, "{{.State.Status}}") in ("exited", "stopped"), what="exited")
        assert podman.inspect(name, "{{.State.ExitCode}}") == "137"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
    assert podman("container", "exists", name, check=False).returncode == 1


def test_exec_tty_interactive(podman):
    name = new_name()
    podman("run", "-d", "--name", name, IMG, "sleep", "1000")
    try:
        # podman exec -it under script(1): a real terminal on our side.
        cmd = " ".join(podman.cmd("exec", "-it", name, "sh", "-c", "tty; stty size; exit 5"))
        r = subprocess.run(["script", "-qec", f"stty rows 30 cols 100; {cmd}", "/dev/null"],
                           capture_output=True, text=True, timeout=60, env=podman.env)
        assert r.returncode == 5, r
        out = r.stdout.replace("\r", "")
        assert "/dev/pts/0" in out, out
        assert "30 100" in out, out
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_pause_unpause_freezer(podman):
    name = new_name()
    podman("run", "-d", "--name", name, IMG, "sleep", "1000")
    try:
        pid = int(podman.inspect(name, "{{.State.Pid}}"))
        cg = proc_cgroup(pid, "freezer")
        assert cg.startswith(f"/{CG_PARENT}/"), cg
        podman("pause", name)
        assert podman.inspect(name, "{{.State.Status}}") == "paused"
        assert cgroup_file("freezer", cg, "freezer.state") == "FROZEN"
        assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "DS"
        podman("unpause", name)
        assert podman.inspect(name, "{{.State.Status}}") == "running"
        assert cgroup_file("freezer", cg, "freezer.state") == "THAWED"
        assert podman("exec", name, "echo", "ok").stdout == "ok\n"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_resources_and_update(podman):
    name = new_name()
    podman("run", "-d", "--name", name, "--memory", "64m", "--cpus", "0.5",
           "--pids-limit", "77", IMG, "sleep", "1000")
    try:
        pid = int(podman.inspect(name, "{{.State.Pid}}"))
        mem = proc_cgroup(pid, "memory")
        assert mem.startswith(f"/{CG_PARENT}/"), mem
        assert cgroup_file("memory", mem, "memory.limit_in_bytes") == str(64 << 20)
        cpu = proc_cgroup(pid, "cpu")
        quota = int(cgroup_file("cpu", cpu, "cpu.cfs_quota_us"))
        period = int(cgroup_file("cpu", cpu, "cpu.cfs_period_us"))
        assert quota * 2 == period, (quota, period)
        assert cgroup_file("pids", proc_cgroup(pid, "pids"), "pids.max") == "77"
        # Inside: the container sees its own limits through its cgroup ns/mounts.
        r = podman("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert r.stdout.strip() == str(64 << 20)
        r = podman("exec", name, "cat", "/sys/fs/cgroup/pids/pids.max",
                   "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        assert r.stdout.split() == ["77", str(quota), str(period)]
        podman("update", "--memory", "96m", name)
        assert cgroup_file("memory", mem, "memory.limit_in_bytes") == str(96 << 20)
        r = podman("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert r.stdout.strip() == str(96 << 20)
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_stop_is_graceful(podman):
    name = new_name()
    podman("run", "-d", "--name", name, IMG, "sh", "-c",
           "trap 'echo bye; exit 3' TERM; echo ready; while true; do sleep 0.1; done")
    try:
        wait_for(lambda: "ready" in podman("logs", name).stdout, what="ready")
        t = time.monotonic()
        podman("stop", "-t", "20", name)
        assert time.monotonic() - t < 10, "stop waited for the timeout: SIGTERM not delivered"
        assert podman.inspect(name, "{{.State.ExitCode}}") == "3"
        assert podman("logs", name).stdout == "ready\nbye\n"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_stop_escalates_to_kill(podman):
    """A process that ignores SIGTERM: podman stop -t 1 then sends SIGKILL."""
    name = new_name()
    podman("run", "-d", "--name", name, IMG, "sh", "-c",
           "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    try:
        wait_for(lambda: "ready" in podman("logs", name).stdout, what="ready")
        podman("stop", "-t", "1", name)
        assert podman.inspect(name, "{{.State.ExitCode}}") == "137"
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_network_ns_path(podman, session):
    ns = new_name("bc")  # "bc<session>-NNN": the session's leak check knows it
    run(["ip", "netns", "add", ns])
    try:
        run(["ip", "-n", ns, "link", "add", "brigveth0", "type", "veth", "peer", "name", "brigveth1"])
        r = podman("run", "--rm", "--network", f"ns:/run/netns/{ns}", IMG,
                   "sh", "-c", "cat /proc/net/dev; readlink /proc/self/ns/net")
        assert "brigveth0" in r.stdout and "brigveth1" in r.stdout
        ino = os.stat(f"/run/netns/{ns}").st_ino
        assert f"net:[{ino}]" in r.stdout
    finally:
        run(["ip", "netns", "del", ns], check=False)


def _tmux(*args, check=True):
    return run(["tmux", *args], check=check, timeout=20)


def test_run_interactive_terminal(podman, session):
    """podman run -it in a real terminal (tmux): typing, stty size, resize, exit code."""
    sock = str(session.base / "tmux.sock")
    name = new_name()
    envs = " ".join(f"{k}={v}" for k, v in podman.env.items()
                    if k.startswith("CONTAINERS_"))
    cmd = "env " + envs + " " + " ".join(podman.cmd("run", "-it", "--rm", "--name", name, IMG, "sh")) \
        + f"; echo EXIT=$? > {session.base}/tmux-exit; sleep 60"
    _tmux("-S", sock, "new-session", "-d", "-x", "90", "-y", "25", "-s", "t", cmd)
    try:
        def screen():
            return _tmux("-S", sock, "capture-pane", "-p", "-t", "t").stdout

        def type_(text):
            _tmux("-S", sock, "send-keys", "-t", "t", "-l", text)
            _tmux("-S", sock, "send-keys", "-t", "t", "Enter")

        wait_for(lambda: "#" in screen(), timeout=30, what="shell prompt")
        type_("echo typed-$((6*7))")
        wait_for(lambda: "typed-42" in screen(), what="typed output")
        type_("stty size")
        wait_for(lambda: "25 90" in screen(), what=f"stty size 25 90:\n{screen()}")
        _tmux("-S", sock, "resize-window", "-t", "t", "-x", "70", "-y", "20")
        time.sleep(0.3)
        type_("clear; stty size")
        wait_for(lambda: "20 70" in screen(), what=f"resized stty size:\n{screen()}")
        type_("exit 9")
        exitf = session.base / "tmux-exit"
        wait_for(exitf.exists, timeout=30, what="podman exit")
        assert exitf.read_text().strip() == "EXIT=9"
    finally:
        _tmux("-S", sock, "kill-server", check=False)
        podman("rm", "-f", "-t", "0", name, check=False)


def _vm_files(session):
    """The microVM backend's kernel and initramfs (as test_vm.py makes them),
    or a skip saying what is missing."""
    import pytest
    for path in ("/usr/bin/qemu-system-x86_64", "/usr/lib/qemu/virtiofsd"):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} missing (apt-get install qemu-system-x86)")
    repo = Path(__file__).resolve().parents[2]
    cache = os.environ.get("BRIG_VM_CACHE") or os.path.join(os.path.dirname(BRIG), "vm-cache")
    r = run([repo / "contrib/vm/fetch-kernel.sh", cache], timeout=600, check=False)
    if r.returncode != 0:
        pytest.skip(f"no guest kernel: {r.stderr.strip()}")
    kdir = r.stdout.strip().splitlines()[-1]
    initrd = session.base / "vm-initrd.img"
    if not initrd.exists():
        run([repo / "contrib/vm/build-agent-initramfs.sh", kdir, BRIG, initrd], timeout=300)
    return {"BRIG_VM_KERNEL": os.path.join(kdir, "vmlinuz"), "BRIG_VM_INITRD": str(initrd)}


def test_microvm_container_in_a_cni_like_namespace(podman, session):
    """podman with `--annotation io.brig.runtime=vm` and a network namespace
    made beforehand (as CNI makes a pod's): the container runs in a microVM
    whose NIC carries the namespace's eth0 (a ping from outside reaches the
    guest), podman's bind mounts (/etc/hostname) are the host's files, and
    `podman exec` -- conmon running `exec --detach --pid-file` and reaping
    the pid -- gets the output and exit code."""
    import pytest
    if IS_RUNC:
        pytest.skip("the microVM backend is brig's own")
    vm = _vm_files(session)
    ns, out = new_name("bc"), new_name("bc")  # the session's leak check knows "bc<session>-NNN"
    name = new_name()
    run(["ip", "netns", "add", ns])
    run(["ip", "netns", "add", out])
    try:
        for cmd in (f"ip -n {out} link add veth0 type veth peer name eth0 netns {ns}",
                    f"ip -n {out} addr add 10.98.0.1/24 dev veth0", f"ip -n {out} link set veth0 up",
                    f"ip -n {ns} addr add 10.98.0.2/24 dev eth0", f"ip -n {ns} link set eth0 up",
                    f"ip -n {ns} link set lo up", f"ip -n {ns} route add default via 10.98.0.1"):
            run(cmd.split())
        mac = run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/address"]).stdout.strip()
        # podman gives conmon and the runtime an environment of its own
        # making: a wrapper (named brig, for podman's json log support) sets
        # the kernel and initramfs, as an admin would without the defaults.
        wrap = session.base / "vmwrap" / "brig"
        wrap.parent.mkdir(exist_ok=True)
        wrap.write_text("#!/bin/sh\n" + "".join(f"export {k}={v}\n" for k, v in vm.items())
                        + f'exec {BRIG} "$@"\n')
        wrap.chmod(0o755)
        env = podman.env

        def cmd(*args):
            a = podman.cmd(*args)
            a[a.index(BRIG)] = str(wrap)
            return a
        run(cmd("run", "-d", "--name", name, "--annotation", "io.brig.runtime=vm",
                       "--network", f"ns:/run/netns/{ns}", IMG, "sleep", "1000"), env=env, timeout=300)
        st = podman.state(name)
        assert st["status"] == "running" and st["annotations"]["io.brig.runtime"] == "vm"
        r = run(cmd("exec", name, "sh", "-c", "cat /sys/class/net/eth0/address; ip -4 -o addr show eth0; "
                           "cat /etc/hostname; echo; uname -r"), env=env, timeout=120)
        lines = r.stdout.splitlines()
        assert lines[0] == mac and "10.98.0.2/24" in lines[1], r.stdout
        assert lines[2] == podman.inspect(name, "{{.Config.Hostname}}"), r.stdout
        assert lines[3] != os.uname().release, r.stdout  # the guest's kernel
        r = run(cmd("exec", name, "sh", "-c", "echo to-err >&2; exit 42"), env=env, timeout=120,
                check=False)
        assert r.returncode == 42 and "to-err" in r.stderr, r
        assert wait_for(lambda: run(["ip", "netns", "exec", out, "busybox", "ping", "-c", "1", "-W", "2", "10.98.0.2"],
                                    check=False).returncode == 0, timeout=60, what="ping into the guest")
        run(cmd("rm", "-f", "-t", "0", name), env=env, timeout=120)
        assert "brig-tap0" not in run(["ip", "-n", ns, "-o", "link"]).stdout
        assert "ingress" not in run(["tc", "-n", ns, "qdisc", "show", "dev", "eth0"]).stdout
    finally:
        run(cmd("rm", "-f", "-t", "0", name), env=podman.env, check=False, timeout=120)
        for n in (ns, out):
            run(["ip", "netns", "del", n], check=False)
