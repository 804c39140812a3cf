"""The root itself: rootfsPropagation, read-only root, --no-pivot, the pivot
leaving no trace of the host, and the cgroup tree on this (v1/hybrid) host."""

import os

import pytest

from conftest import IS_RUNC
from test_rootfs_safety import host_guard, parse_mountinfo, run_in  # noqa: F401 (fixture)


@pytest.mark.parametrize("prop,field", [("shared", "shared:"), ("rshared", "shared:"),
                                        ("private", None), ("rprivate", None),
                                        ("slave", None), ("rslave", None),
                                        ("runbindable", "unbindable")])
def test_rootfs_propagation(runtime, bundle, host_guard, prop, field):
    if IS_RUNC and prop in ("shared", "rshared", "runbindable"):
        pytest.xfail("runc 1.1: shared root not visible inside, runbindable fails to bind the rootfs")
    host_guard()
    bundle.config(fn=lambda c: c["linux"].__setitem__("rootfsPropagation", prop))
    res = run_in(runtime, bundle, "cat /proc/self/mountinfo")
    mi = parse_mountinfo(res.stdout)
    opt = mi["/"]["optional"]
    if field:
        assert any(o.startswith(field) for o in opt), res
    else:
        # the host's mounts are private here: a slave has no master to show
        assert not any(o.startswith("shared:") for o in opt), res


@pytest.mark.parametrize("no_pivot", [False, True])
def test_root_is_the_rootfs_and_nothing_of_the_host(runtime, bundle, no_pivot):
    args = ["--no-pivot"] if no_pivot else []
    res = run_in(runtime, bundle, "cat /proc/self/mountinfo; ls -A /", args=args)
    text = res.stdout
    mi = parse_mountinfo(text)
    assert mi["/"]["root"].endswith("/rootfs"), res
    # only the container's own mounts: nothing of the host's tree is left
    for mp in mi:
        assert mp == "/" or mp.startswith(("/proc", "/dev", "/sys")), (mp, res)
    names = [l for l in text.splitlines() if " - " not in l]
    assert "config.json" not in names and "bin" in names, res


def test_no_pivot_uses_chroot(runtime, bundle):
    # after MS_MOVE + chroot the process root is the rootfs (readlink /proc/1/root = /)
    res = run_in(runtime, bundle, "readlink /proc/1/root; ls /", args=["--no-pivot"])
    assert res.stdout.splitlines()[0] == "/", res


@pytest.mark.parametrize("readonly", [True, False])
def test_readonly_root_in_mountinfo(runtime, bundle, readonly):
    res = run_in(runtime, bundle, "grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo; touch /x 2>/dev/null; echo $?",
                 readonly=readonly)
    line, rc = res.stdout.splitlines()
    opts = line.split()[5].split(",")
    assert ("ro" in opts) == readonly, res
    assert (rc == "0") == (not readonly), res


def test_cgroup_v1_tree(runtime, bundle):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("not a v1/hybrid host")
    hier = sorted(d for d in os.listdir("/sys/fs/cgroup")
                  if os.path.isdir(f"/sys/fs/cgroup/{d}") and not os.path.islink(f"/sys/fs/cgroup/{d}")
                  and d != "unified")
    res = run_in(runtime, bundle, "cat /proc/self/mountinfo; echo ===; ls /sys/fs/cgroup; "
                 "mkdir /sys/fs/cgroup/memory/x 2>&1; echo rc=$?")
    mi_text, rest = res.stdout.split("===\n")
    mi = parse_mountinfo(mi_text)
    top = mi["/sys/fs/cgroup"]
    assert top["fstype"] == "tmpfs", res
    if not IS_RUNC:  # runc leaves the tmpfs itself writable
        assert "ro" in top["opts"], res
    for h in hier:
        m = mi.get(f"/sys/fs/cgroup/{h}")
        assert m and m["fstype"] == "cgroup" and "ro" in m["opts"], (h, res)
        if not IS_RUNC:
            assert m["root"].endswith(bundle.id), (h, m)
    assert "rc=1" in rest and "Read-only file system" in rest, res


def test_cgroup_rw(runtime, bundle):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("not a v1/hybrid host")

    def fn(cfg):
        for m in cfg["mounts"]:
            if m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle, "grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo")
    assert " rw," in res.stdout, res


@pytest.mark.cgroup  # runs in the pure cgroup v2 guest tier (test/vm/)
def test_cgroup2_tree(runtime, bundle):
    """On a pure cgroup v2 host the cgroup mount is a cgroup2 mount rooted at
    the container's own cgroup (through its cgroup namespace), read-only."""
    if os.path.isdir("/sys/fs/cgroup/memory") or not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("not a pure cgroup v2 host")
    bundle.config(add_ns=["cgroup"])
    res = run_in(runtime, bundle, "cat /proc/self/mountinfo; echo ===; cat /proc/self/cgroup; "
                 "cat /sys/fs/cgroup/cgroup.procs | wc -l; mkdir /sys/fs/cgroup/x 2>&1; echo rc=$?")
    mi_text, rest = res.stdout.split("===\n")
    m = parse_mountinfo(mi_text)["/sys/fs/cgroup"]
    assert m["fstype"] == "cgroup2" and "ro" in m["opts"], res
    lines = rest.splitlines()
    assert lines[0] == "0::/", res  # the namespace is rooted at the container's cgroup
    assert int(lines[1]) >= 1, res  # the container's own processes are listed
    assert "rc=1" in rest and "Read-only file system" in rest, res
