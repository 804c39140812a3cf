"""Self-protection (issue #4): each test performs the attack from inside a
container and checks the host is untouched."""

import os
import stat

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


@pytest.mark.parametrize("fd", range(3, 9))
def test_cwd_through_a_leaked_fd_does_not_reach_the_host(runtime, bundle, tmp_path, fd):
    """CVE-2024-21626 class: process.cwd /proc/self/fd/N must not land the
    process in a host directory through an fd the runtime left open."""
    marker = f"host-marker-{fd}"
    (tmp_path / marker).write_text("x")
    bundle.config(cwd=f"/proc/self/fd/{fd}", args=["sh", "-c", "pwd; ls -a . .. ../.. 2>&1"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    if res.returncode == 0:
        assert marker not in res.stdout, res
        assert "/sys/fs/cgroup" not in res.stdout and "/run/" not in res.stdout, res


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
