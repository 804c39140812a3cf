"""exec: a second process inside a running container (issue #4)."""

import json
import os
import socket
import subprocess

import pytest

from conftest import IS_RUNC, NAME, ns_link, wait_for


def running(runtime, bundle, **cfg):
    bundle.config(args=["sleep", "300"], **cfg)
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    return runtime.state(bundle.id)["pid"]


def test_exec_output_and_exit_code(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert res.returncode == 7, res
    assert res.stdout == "out\n"
    assert "err\n" in res.stderr


@pytest.mark.skipif(IS_RUNC or "detect_leaks" in os.environ.get("ASAN_OPTIONS", ""),
                    reason="brig's clone modes; an ASan build clones copies")
def test_exec_child_shares_brigs_memory_until_its_execve(runtime, bundle):
    """exec's child runs in brig's memory with brig stopped until its execve
    (CLONE_VFORK); BRIG_CLONE_COPY=1 makes it a copy. Same process either
    way; an execve failure comes back the same way too."""
    running(runtime, bundle)
    bad = bundle.rootfs / "not-a-program"
    bad.write_text("neither ELF nor #!\n")
    bad.chmod(0o755)
    out = {}
    for mode, env in (("shared", None), ("copy", {"BRIG_CLONE_COPY": "1"})):
        res = runtime.run("--debug", "exec", bundle.id, "sh", "-c", "ls /proc/self/fd | wc -l; exit 3", env=env)
        assert res.returncode == 3, res
        shared = "phase exec: child cloned, sharing our memory, and executed or ended +" in res.stderr
        assert shared == (mode == "shared"), res.stderr
        out[mode] = res.stdout
        res = runtime.run("exec", bundle.id, "/not-a-program", env=env)
        assert res.returncode == 255, res
        assert res.error.endswith("unable to start container process: exec /not-a-program: exec format error"), res
    assert out["shared"] == out["copy"] == "4\n", out


def test_exec_killed_by_signal(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id, "sh", "-c", "kill -KILL $$")
    assert res.returncode == 137, res


def test_exec_joins_every_namespace_and_the_cgroup(runtime, bundle):
    init = running(runtime, bundle, add_ns=["cgroup"])
    res = runtime.run("exec", bundle.id, "sh", "-c",
                      "for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done;"
                      " cat /proc/self/cgroup; echo pid=$$")
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    for i, n in enumerate(["mnt", "uts", "ipc", "net", "pid", "cgroup"]):
        assert lines[i] == ns_link(init, n), (n, res.stdout)
    cg = [l for l in lines if ":memory:" in l]
    assert cg and cg[0].endswith(":/"), res.stdout   # cgroup ns root = the container's cgroup
    assert lines[-1] != "pid=1"
    assert int(lines[-1].split("=")[1]) > 1


def test_exec_sees_the_container_root(runtime, bundle):
    running(runtime, bundle, hostname="inside")
    res = runtime.run("exec", bundle.id, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    assert res.returncode == 0, res
    assert res.stdout.splitlines() == ["inside", "sleep 300 "]


def test_exec_env_cwd_user(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", "--env", "FOO=bar", "--env", "PATH=/bin", "--cwd", "/tmp",
                      "-u", "1000:1001", "--additional-gids", "5", bundle.id,
                      "sh", "-c", "echo $FOO; echo $PATH; pwd; id -u; id -g; id -G")
    assert res.returncode == 0, res
    assert res.stdout.splitlines() == ["bar", "/bin", "/tmp", "1000", "1001", "1001 5"]


@pytest.mark.skipif(IS_RUNC, reason="brig creates a missing cwd for exec too (issue #4); runc fails")
def test_exec_cwd_created(runtime, bundle):
    running(runtime, bundle, readonly=False)
    res = runtime.run("exec", "--cwd", "/new/dir", bundle.id, "pwd")
    assert res.returncode == 0, res
    assert res.stdout == "/new/dir\n"


def test_exec_capabilities_and_no_new_privs(runtime, bundle):
    running(runtime, bundle)
    base = runtime.run("exec", bundle.id, "grep", "-E", "^Cap(Eff|Bnd)|NoNewPrivs", "/proc/self/status",
                       check=True).stdout
    assert "CapEff:\t0000000020000420" in base
    res = runtime.run("exec", "--cap", "CAP_SYS_ADMIN", bundle.id, "grep", "CapEff", "/proc/self/status",
                      check=True)
    assert res.stdout.strip() == f"CapEff:\t{(1 << 5) | (1 << 10) | (1 << 29) | (1 << 21):016x}"


def test_exec_process_json(runtime, bundle, tmp_path):
    running(runtime, bundle)
    proc = {"args": ["sh", "-c", "echo $A; pwd; id -u"], "cwd": "/dev", "env": ["A=from-json", "PATH=/bin"],
            "user": {"uid": 2, "gid": 2}, "terminal": False}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    res = runtime.run("exec", "--process", tmp_path / "process.json", bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.splitlines() == ["from-json", "/dev", "2"]


def test_exec_detach_and_pid_file(runtime, bundle, tmp_path):
    running(runtime, bundle)
    pidfile = tmp_path / "exec.pid"
    res = runtime.run("exec", "-d", "--pid-file", pidfile, bundle.id, "sleep", "100")
    assert res.returncode == 0, res
    pid = int(pidfile.read_text())
    assert open(f"/proc/{pid}/cmdline").read().split("\0")[0] == "sleep"
    # in the container's cgroup
    mem = [l for l in open(f"/proc/{pid}/cgroup").read().splitlines() if ":memory:" in l][0]
    init_mem = [l for l in open(f"/proc/{runtime.state(bundle.id)['pid']}/cgroup").read().splitlines()
                if ":memory:" in l][0]
    assert mem == init_mem


def test_exec_stdin(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id, "cat", input="piped in\n")
    assert res.returncode == 0, res
    assert res.stdout == "piped in\n"


def test_exec_missing_executable(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id, "nosuch")
    assert res.returncode == 255, res
    assert res.error == ('exec failed: unable to start container process: exec: "nosuch": '
                         'executable file not found in $PATH')


def test_exec_no_command(runtime, bundle):
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id)
    assert res.returncode == 255, res
    assert res.error == "exec failed: process args cannot be empty"


def test_exec_nonexistent_container(runtime):
    res = runtime.run("exec", "nope", "true")
    assert res.returncode == 255, res
    assert res.error == "exec failed: container does not exist"


def test_exec_stopped_container(runtime, bundle):
    bundle.config(args=["true"])
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    assert runtime.wait_status(bundle.id, "stopped")
    res = runtime.run("exec", bundle.id, "true")
    assert res.returncode == 255, res
    assert res.error == "exec failed: cannot exec in a stopped container"


def test_exec_into_created_container(runtime, bundle):
    bundle.config(args=["sleep", "300"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    res = runtime.run("exec", bundle.id, "sh", "-c", "cat /proc/1/cmdline | head -c 4")
    assert res.returncode == 0, res


def test_exec_process_runs_the_containers_binary(runtime, bundle):
    """Once exec'd, /proc/self/exe is the container's own binary, not the
    runtime's (the attack on the runtime's image is in test_attacks.py)."""
    running(runtime, bundle)
    res = runtime.run("exec", bundle.id, "sh", "-c", "readlink /proc/self/exe")
    assert res.returncode == 0, res
    assert res.stdout.strip() in ("/bin/busybox", "/bin/sh")


def test_exec_tty_through_console_socket(runtime, bundle, tmp_path):
    running(runtime, bundle)
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    p = runtime.popen("exec", "-t", "-d", "--console-socket", path, bundle.id, "sh", "-c",
                      "tty; stty size; echo done")
    conn, _ = srv.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1
    master = fds[0]
    out = b""
    while b"done" not in out:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    conn.close()
    srv.close()
    assert p.wait(timeout=20) == 0
    text = out.decode()
    assert "/dev/pts/" in text, text
    assert "done" in text


def test_exec_gets_the_container_seccomp_filter(runtime, bundle):
    running(runtime, bundle, fn=lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    res = runtime.run("exec", bundle.id, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x")
    assert res.returncode != 0, res
    assert "Seccomp:\t2" in res.stdout
    assert "Permission denied" in res.stderr


def test_exec_into_a_sub_cgroup(runtime, bundle, tmp_path):
    init = running(runtime, bundle)
    mem = [l for l in open(f"/proc/{init}/cgroup").read().splitlines() if ":memory:" in l][0]
    sub = f"/sys/fs/cgroup/memory{mem.split(':', 2)[2]}/sub"
    os.mkdir(sub)
    try:
        pidfile = tmp_path / "p.pid"
        res = runtime.run("exec", "-d", "--pid-file", pidfile, "--cgroup", "memory:sub", bundle.id, "sleep", "100")
        assert res.returncode == 0, res
        pid = int(pidfile.read_text())
        lines = open(f"/proc/{pid}/cgroup").read().splitlines()
        assert [l for l in lines if ":memory:" in l][0].endswith("/sub"), lines
        assert [l for l in lines if ":pids:" in l][0] == [l for l in open(f"/proc/{init}/cgroup").read().splitlines()
                                                        if ":pids:" in l][0]
        bad = runtime.run("exec", "--cgroup", "memory:../escape", bundle.id, "true")
        assert bad.returncode == 255, bad
        os.kill(pid, 9)
        wait_for(lambda: open(f"{sub}/cgroup.procs").read().strip() == "")
    finally:
        wait_for(lambda: not os.path.exists(sub) or (os.rmdir(sub) or True), timeout=5)



@pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 has no time namespace; brig's --debug lines")
@pytest.mark.parametrize("kind", ["plain", "user", "time"])
def test_exec_enters_user_and_time_namespaces_and_reports_set_up_errors(runtime, bundle, kind):
    """exec into a container with its own user namespace (entered before the
    others) or time namespace (entered around the clone, like pid): the
    process runs in the container's namespaces with its exit code, and a
    set-up error of the exec child comes back in one line, --debug or not."""
    cfg = {}
    if kind == "user":
        bundle.open_for_mapped_root()
        cfg = dict(add_ns=["user"], readonly=False,
                   uid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                   gid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])
    elif kind == "time":
        cfg = dict(add_ns=["time"],
                   fn=lambda c: c["linux"].update(timeOffsets={"monotonic": {"secs": 500000}}))
    init = running(runtime, bundle, **cfg)
    script = "for n in user pid time; do readlink /proc/self/ns/$n; done; exit 3"
    res = runtime.run("exec", bundle.id, "sh", "-c", script, global_args=["--debug"])
    assert res.returncode == 3, res
    assert res.stdout.splitlines() == [ns_link(init, "user"), ns_link(init, "pid"), ns_link(init, "time")], res
    assert len([l for l in res.stderr.splitlines() if "phase exec: child cloned" in l]) == 1, res.stderr

    # A set-up error in the child (its cwd is a file) reaches the caller.
    res = runtime.run("exec", "--cwd", "/bin/busybox", bundle.id, "true", global_args=["--debug"])
    assert res.returncode == 255, res
    last = res.stderr.splitlines()[-1]
    assert 'level=error msg="exec failed: unable to start container process: ' in last, res
    assert "not a directory" in last, res
    # Nothing is left running in the container but its init.
    assert runtime.run("ps", "--format", "json", bundle.id, check=True).stdout.strip() == f"[{init}]"
