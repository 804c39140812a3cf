"""The filesystem the default spec gives a container, seen from inside."""

import os

from conftest import IS_RUNC, _find_cgroup_dirs
from test_run import _mountinfo


def run_out(runtime, bundle, script, **cfg):
    bundle.config(args=["sh", "-c", script], **cfg)
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    return res.stdout


def test_default_mount_types(runtime, bundle):
    mi = _mountinfo(run_out(runtime, bundle, "cat /proc/self/mountinfo"))
    assert mi["/proc"]["fstype"] == "proc"
    assert mi["/sys"]["fstype"] == "sysfs" and "ro" in mi["/sys"]["opts"]
    assert mi["/dev"]["fstype"] == "tmpfs"
    assert "mode=755" in mi["/dev"]["sopts"], mi["/dev"]
    assert mi["/dev/pts"]["fstype"] == "devpts"
    assert "newinstance" in mi["/dev/pts"]["sopts"] or "ptmxmode=666" in mi["/dev/pts"]["sopts"]
    assert mi["/dev/shm"]["fstype"] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= set(mi["/dev/shm"]["opts"])
    assert mi["/dev/mqueue"]["fstype"] == "mqueue"
    # the spec's cgroup mount: on a v1 host, a tmpfs holding one read-only
    # cgroup mount per hierarchy, each showing the container's own cgroup
    assert "/sys/fs/cgroup" in mi
    for ctrl in ("memory", "pids", "devices", "freezer"):
        m = mi.get(f"/sys/fs/cgroup/{ctrl}")
        assert m and m["fstype"] == "cgroup" and "ro" in m["opts"], (ctrl, m)
        assert m["root"] != "/", m


def test_default_mount_options(runtime, bundle):
    # Every flag and filesystem option of runc's default mounts reaches the
    # kernel, whichever call brig mounts them with (mount(2) on the checked
    # target, or fsopen/fsconfig where mount(2) cannot say it).
    mi = _mountinfo(run_out(runtime, bundle, "cat /proc/self/mountinfo"))
    want = {
        "/dev": ({"rw", "nosuid"}, {"mode=755", "size=65536k"}),
        "/dev/pts": ({"rw", "nosuid", "noexec"}, {"mode=620", "ptmxmode=666", "gid=5"}),
        "/dev/shm": ({"rw", "nosuid", "nodev", "noexec"}, {"size=65536k"}),  # mode 1777 is the default, not shown
        "/dev/mqueue": ({"rw", "nosuid", "nodev", "noexec"}, set()),
        "/sys": ({"ro", "nosuid", "nodev", "noexec"}, set()),
        "/proc": ({"rw"}, set()),
    }
    for mp, (opts, sopts) in want.items():
        assert opts <= set(mi[mp]["opts"]), (mp, mi[mp])
        assert sopts <= set(mi[mp]["sopts"]), (mp, mi[mp])
    assert "ro" not in mi["/proc"]["opts"] and "noexec" not in mi["/dev"]["opts"], mi


def test_filesystem_option_refused_is_named(runtime, bundle):
    bundle.config(fn=lambda c: c["mounts"].append(
        {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=abc"]}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode != 0, res
    msg = res.error
    assert "/mnt" in msg, msg
    if not IS_RUNC:  # runc says "invalid argument" alone
        assert "option size=abc (tmpfs: Bad value for 'size')" in msg, msg
    assert not os.path.lexists(os.path.join(runtime.root, bundle.id)), "state dir left"
    assert not _find_cgroup_dirs({bundle.id}), "cgroup dir left"


def test_readonly_root(runtime, bundle):
    out = run_out(runtime, bundle,
                  "touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1; echo rc=$?; "
                  "touch /dev/shm/z && echo shm-ok")
    lines = out.splitlines()
    assert "Read-only file system" in lines[0], out
    assert lines[1] == "rc=1", out
    assert "Read-only file system" in lines[2], out  # /tmp is part of the ro root here
    assert lines[3] == "rc=1", out
    assert lines[4] == "shm-ok", out
    assert not (bundle.rootfs / "x").exists()


def test_writable_root(runtime, bundle):
    out = run_out(runtime, bundle, "touch /x && echo ok", readonly=False)
    assert out == "ok\n"
    assert (bundle.rootfs / "x").exists()


def test_bind_mount_host_dir(runtime, bundle, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    (host / "from-host").write_text("hello\n")
    out = run_out(runtime, bundle,
                  "cat /data/from-host; echo inside > /data/from-container; "
                  "grep ' /data ' /proc/self/mountinfo | wc -l",
                  mounts=[{"destination": "/data", "type": "bind", "source": str(host),
                           "options": ["rbind", "rw"]}])
    lines = out.splitlines()
    assert lines[0] == "hello", out
    assert lines[1] == "1", out
    assert (host / "from-container").read_text() == "inside\n"
    # the mount point was created inside the rootfs (root.readonly notwithstanding)
    assert (bundle.rootfs / "data").is_dir()


def test_bind_mount_readonly(runtime, bundle, tmp_path):
    host = tmp_path / "ro"
    host.mkdir()
    out = run_out(runtime, bundle, "touch /data/f 2>&1; echo rc=$?",
                  mounts=[{"destination": "/data", "type": "bind", "source": str(host),
                           "options": ["rbind", "ro"]}])
    assert "Read-only file system" in out and "rc=1" in out, out
    assert not (host / "f").exists()


def test_bind_mount_file(runtime, bundle, tmp_path):
    f = tmp_path / "hostfile"
    f.write_text("file-content\n")
    out = run_out(runtime, bundle, "cat /etc/hostfile",
                  mounts=[{"destination": "/etc/hostfile", "type": "bind",
                           "source": str(f), "options": ["bind", "ro"]}])
    assert out == "file-content\n"


def test_tmpfs_mount(runtime, bundle):
    out = run_out(runtime, bundle,
                  "touch /scratch/a && echo ok; grep ' /scratch ' /proc/self/mountinfo",
                  mounts=[{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "size=1m"]}])
    lines = out.splitlines()
    assert lines[0] == "ok", out
    assert " - tmpfs " in lines[1] and "size=1024k" in lines[1], out


def test_dev_nodes(runtime, bundle):
    # busybox stat: %F file type, %t/%T major/minor in hex
    out = run_out(runtime, bundle,
                  "for d in null zero full random urandom tty; do "
                  "stat -c '%n %F %t:%T' /dev/$d; done; "
                  "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; "
                  "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done")
    lines = out.splitlines()
    want = {"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7",
            "/dev/random": "1:8", "/dev/urandom": "1:9", "/dev/tty": "5:0"}
    for line, (dev, mm) in zip(lines[:6], want.items()):
        assert line == f"{dev} character special file {mm}", out
    assert lines[6] == "null-ok", out
    assert lines[7].strip() == "4", out
    assert lines[8:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0",
                         "/proc/self/fd/1", "/proc/self/fd/2"], out


def test_masked_and_readonly_paths(runtime, bundle):
    masked = [p for p in bundle.load()["linux"]["maskedPaths"] if os.path.exists(p)]
    files = [p for p in masked if os.path.isfile(p)]
    dirs = [p for p in masked if os.path.isdir(p)]
    assert files and dirs, masked
    # masked file: /dev/null bound over it; masked dir: an empty read-only tmpfs
    script = "".join(f"echo $(head -c 64 {f} | wc -c); " for f in files)
    script += "".join(f"echo $(ls -A {d} | wc -l); " for d in dirs)
    script += "(echo 1 > /proc/sys/kernel/domainname) 2>&1; echo rc=$?"
    out = run_out(runtime, bundle, script, readonly=False)
    lines = out.splitlines()
    assert lines[:len(masked)] == ["0"] * len(masked), (masked, out)
    assert "Read-only file system" in out and lines[-1] == "rc=1", out


def test_rootfs_is_pivoted(runtime, bundle):
    # the host's filesystem is not reachable: no bundle path, root is the rootfs
    out = run_out(runtime, bundle, "ls /; test -e /config.json && echo LEAK || echo ok")
    names = out.split()
    assert names[-1] == "ok", out
    assert "bin" in names and "proc" in names and "config.json" not in names
    assert os.path.exists(bundle.config_path)
