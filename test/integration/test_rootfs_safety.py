"""No way out through a symlink: paths planted in the rootfs (a mount
destination, /dev, /proc, a masked path, /dev/null, a device's directory)
either end in a mount inside the root or in a one-line error -- and the host
is untouched: its mount table and the files involved are the same before and
after."""

import hashlib
import os
from pathlib import Path

import pytest

from conftest import IS_RUNC, brig_only
from test_errors import assert_nothing_left


# --------------------------------------------------------------------------
# helpers shared by the test_rootfs_* files
# --------------------------------------------------------------------------

def parse_mountinfo(text):
    """{mountpoint: {...}} of a mountinfo text; the last mount on a point wins."""
    out = {}
    for line in text.splitlines():
        if " - " not in line:
            continue
        pre, _, post = line.partition(" - ")
        f = pre.split()
        fstype, source, sopts = post.split(" ", 2)
        out[f[4]] = {"id": f[0], "parent": f[1], "root": f[3], "opts": f[5].split(","),
                     "optional": f[6:], "fstype": fstype, "source": source,
                     "sopts": sopts.split(",")}
    return out


def run_in(runtime, bundle, script, check=True, args=(), **cfg):
    """Runs `sh -c script` in the bundle; returns the result."""
    bundle.config(args=["sh", "-c", script], **cfg)
    res = runtime.run("run", *args, "--bundle", bundle, bundle.id)
    if check:
        assert res.returncode == 0, res
    return res


def _host_mounts():
    """The host's mount table, minus what tests elsewhere may be doing meanwhile
    (mounts under /tmp and /run come and go with other test runs)."""
    out = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        mp = f[4]
        if mp.startswith(("/tmp/", "/run/")):
            continue
        out.add(" ".join([f[0], f[1], f[2], f[3], mp, f[5]]))
    return out


def _tree_state(path):
    """Names, types, modes and contents of a host directory (one level) and the dir itself."""
    p = Path(path)
    st = p.lstat()
    state = {".": (st.st_mode, st.st_uid, st.st_ino)}
    for e in sorted(os.listdir(p)):
        q = p / e
        s = q.lstat()
        digest = None
        if q.is_file() and not q.is_symlink() and s.st_size < 1 << 20:
            try:
                digest = hashlib.sha256(q.read_bytes()).hexdigest()
            except OSError:
                digest = "unreadable"
        # no directory mtimes: the host's own work touches them meanwhile
        mtime = None if q.is_dir() else s.st_mtime_ns
        state[e] = (s.st_mode, s.st_uid, s.st_gid, s.st_rdev, mtime, digest)
    return state


class HostGuard:
    """Snapshot of what an escape would touch: the host's mount table, /, /etc, /dev."""

    WATCH = ("/", "/etc", "/dev")

    def __init__(self, extra=()):
        self.paths = list(self.WATCH) + [str(x) for x in extra]
        self.mounts = _host_mounts()
        self.trees = {p: _tree_state(p) for p in self.paths}

    def check(self):
        now = _host_mounts()
        assert now == self.mounts, (f"host mounts changed: added {sorted(now - self.mounts)}, "
                                    f"removed {sorted(self.mounts - now)}")
        for p in self.paths:
            after = _tree_state(p)
            before = self.trees[p]
            if p == "/dev":
                # device nodes come and go with other work on the host (loop, pts):
                # what must not appear is something a container made
                added = set(after) - set(before)
                assert not any(a.startswith("brig") for a in added), added
                continue
            assert after == before, f"host {p} changed: " + str(
                {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                 if before.get(k) != after.get(k)})


@pytest.fixture
def host_guard():
    guards = []

    def make(*extra):
        g = HostGuard(extra)
        guards.append(g)
        return g
    yield make
    for g in guards:
        g.check()


# --------------------------------------------------------------------------
# mount destinations through symlinks
# --------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["/etc", "../../../../../../../../etc", "/../../etc"])
@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_destination_symlink_to_host_etc_lands_inside(runtime, bundle, host_guard, tmp_path,
                                                      link, kind):
    host_guard()
    os.symlink(link, bundle.rootfs / "x")
    if kind == "tmpfs":
        m = {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}
    else:
        src = tmp_path / "src"
        src.mkdir()
        (src / "marker").write_text("m\n")
        m = {"destination": "/x", "type": "bind", "source": str(src), "options": ["bind"]}
    res = run_in(runtime, bundle, "grep -c ' /etc ' /proc/self/mountinfo; ls -A /etc",
                 mounts=[m])
    lines = res.stdout.split()
    # the mount covers the container's /etc (the link resolved inside the root)
    assert lines[0] == "1", res
    assert lines[1:] == ([] if kind == "tmpfs" else ["marker"]), res
    assert os.readlink(bundle.rootfs / "x") == link
    assert (bundle.rootfs / "etc" / "passwd").exists()


def test_nested_destination_through_symlinked_dir(runtime, bundle, host_guard):
    host_guard()
    # /a -> /etc (host path), destination /a/sub/deep: directories are made in
    # the container's /etc, never the host's
    os.symlink("/etc", bundle.rootfs / "a")
    run_in(runtime, bundle, "grep -c ' /etc/sub/deep ' /proc/self/mountinfo",
           mounts=[{"destination": "/a/sub/deep", "type": "tmpfs", "source": "tmpfs"}],
           readonly=False)
    assert (bundle.rootfs / "etc" / "sub" / "deep").is_dir()
    assert not os.path.exists("/etc/sub/deep")


def test_dev_symlink_to_root_is_refused(runtime, bundle, host_guard):
    host_guard()
    os.rmdir(bundle.rootfs / "dev")
    os.symlink("/", bundle.rootfs / "dev")
    before = sorted(os.listdir(bundle.rootfs))
    res = run_in(runtime, bundle, "true", check=False)
    assert res.returncode != 0, res
    msg = res.error  # exactly one error line
    if not IS_RUNC:
        assert "destination /dev resolves to the container's root" in msg, msg
    assert sorted(os.listdir(bundle.rootfs)) == before  # no device made in the rootfs


@pytest.mark.parametrize("link", ["/etc", "/tmp", "../../../../proc-elsewhere"])
def test_proc_symlink_is_refused(runtime, bundle, host_guard, link):
    host_guard()
    os.rmdir(bundle.rootfs / "proc")
    os.symlink(link, bundle.rootfs / "proc")
    (bundle.rootfs / "proc-elsewhere").mkdir()
    res = run_in(runtime, bundle, "true", check=False)
    assert res.returncode != 0, res
    assert 'filesystem "proc" must be mounted on ordinary directory' in res.error, res


def test_sysfs_symlink_is_refused(runtime, bundle, host_guard):
    host_guard()
    os.rmdir(bundle.rootfs / "sys")
    os.symlink("/tmp", bundle.rootfs / "sys")
    res = run_in(runtime, bundle, "true", check=False)
    assert 'filesystem "sysfs" must be mounted on ordinary directory' in res.error, res


@brig_only
def test_sysfs_inside_proc_is_refused(runtime, bundle, host_guard):
    # sysfs takes the short way to its target (one lookup without symlinks),
    # which must still see that the target is in the container's /proc
    # (runc 1.1.5 lets sysfs cover /proc/bus; brig refuses every filesystem
    # but proc there, bar the few /proc files runc allows)
    host_guard()
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[{"destination": "/proc/bus", "type": "sysfs", "source": "sysfs"}])
    assert res.returncode != 0, res
    assert '"/proc/bus" cannot be mounted because it is inside /proc' in res.error, res
    assert_nothing_left(runtime, bundle.id, bundle)


@brig_only
def test_mount_inside_proc_through_symlink_is_refused(runtime, bundle, host_guard):
    # /x -> /proc/sys/kernel: a tmpfs there would cover the container's
    # /proc/sys (the CVE-2019-19921 class); only a few /proc files may be covered
    host_guard()
    os.symlink("/proc/sys/kernel", bundle.rootfs / "x")
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[{"destination": "/x", "type": "tmpfs", "source": "tmpfs"}])
    assert '"/x" cannot be mounted because it is inside /proc' in res.error, res


def test_proc_file_may_be_covered_by_lxcfs_style_bind(runtime, bundle, tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal: 1 kB\n")
    res = run_in(runtime, bundle, "cat /proc/meminfo",
                 mounts=[{"destination": "/proc/meminfo", "type": "bind", "source": str(f),
                          "options": ["bind", "ro"]}])
    assert res.stdout == "MemTotal: 1 kB\n", res


# --------------------------------------------------------------------------
# masked paths and /dev/null
# --------------------------------------------------------------------------

def test_masked_path_symlink_stays_inside(runtime, bundle, host_guard):
    host_guard()
    (bundle.rootfs / "etc" / "secret").write_text("inside-secret\n")
    os.symlink("/etc/secret", bundle.rootfs / "m1")            # absolute: the container's /etc
    os.symlink("../../../../../etc/passwd", bundle.rootfs / "m2")  # relative, climbing out
    os.symlink("/etc/shadow", bundle.rootfs / "m3")           # missing inside: skipped
    (bundle.rootfs / "data").mkdir()
    (bundle.rootfs / "data" / "f").write_text("x")
    os.symlink("/data", bundle.rootfs / "m4")                 # a directory: empty tmpfs

    def fn(cfg):
        cfg["linux"]["maskedPaths"] += ["/m1", "/m2", "/m3", "/m4"]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle,
                 "cat /etc/secret | wc -c; cat /etc/passwd | wc -c; ls /data | wc -l; "
                 "test -e /etc/shadow || echo no-shadow")
    assert res.stdout.split() == ["0", "0", "0", "no-shadow"], res
    # the files in the rootfs are intact
    assert (bundle.rootfs / "etc" / "secret").read_text() == "inside-secret\n"


@brig_only
@pytest.mark.parametrize("plant", ["symlink", "file", "other-device"])
def test_masking_refuses_a_fake_dev_null(runtime, bundle, host_guard, tmp_path, plant):
    # CVE-2025-31133 class: /dev comes from a bind whose "null" is not the null
    # device; covering a masked file with it would expose (or make writable)
    # whatever it points to.
    host_guard()
    fakedev = tmp_path / "fakedev"
    fakedev.mkdir()
    if plant == "symlink":
        os.symlink("/proc/sys/kernel/core_pattern", fakedev / "null")
    elif plant == "file":
        (fakedev / "null").write_text("not a device\n")
    else:
        os.mknod(fakedev / "null", 0o666 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers

    def fn(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": str(fakedev),
                              "options": ["rbind"]})
        cfg["linux"]["maskedPaths"] = ["/proc/keys"]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle, "true", check=False)
    assert res.returncode != 0, res
    assert "masked path /proc/keys: /dev/null is not the null device" in res.error, res


# --------------------------------------------------------------------------
# device nodes
# --------------------------------------------------------------------------

def test_device_under_symlinked_dir_is_made_inside(runtime, bundle, host_guard):
    host_guard()
    (bundle.rootfs / "opt").mkdir()
    os.symlink("/etc", bundle.rootfs / "opt" / "abs")
    os.symlink("../../../../../../etc", bundle.rootfs / "opt" / "rel")
    # a planted symlink where the node goes: replaced, not followed
    os.symlink("/etc/passwd", bundle.rootfs / "opt" / "node")

    def dev(path, minor):
        return {"path": path, "type": "c", "major": 1, "minor": minor, "fileMode": 0o600}

    def fn(cfg):
        cfg["linux"]["devices"] = [dev("/opt/abs/brig-a", 3), dev("/opt/rel/brig-b", 5),
                                   dev("/opt/node", 7)]
    bundle.config(fn=fn, readonly=False)
    res = run_in(runtime, bundle,
                 "stat -c '%n %F %t:%T %a' /etc/brig-a /etc/brig-b /opt/node; head -c 3 /etc/brig-b | wc -c")
    lines = res.stdout.splitlines()
    assert lines[0] == "/etc/brig-a character special file 1:3 600", res
    assert lines[1] == "/etc/brig-b character special file 1:5 600", res
    if not IS_RUNC:  # runc leaves the planted link in place (and makes no node)
        assert lines[2] == "/opt/node character special file 1:7 600", res
    assert lines[3].strip() == "3", res
    assert not os.path.exists("/etc/brig-a") and not os.path.exists("/etc/brig-b")
    assert (bundle.rootfs / "etc" / "passwd").read_text().startswith("root:")


def test_dev_dir_symlink_without_dev_tmpfs(runtime, bundle, host_guard):
    # no /dev tmpfs in the config: the default devices go into the rootfs's
    # /dev, which is a symlink to the host's /etc -- they land in the
    # container's /etc
    if IS_RUNC:
        # runc 1.1.5 follows the link on the host: it makes /etc/ptmx, /etc/fd,
        # /etc/stdin, /etc/stdout and /etc/stderr in the HOST's /etc
        pytest.skip("runc bug: writes the /dev symlinks into the host's /etc")
    host_guard()
    os.rmdir(bundle.rootfs / "dev")
    os.symlink("/etc", bundle.rootfs / "dev")

    def fn(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["linux"]["maskedPaths"] = []
    bundle.config(fn=fn, readonly=False)
    res = run_in(runtime, bundle, "stat -c '%F %t:%T' /etc/null")
    assert res.stdout == "character special file 1:3\n", res
    assert (bundle.rootfs / "etc" / "null").exists()
