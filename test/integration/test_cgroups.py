"""Cgroups: placement, limits written, removal on delete (v1/hybrid on the
host, pure v2 in the guest tier of test/vm/)."""

import json
from pathlib import Path

import pytest

from conftest import (CGROUP_V2, IS_RUNC, RUNC_CGROUP_PARENT, brig_only, cgroup_dir,
                      proc_cgroups, wait_for)

pytestmark = pytest.mark.cgroup

V1 = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]


def _check_placement(pid, want):
    lines = _v1_lines(pid)
    if CGROUP_V2:
        assert lines == {"": want}, lines
        return
    for ctrl in V1:
        assert lines.get(ctrl) == want, (ctrl, lines)


def _v1_lines(pid):
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path
    return out


def start_detached(runtime, bundle):
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    return runtime.state(bundle.id)["pid"]


def test_explicit_cgroups_path(runtime, bundle):
    path = f"/{RUNC_CGROUP_PARENT}/{bundle.id}"
    bundle.config(args=["sleep", "60"],
                  fn=lambda c: c["linux"].update(cgroupsPath=path))
    pid = start_detached(runtime, bundle)
    _check_placement(pid, path)
    if not CGROUP_V2:
        lines = _v1_lines(pid)
        assert lines.get("name=systemd") == path, lines
        assert lines.get("") == path, lines  # the unified hierarchy of a hybrid host
    dirs = [Path(m) / p.lstrip("/") for m, p in proc_cgroups(pid).items()]
    assert all(d.is_dir() for d in dirs), dirs
    runtime.run("delete", "-f", bundle.id, check=True)
    assert wait_for(lambda: not any(d.exists() for d in dirs), 5), \
        [d for d in dirs if d.exists()]


def test_resource_limits_written(runtime, bundle):
    path = f"/{RUNC_CGROUP_PARENT}/{bundle.id}"

    def res(c):
        c["linux"]["cgroupsPath"] = path
        c["linux"]["resources"].update({
            "pids": {"limit": 42},
            "memory": {"limit": 64 * 1024 * 1024},
            "cpu": {"shares": 512},
        })
    bundle.config(args=["sleep", "60"], fn=res)
    start_detached(runtime, bundle)
    if CGROUP_V2:
        d = cgroup_dir("", path)
        assert (d / "pids.max").read_text().strip() == "42"
        assert (d / "memory.max").read_text().strip() == str(64 * 1024 * 1024)
        # runc's conversion: 1 + (shares - 2) * 9999 / 262142
        assert (d / "cpu.weight").read_text().strip() == "20"
        return
    base = Path("/sys/fs/cgroup")
    assert (base / "pids" / path.lstrip("/") / "pids.max").read_text().strip() == "42"
    assert (base / "memory" / path.lstrip("/") / "memory.limit_in_bytes").read_text().strip() \
        == str(64 * 1024 * 1024)
    assert (base / "cpu" / path.lstrip("/") / "cpu.shares").read_text().strip() == "512"
    # the default spec denies all devices except runc's default allow list
    devs = (base / "devices" / path.lstrip("/") / "devices.list").read_text().split("\n")
    assert "a *:* rwm" not in devs, devs
    assert "c 1:3 rwm" in devs, devs  # /dev/null


def test_pids_limit_enforced(runtime, bundle):
    bundle.config(
        args=["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo all-forked"],
        fn=lambda c: c["linux"]["resources"].update({"pids": {"limit": 4}}))
    res = runtime.run("run", "--bundle", bundle, bundle.id, timeout=30)
    assert res.returncode == 2, res
    assert "can't fork: Resource temporarily unavailable" in res.stderr, res
    assert "all-forked" not in res.stdout


@brig_only
def test_default_cgroup_placement_is_brig_id(runtime, bundle):
    bundle.config(args=["sleep", "60"], fn=lambda c: c["linux"].pop("cgroupsPath", None))
    pid = start_detached(runtime, bundle)
    _check_placement(pid, f"/brig/{bundle.id}")
    dirs = [Path(m) / p.lstrip("/") for m, p in proc_cgroups(pid).items()]
    runtime.run("delete", "-f", bundle.id, check=True)
    assert wait_for(lambda: not any(d.exists() for d in dirs), 5), \
        [d for d in dirs if d.exists()]


@brig_only
def test_kept_hierarchy_that_is_no_cgroupfs_is_not_used(runtime, bundle, tmp_path):
    """state.json keeps the cgroup hierarchies create found, so that later
    commands read no mountinfo. One that is not a cgroup filesystem (any
    more) is not used: delete finds the hierarchies again, removes the real
    directories, and writes nothing where the record pointed."""
    bundle.config(args=["sleep", "60"])
    pid = start_detached(runtime, bundle)
    dirs = [Path(m) / p.lstrip("/") for m, p in proc_cgroups(pid).items()]
    state = Path(runtime.root) / bundle.id / "state.json"
    rec = json.loads(state.read_text())
    first = rec["cgroupHierarchies"][0]
    fake = tmp_path / "not-a-cgroupfs"
    cg = fake / proc_cgroups(pid)[first["mountpoint"]].lstrip("/")
    cg.mkdir(parents=True)
    files = {"cgroup.procs": f"{pid}\n", "tasks": f"{pid}\n", "freezer.state": "THAWED\n"}
    for name, text in files.items():
        (cg / name).write_text(text)
    first["mountpoint"] = str(fake)
    state.write_text(json.dumps(rec))
    res = runtime.run("delete", "-f", bundle.id)
    assert res.returncode == 0, res
    assert wait_for(lambda: not any(d.exists() for d in dirs), 5), [d for d in dirs if d.exists()]
    assert {name: (cg / name).read_text() for name in files} == files
