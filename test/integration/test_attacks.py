"""Self-protection (issue #4): each test performs the attack from inside a
container and checks the host is untouched."""

import os
import subprocess
import shutil
import stat
import time
from pathlib import Path

import pytest

from conftest import IS_RUNC, ConsoleSocket


def test_proc_exe_of_the_waiting_init_is_not_writable(runtime, bundle):
    """CVE-2019-5736 class: while init waits for `start` it is still the
    runtime's image; a process exec'd into the container tries to open it
    through /proc/1/exe for writing (and to keep an O_PATH handle)."""
    bundle.config(args=["sleep", "100"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    before = os.stat(runtime.binary)
    res = runtime.run("exec", bundle.id, "sh", "-c",
                      "(exec 3>>/proc/1/exe) && echo OPENED-FOR-WRITE; "
                      "(exec 4</proc/1/exe) && echo OPENED-FOR-READ; echo done")
    assert res.returncode == 0, res
    assert "OPENED-FOR-WRITE" not in res.stdout, res
    if not IS_RUNC:
        # brig's init is non-dumpable: not even readable (runc exposes a read-only copy)
        assert "OPENED-FOR-READ" not in res.stdout, res
    after = os.stat(runtime.binary)
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)


def _digest(path):
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _wait_file(path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def _runtime_copy(runtime, tmp_path):
    """The runtime under test runs from a copy: an attack that works corrupts
    only the copy."""
    copy = tmp_path / "runtime-copy"
    shutil.copy2(runtime.binary, copy)
    runtime.binary = str(copy)
    return copy


@pytest.fixture(params=["writable", "ro-mount"])
def runtime_copy(request, runtime, tmp_path):
    """The runtime's copy, as installed: on a writable filesystem, or on a
    read-only bind mount of itself (an immutable /usr), where brig has nothing
    to move."""
    copy = _runtime_copy(runtime, tmp_path)
    if request.param == "writable":
        yield copy, False
        return
    subprocess.run(["mount", "--bind", copy, copy], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", copy], check=True)
        yield copy, True
    finally:
        # Lazily: torn down before the runtime fixture deletes the container,
        # whose waiting init (or an attacker's handle) may still use the copy.
        subprocess.run(["umount", "-l", copy], check=True)


def test_proc_exe_with_cap_sys_ptrace_cannot_overwrite_the_runtime(runtime, bundle, tmp_path, runtime_copy):
    """CVE-2019-5736: a container without a user namespace that keeps
    CAP_SYS_PTRACE may open the waiting init's /proc/1/exe (non-dumpable is no
    barrier to it), keep the handle, and write through it once no runtime
    process runs the binary any more. (The published vector, an entrypoint
    interpreted by "#!/proc/self/exe", fails earlier on this kernel: a
    non-dumpable process cannot resolve its own /proc/self/exe, ENOENT.)"""
    copy, on_ro_mount = runtime_copy
    before = _digest(copy)

    def caps(cfg):
        c = cfg["process"].setdefault("capabilities", {})
        for s in ("bounding", "effective", "permitted"):
            c[s] = sorted(set(c.get(s, [])) | {"CAP_SYS_PTRACE"})
    bundle.config(args=["sleep", "100"], readonly=False, fn=caps)
    (bundle.rootfs / "attack").mkdir()
    log = tmp_path / "debug.log"
    dbg = () if IS_RUNC else ("--debug", "--log", str(log))
    runtime.run("create", "--bundle", bundle, bundle.id, check=True, global_args=dbg)
    res = runtime.run("exec", "-d", "--cap", "CAP_SYS_PTRACE", bundle.id, "sh", "-c",
                      "exec 3</proc/1/exe; echo $? > /attack/opened; "
                      "while [ ! -e /attack/go ]; do sleep 0.05; done; "
                      "(echo PWNED >> /proc/self/fd/3) 2>/attack/err; echo $? > /attack/wrote",
                      global_args=dbg)
    assert res.returncode == 0, res
    if not IS_RUNC:
        # create and exec each moved onto the read-only view without an exec
        # of brig (runtime/selfexe.hpp); the fallback re-exec would say so.
        # On a read-only mount there is nothing to move, in either.
        text = log.read_text()
        remapped, read_only = "self-exe protection: remapped in place", "self-exe protection: binary already read-only"
        expected, unexpected = (read_only, remapped) if on_ro_mount else (remapped, read_only)
        assert text.count(expected) == 2, text
        assert unexpected not in text, text
        assert "re-executing" not in text, text
    # The attack is real: the handle was obtained (a read-only view of the runtime).
    assert _wait_file(bundle.rootfs / "attack" / "opened") == "0"
    runtime.run("start", bundle.id, check=True)  # init leaves the runtime's image
    (bundle.rootfs / "attack" / "go").write_text("1")
    assert _wait_file(bundle.rootfs / "attack" / "wrote") != "0"
    assert _digest(copy) == before


@pytest.mark.parametrize("fd", range(3, 9))
def test_cwd_through_a_leaked_fd_does_not_reach_the_host(runtime, bundle, tmp_path, fd):
    """CVE-2024-21626 class: process.cwd /proc/self/fd/N must not land the
    process in a host directory through an fd open in the runtime. Here the
    fd is one brig inherits from its caller (without --preserve-fds), open on
    a host directory holding a marker, so every N has something to leak.
    Protections (either alone suffices, test/README.md): init closes what it
    does not keep before the cwd, and the cwd is resolved in the root, where
    a /proc magic link is refused."""
    marker = f"host-marker-{fd}"
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / marker).write_text("x")
    bundle.config(cwd=f"/proc/self/fd/{fd}", args=["sh", "-c", "pwd; ls -a . .. ../.. 2>&1"])
    src = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        res = subprocess.run(runtime.cmd("run", "--bundle", bundle, bundle.id), capture_output=True, text=True,
                             timeout=30, env=runtime.env(), stdin=subprocess.DEVNULL, pass_fds=(fd,),
                             preexec_fn=lambda: os.dup2(src, fd))
    finally:
        os.close(src)
    runtime.track(bundle.id)
    assert marker not in res.stdout and marker not in res.stderr, res
    if res.returncode == 0:
        assert "/sys/fs/cgroup" not in res.stdout and "/run/" not in res.stdout, res
    else:
        assert "cwd" in res.stderr, res  # refused with the step named


def test_exec_user_never_chowns_the_hosts_dev_null(runtime, bundle):
    """crun 1.8.1 chowned the host's /dev/null when exec's stdin was /dev/null."""
    bundle.config(args=["sleep", "100"])
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    before = os.stat("/dev/null")
    res = runtime.run("exec", "-u", "1000:1000", bundle.id, "id", "-u")  # stdin is /dev/null
    assert res.returncode == 0, res
    assert res.stdout.strip() == "1000"
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == \
        (before.st_uid, before.st_gid, stat.S_IMODE(before.st_mode))


def test_stdio_pipes_are_given_to_the_process_user_and_nothing_else(runtime, bundle, tmp_path):
    """As with runc, a process running as another user can reopen the pipes
    it was given (/dev/stdout, /proc/self/fd/N: nginx-style logging), for
    init and for exec -u; the host's /dev/null and a caller's file on stdio
    keep their owner (crun 1.8.1 chowned /dev/null; runc chowns files too)."""
    script = "echo via-$0 > /proc/self/fd/1 && echo err-$0 > /dev/stderr"
    bundle.config(args=["sh", "-c", script, "init"], user={"uid": 1000, "gid": 1000})
    p = subprocess.run(runtime.cmd("run", "--bundle", bundle, bundle.id), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30, env=runtime.env())
    runtime.track(bundle.id)
    assert p.returncode == 0 and p.stdout == "via-init\n" and p.stderr == "err-init\n", p
    runtime.run("delete", "-f", bundle.id)
    bundle.config(args=["sleep", "100"], user={"uid": 0, "gid": 0})
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    null, log = os.stat("/dev/null"), tmp_path / "log"
    log.write_text("")
    with open(log, "w") as f:
        p = subprocess.run(runtime.cmd("exec", "-u", "1000:1000", bundle.id, "sh", "-c", script, "exec"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=f, text=True, timeout=30,
                           env=runtime.env())
    # stdout (a pipe) was reopened; stderr (a host file) was not the process's
    assert p.returncode != 0 and p.stdout == "via-exec\n", p
    assert "Permission denied" in log.read_text()
    assert os.stat(log).st_uid == 0
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (null.st_uid, null.st_gid, null.st_mode)


def test_exec_tty_user_chowns_only_the_containers_pty(runtime, bundle, tmp_path):
    bundle.config(args=["sleep", "100"])
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    before = os.stat("/dev/null"), os.stat("/dev/ptmx")
    cs = ConsoleSocket(tmp_path / "c.sock")
    p = runtime.popen("exec", "-t", "-d", "-u", "1000:1000", "--console-socket", cs.path, bundle.id,
                      "sh", "-c", "stat -c %u $(tty)")
    out = cs.read()
    assert p.wait(timeout=20) == 0
    assert out.decode().strip().splitlines()[-1].strip() == "1000"
    after = os.stat("/dev/null"), os.stat("/dev/ptmx")
    for b, a in zip(before, after):
        assert (a.st_uid, a.st_gid, a.st_mode) == (b.st_uid, b.st_gid, b.st_mode)
