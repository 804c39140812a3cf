"""Intel RDT (linux.intelRdt, issue #4).

These hosts have no resctrl (no RDT in the CPU, none in the kernel), so the
first test is the one every host can run: asking for RDT without a resctrl
mount is one clear error that leaves nothing behind. The others run against
a stand-in directory (BRIG_RESCTRL_ROOT, read only by test builds of brig,
which also create the files the kernel would put in a new group): they check
which group brig makes or joins, what it writes to schemata and tasks, and
what delete removes. Whether a real kernel accepts the schemata is not shown
here.
"""

import os

import pytest

from conftest import BRIG, IS_RUNC, brig_only, proc_alive, wait_for


def _rdt(bundle, **rdt):
    bundle.config(args=["sleep", "100"], fn=lambda c: c["linux"].update(intelRdt=rdt))


def test_without_resctrl_one_clear_error_and_nothing_left(runtime, bundle):
    with open("/proc/self/mountinfo") as f:
        if " - resctrl " in f.read():
            pytest.skip("this host has resctrl mounted")
    _rdt(bundle, l3CacheSchema="L3:0=ff")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "RDT" in res.error, res
    if not IS_RUNC:
        assert res.error.endswith(": linux.intelRdt: Intel RDT resctrl mount point not found"), res
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert runtime.run("state", bundle.id).error == "container does not exist"


@pytest.fixture
def resctrl(runtime, tmp_path):
    if IS_RUNC or not BRIG:
        pytest.skip("the stand-in resctrl is brig's test build only")
    root = tmp_path / "resctrl"
    root.mkdir()
    (root / "tasks").write_text("")
    (root / "schemata").write_text("    L3:0=fffff;1=fffff\n    MB:0=100;1=100\n")
    (root / "mon_groups").mkdir()
    runtime.extra_env["BRIG_RESCTRL_ROOT"] = str(root)
    return root


def _init_pid(runtime, cid):
    import json
    return json.loads(runtime.run("state", cid, check=True).stdout)["pid"]


@brig_only
def test_own_group_schemata_tasks_exec_and_delete(runtime, bundle, resctrl):
    _rdt(bundle, l3CacheSchema="L3:0=ff;1=f0", memBwSchema="MB:0=70", schemata=["L2:0=f"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    group = resctrl / bundle.id
    if not (group / "tasks").exists():
        pytest.skip("brig built without -DBRIG_FAULT_INJECTION=ON (no stand-in resctrl)")
    # l3CacheSchema, then memBwSchema, then schemata (config-linux.md)
    assert (group / "schemata").read_text() == "L3:0=ff;1=f0\nMB:0=70\nL2:0=f\n"
    assert (group / "tasks").read_text() == str(_init_pid(runtime, bundle.id))
    runtime.run("start", bundle.id, check=True)
    # an exec'd process joins the group too
    (group / "tasks").write_text("")
    runtime.run("exec", "-d", "--pid-file", resctrl.parent / "exec.pid", bundle.id, "sleep", "50", check=True)
    assert (group / "tasks").read_text() == (resctrl.parent / "exec.pid").read_text().strip()
    # update --l3-cache-schema / --mem-bw-schema rewrite the group's schemata
    (group / "schemata").write_text("")  # the stand-in file is not truncated on write
    runtime.run("update", "--l3-cache-schema", "L3:0=f", "--mem-bw-schema", "MB:0=30", bundle.id, check=True)
    assert (group / "schemata").read_text() == "L3:0=f\nMB:0=30\n"
    runtime.run("delete", "--force", bundle.id, check=True)
    assert not group.exists()  # brig made it, brig removes it


@brig_only
def test_preconfigured_closid_is_joined_and_kept(runtime, bundle, resctrl):
    gold = resctrl / "gold"
    gold.mkdir()
    (gold / "mon_groups").mkdir()  # the kernel makes it in every CTRL_MON group
    (gold / "tasks").write_text("")
    (gold / "schemata").write_text("    L3:0=000ff;1=fffff\n    MB:0=100;1=100\n")
    _rdt(bundle, closID="gold", enableMonitoring=True)
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    mon = gold / "mon_groups" / bundle.id
    if not (mon / "tasks").exists():
        pytest.skip("brig built without -DBRIG_FAULT_INJECTION=ON (no stand-in resctrl)")
    # with monitoring, the process goes to its MON group inside the CLOS group
    assert (mon / "tasks").read_text() == str(_init_pid(runtime, bundle.id))
    assert (gold / "tasks").read_text() == ""
    runtime.run("delete", "--force", bundle.id, check=True)
    assert not mon.exists()          # the MON group is the container's
    assert (gold / "schemata").exists()  # the CLOS group is not


@brig_only
def test_closid_errors_leave_nothing(runtime, bundle, resctrl):
    # a closID without schemata must already exist
    _rdt(bundle, closID="missing")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.endswith(f": linux.intelRdt.closID: resctrl group {resctrl}/missing does not exist"), res
    assert not (resctrl / "missing").exists()
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))

    # an existing group must already hold the config's schemata
    gold = resctrl / "gold"
    gold.mkdir()
    (gold / "mon_groups").mkdir()  # the kernel makes it in every CTRL_MON group
    (gold / "tasks").write_text("")
    (gold / "schemata").write_text("    L3:0=fffff\n")
    _rdt(bundle, closID="gold", l3CacheSchema="L3:0=ff", enableMonitoring=True)
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "exists with other schemata" in res.error, res
    assert (gold / "schemata").read_text() == "    L3:0=fffff\n"  # untouched
    assert not list((gold / "mon_groups").iterdir())
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))

    # the same masks in the kernel's form are accepted
    (gold / "schemata").write_text("    L3:0=000ff\n")
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    runtime.run("delete", "--force", bundle.id, check=True)
    assert gold.exists()

    # the container's own group must be new: one of the same name is someone else's
    (resctrl / bundle.id).mkdir()
    (resctrl / bundle.id / "tasks").write_text("")
    _rdt(bundle, l3CacheSchema="L3:0=ff")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.endswith(f"resctrl group {resctrl}/{bundle.id} already exists (not made for this container; "
                              "set closID to join it)"), res
    assert (resctrl / bundle.id / "tasks").exists()  # left as it was
    os.unlink(resctrl / bundle.id / "tasks")
    os.rmdir(resctrl / bundle.id)

    # an invalid closID is refused before anything is made
    _rdt(bundle, closID="../escape")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "invalid intelRdt.ClosID" in res.error, res
    assert sorted(p.name for p in resctrl.iterdir()) == ["gold", "mon_groups", "schemata", "tasks"]
