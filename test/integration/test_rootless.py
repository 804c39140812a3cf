"""Rootless: brig run by an unprivileged user (here nobody, via setpriv) on a
bundle from `brig spec --rootless`, as podman and people run runc rootless.
The container has its own user namespace mapping that user to root; brig may
not make its cgroup, so (runc's rule for --rootless, auto for an
unprivileged user) it has none: no limits, no pause, and its processes are
those of its pid namespace."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BRIG, _find_cgroup_dirs, brig_only, wait_for

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def rootless(runtime, bundle, tmp_path):
    """runtime runs every command as nobody; bundle is a rootless one."""
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    subprocess.run([BRIG, "spec", "--rootless", "--bundle", str(spec_dir)], check=True, timeout=30)
    cfg = json.loads((spec_dir / "config.json").read_text())
    ids = [{"containerID": 0, "hostID": NOBODY, "size": 1}]
    cfg["linux"]["uidMappings"] = cfg["linux"]["gidMappings"] = ids
    old = bundle.load()
    cfg["process"]["env"] = old["process"]["env"]  # the leak check's marker
    cfg["process"]["terminal"] = False
    cfg["root"]["readonly"] = False
    bundle.save(cfg)
    bundle.open_for_mapped_root()
    root = tmp_path / "state"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    runtime.prefix = AS_NOBODY
    return bundle


def test_rootless_run(runtime, rootless):
    rootless.config(args=["sh", "-c", "id -u; cat /proc/self/uid_map; ls /sys/fs/cgroup | head -1"])
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0] == "0", res
    assert lines[1].split() == ["0", str(NOBODY), "1"], res
    assert lines[2:], "the cgroup mount is empty"
    assert not _find_cgroup_dirs({rootless.id})


@brig_only
def test_rootless_lifecycle_without_a_cgroup(runtime, rootless):
    rootless.config(args=["sleep", "60"])
    runtime.run("run", "-d", "--bundle", rootless, rootless.id, check=True)
    state = json.loads((Path(runtime.root) / rootless.id / "state.json").read_text())
    assert state.get("noCgroup") is True and "cgroupHierarchies" not in state, state
    assert not _find_cgroup_dirs({rootless.id})
    pid = runtime.state(rootless.id)["pid"]
    # exec enters every namespace from inside the user namespace
    res = runtime.run("exec", rootless.id, "sh", "-c", "id -u; readlink /proc/self/ns/pid")
    assert res.returncode == 0, res
    assert res.stdout.split() == ["0", os.readlink(f"/proc/{pid}/ns/pid")], res
    runtime.run("exec", "-d", rootless.id, "sleep", "61", check=True)
    # ps: the processes of the container's pid namespace
    res = runtime.run("ps", "--format", "json", rootless.id)
    assert res.returncode == 0, res
    pids = json.loads(res.stdout)
    assert pid in pids and len(pids) == 2, res
    res = runtime.run("pause", rootless.id)
    assert res.returncode != 0, res
    assert res.error.endswith("the container has no cgroup (rootless): it cannot be paused"), res
    runtime.run("kill", "--all", rootless.id, "KILL", check=True)
    assert wait_for(lambda: runtime.state(rootless.id)["status"] == "stopped", 10)
    assert all(not os.path.exists(f"/proc/{p}") or "Z" in open(f"/proc/{p}/stat").read().split(")")[1][:3]
               for p in pids)
    runtime.run("delete", rootless.id, check=True)
    assert not os.path.exists(Path(runtime.root) / rootless.id)


@brig_only
def test_rootless_false_needs_the_cgroup(runtime, rootless):
    """--rootless=false: a cgroup we may not make is an error, nothing is left."""
    rootless.config(args=["true"])
    res = runtime.run("run", "--bundle", rootless, rootless.id, global_args=["--rootless=false"])
    assert res.returncode != 0, res
    assert "permission denied" in res.error and rootless.id in res.error, res
    assert not os.path.exists(Path(runtime.root) / rootless.id)


@brig_only
def test_rootless_bad_value(runtime, rootless):
    """runc takes any value until it needs one; brig refuses it up front."""
    res = runtime.run("list", global_args=["--rootless=maybe"])
    assert res.returncode != 0, res
    assert res.error.endswith('invalid --rootless value "maybe": true, false or auto'), res


@brig_only
def test_rootless_state_under_xdg_runtime_dir(runtime, rootless, tmp_path):
    """Without --root, an unprivileged user's state goes to $XDG_RUNTIME_DIR/brig."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    os.chown(xdg, NOBODY, NOBODY)
    env = runtime.env({"XDG_RUNTIME_DIR": str(xdg)})
    rootless.config(args=["sleep", "60"])
    argv = [*AS_NOBODY, BRIG]
    try:
        subprocess.run([*argv, "run", "-d", "--bundle", str(rootless.path), rootless.id], env=env, check=True,
                       timeout=30, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        assert (xdg / "brig" / rootless.id / "state.json").exists()
        out = subprocess.run([*argv, "list", "-q"], env=env, capture_output=True, text=True, timeout=30)
        assert out.stdout.split() == [rootless.id], out
    finally:
        subprocess.run([*argv, "delete", "-f", rootless.id], env=env, timeout=30)
    assert not (xdg / "brig" / rootless.id).exists()
