"""linux.resources: every field written, limits enforced, update,
pause/resume, events, ps, and no leaked cgroup dirs -- on this v1 hybrid host
and, in the guest tier of test/vm/, on pure cgroup v2 (v1_only / v2_only pick
the assertions for the files each layout has)."""

import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (CGROUP_V2, IN_VM, IS_RUNC, RUNC_CGROUP_PARENT, SESSION, _hierarchies, brig_only,
                      cgroup_dir, v1_only, v2_controllers, v2_only, wait_for)

pytestmark = pytest.mark.cgroup

CG = Path("/sys/fs/cgroup")


def cg_path(bundle):
    return f"/{RUNC_CGROUP_PARENT}/{bundle.id}"


def cgfile(bundle, ctrl, name):
    return (cgroup_dir(ctrl, cg_path(bundle)) / name).read_text().strip()


def cpu_weight(shares):
    """runc's cpu.shares -> cpu.weight conversion."""
    return 1 + (shares - 2) * 9999 // 262142


def with_resources(bundle, resources, args=("sleep", "60"), extra=None):
    def fn(c):
        c["linux"]["cgroupsPath"] = cg_path(bundle)
        c["linux"].setdefault("resources", {}).update(resources)
        if extra:
            extra(c)
    bundle.config(args=list(args), fn=fn)


def run_d(runtime, bundle, check=True):
    return runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=check)


def block_device():
    """major:minor of a real (non-loop, non-zram) disk, for blkio rules."""
    for d in sorted(Path("/sys/block").iterdir()):
        if d.name.startswith(("loop", "zram", "ram")):
            continue
        maj, mi = (d / "dev").read_text().strip().split(":")
        return int(maj), int(mi)
    pytest.skip("no block device")


def v1_blkio_weight_file():
    """blkio.bfq.weight with BFQ, blkio.weight with CFQ (before 5.0), None
    on a kernel without either (no proportional weight at all)."""
    for name in ("blkio.bfq.weight", "blkio.weight"):
        if (CG / "blkio" / name).exists():
            return name
    return None


@v1_only
def test_every_v1_field_written(runtime, bundle):
    maj, mi = block_device()
    res = {
        "cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000, "idle": 0,
                "realtimePeriod": 900000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20,
                   "kernelTCP": 16 << 20, "swappiness": 30, "disableOOMKiller": False,
                   "useHierarchy": True},
        "pids": {"limit": 99},
        "blockIO": {"weight": 300,
                    "throttleReadBpsDevice": [{"major": maj, "minor": mi, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": maj, "minor": mi, "rate": 2097152}],
                    "throttleReadIOPSDevice": [{"major": maj, "minor": mi, "rate": 1000}],
                    "throttleWriteIOPSDevice": [{"major": maj, "minor": mi, "rate": 2000}]},
    }
    if IS_RUNC:  # runc 1.1 knows neither burst nor idle
        del res["cpu"]["burst"], res["cpu"]["idle"]
    weight = v1_blkio_weight_file()
    if weight is None:  # refused: test_v1_blkio_weight_without_a_weight_file
        del res["blockIO"]["weight"]
    with_resources(bundle, res)
    run_d(runtime, bundle)
    f = lambda c, n: cgfile(bundle, c, n)  # noqa: E731
    assert f("cpu", "cpu.shares") == "512"
    assert f("cpu", "cpu.cfs_quota_us") == "20000"
    assert f("cpu", "cpu.cfs_period_us") == "50000"
    if not IS_RUNC:
        assert f("cpu", "cpu.cfs_burst_us") == "1000"
        assert f("cpu", "cpu.idle") == "0"
    assert f("cpu", "cpu.rt_period_us") == "900000"
    assert f("cpuset", "cpuset.cpus") == "0"
    assert f("cpuset", "cpuset.mems") == "0"
    assert f("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert f("memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    assert f("memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert f("memory", "memory.kmem.tcp.limit_in_bytes") == str(16 << 20)
    assert f("memory", "memory.swappiness") == "30"
    assert "oom_kill_disable 0" in f("memory", "memory.oom_control")
    assert f("memory", "memory.use_hierarchy") == "1"
    assert f("pids", "pids.max") == "99"
    if weight:
        assert f("blkio", weight).split()[-1] == "300"
    dev = f"{maj}:{mi}"
    assert f("blkio", "blkio.throttle.read_bps_device") == f"{dev} 1048576"
    assert f("blkio", "blkio.throttle.write_bps_device") == f"{dev} 2097152"
    assert f("blkio", "blkio.throttle.read_iops_device") == f"{dev} 1000"
    assert f("blkio", "blkio.throttle.write_iops_device") == f"{dev} 2000"


@v2_only
def test_every_v2_field_written(runtime, bundle):
    maj, mi = block_device()
    ctrls = v2_controllers()
    res = {
        # idle 1 would zero cpu.weight: it is checked on its own below
        "cpu": {"shares": 512, "quota": 20000, "period": 50000, "burst": 1000, "idle": 0,
                "cpus": "0", "mems": "0"},
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "pids": {"limit": 99},
        "blockIO": {"weight": 300,
                    "throttleReadBpsDevice": [{"major": maj, "minor": mi, "rate": 1048576}],
                    "throttleWriteBpsDevice": [{"major": maj, "minor": mi, "rate": 2097152}],
                    "throttleReadIOPSDevice": [{"major": maj, "minor": mi, "rate": 1000}],
                    "throttleWriteIOPSDevice": [{"major": maj, "minor": mi, "rate": 2000}]},
        "unified": {"memory.high": str(48 << 20), "pids.max": "77"},
    }
    huge = "hugetlb" in ctrls and Path("/sys/kernel/mm/hugepages/hugepages-2048kB").is_dir()
    if huge:
        res["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 21}]
    if IS_RUNC:  # runc 1.1 knows neither burst nor idle
        del res["cpu"]["burst"], res["cpu"]["idle"]
    with_resources(bundle, res)
    run_d(runtime, bundle)
    f = lambda n: cgfile(bundle, "", n)  # noqa: E731
    assert f("cpu.weight") == str(cpu_weight(512))
    assert f("cpu.max") == "20000 50000"
    if not IS_RUNC:
        assert f("cpu.max.burst") == "1000"
        assert f("cpu.idle") == "0"
    assert f("cpuset.cpus") == "0"
    assert f("cpuset.mems") == "0"
    assert f("memory.max") == str(64 << 20)
    assert f("memory.low") == str(32 << 20)
    assert f("memory.swap.max") == str(32 << 20)  # v2 limits swap alone: (mem+swap) - mem
    assert f("memory.high") == str(48 << 20)      # from unified
    assert f("pids.max") == "77"                  # unified has the last word
    dev = f"{maj}:{mi}"
    if (cgroup_dir("", cg_path(bundle)) / "io.bfq.weight").exists():
        assert f("io.bfq.weight").split("\n")[0].split()[-1] == "300"
    else:  # io.weight (iocost): 10..1000 mapped onto 1..10000
        assert f("io.weight").split("\n")[0] == f"default {1 + (300 - 10) * 9999 // 990}"
    assert f("io.max") == f"{dev} rbps=1048576 wbps=2097152 riops=1000 wiops=2000"
    if huge:
        assert f("hugetlb.2MB.max") == str(4 << 21)


@v2_only
def test_v2_unset_fields_keep_defaults(runtime, bundle):
    with_resources(bundle, {"memory": {"limit": -1}, "cpu": {"quota": -1}})
    run_d(runtime, bundle)
    assert cgfile(bundle, "", "memory.max") == "max"
    assert cgfile(bundle, "", "memory.swap.max") == "max"
    assert cgfile(bundle, "", "cpu.max") == "max 100000"
    assert cgfile(bundle, "", "cpu.weight") == "100"
    assert cgfile(bundle, "", "pids.max") == "max"


@v1_only
def test_oom_killer_disabled(runtime, bundle):
    with_resources(bundle, {"memory": {"limit": 64 << 20, "disableOOMKiller": True}})
    run_d(runtime, bundle)
    assert "oom_kill_disable 1" in cgfile(bundle, "memory", "memory.oom_control")


def test_memory_unlimited_sets_memsw_unlimited(runtime, bundle):
    with_resources(bundle, {"memory": {"limit": -1}})
    run_d(runtime, bundle)
    if CGROUP_V2:
        assert cgfile(bundle, "memory", "memory.max") == "max"
        assert cgfile(bundle, "memory", "memory.swap.max") == "max"
        return
    assert int(cgfile(bundle, "memory", "memory.limit_in_bytes")) > 1 << 60
    assert int(cgfile(bundle, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


# What each layout refuses, with the error naming the field.
V1_REFUSED = [
    ({"network": {"classID": 42}},
     "linux.resources.network.classID: cgroup controller net_cls is not mounted"),
    ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
     "linux.resources.network.priorities[0].priority: cgroup controller net_prio is not mounted"),
    ({"blockIO": {"leafWeight": 100}},
     "linux.resources.blockIO.leafWeight: blkio.leaf_weight: not supported by this kernel"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]},
     "linux.resources.hugepageLimits[0].limit: cgroup controller hugetlb is not mounted"),
    ({"unified": {"memory.high": "1000000"}},
     "linux.resources.unified: invalid configuration: cannot use unified on cgroup v1"),
]
V2_REFUSED = [
    ({"network": {"classID": 42}},
     "linux.resources.network: net_cls and net_prio (classID, priorities) have no cgroup v2 equivalent"),
    ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
     "linux.resources.network: net_cls and net_prio (classID, priorities) have no cgroup v2 equivalent"),
    ({"cpu": {"realtimeRuntime": 1000}},
     "linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported on cgroup v2"),
    ({"unified": {"../memory.max": "1"}},
     'linux.resources.unified.../memory.max: unified resource "../memory.max" must be a file name'),
    ({"unified": {"cgroup.procs": "1"}},
     'linux.resources.unified.cgroup.procs: unified resource "cgroup.procs" is managed by the runtime'),
    ({"unified": {"net_cls.classid": "1"}},
     'unified resource "net_cls.classid" can\'t be set: controller "net_cls" not available'),
    ({"unified": {"memory.nosuchfile": "1"}},
     "linux.resources.unified.memory.nosuchfile: memory.nosuchfile: not supported by this kernel"),
]


@brig_only
@pytest.mark.parametrize("res,msg", V2_REFUSED if CGROUP_V2 else V1_REFUSED)
def test_unenforceable_field_is_an_error(runtime, bundle, res, msg):
    m = re.search(r"cgroup controller (\w+) is not mounted", msg)
    ctrl = m.group(1) if m else None
    if ctrl and (CG / ctrl).is_dir():
        pytest.skip(f"{ctrl} is mounted on this host (e.g. by the benchmark harness)")
    with_resources(bundle, res)
    r = run_d(runtime, bundle, check=False)
    assert r.returncode == 1, r
    assert msg in r.error, r
    assert runtime.status(bundle.id) is None  # nothing left behind


@brig_only
@v1_only
def test_v1_blkio_weight_without_a_weight_file(runtime, bundle):
    """A kernel without BFQ (or CFQ) has no proportional weight: the weight is
    refused, as runc fails to open the file, rather than silently dropped."""
    if v1_blkio_weight_file():
        pytest.skip("this kernel has a blkio weight file: test_every_v1_field_written sets it")
    with_resources(bundle, {"blockIO": {"weight": 300}})
    r = run_d(runtime, bundle, check=False)
    assert r.returncode == 1, r
    assert "linux.resources.blockIO.weight: blkio.weight: not supported by this kernel" in r.error, r
    assert runtime.status(bundle.id) is None
    assert not cgroup_dir("blkio", cg_path(bundle)).exists()


def test_shares_out_of_range(runtime, bundle):
    with_resources(bundle, {"cpu": {"shares": 1 << 20}})
    r = run_d(runtime, bundle, check=False)
    assert r.returncode == 1, r
    if CGROUP_V2:  # converted to cpu.weight 39997, beyond the kernel's 10000
        assert "cpu.weight" in r.error, r
        return
    assert "the maximum allowed cpu-shares is 262144" in r.error


def test_events_stats_with_an_interface_name_that_is_not_utf8(runtime, bundle):
    """Interface names come from the container's own /proc/PID/net/dev, and
    a container with CAP_NET_ADMIN names its devices with any bytes: brig's
    JSON writer threw on one and `events` aborted. Now the bad bytes print as
    U+FFFD (runc prints no interfaces at all)."""
    def caps(c):
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append("CAP_NET_ADMIN")
    with_resources(bundle, {}, args=["sh", "-c", "/bin/busybox ip link set lo down && "
                                     "/bin/busybox ip link set lo name \"$(printf '\\377\\376')\" && sleep 60"],
                   extra=caps)
    run_d(runtime, bundle)
    assert wait_for(lambda: b"\xff\xfe" in Path(f"/proc/{runtime.state(bundle.id)['pid']}/net/dev").read_bytes(), 5)
    res = runtime.run("events", "--stats", bundle.id, check=True)
    ev = json.loads(res.stdout)
    assert ev["type"] == "stats" and ev["id"] == bundle.id, ev
    if not IS_RUNC:
        names = [i["name"] for i in ev["data"]["network_interfaces"]]
        assert "\ufffd\ufffd" in names, names
    runtime.run("delete", "--force", bundle.id, check=True)


def test_memory_hog_oom_killed_and_reported(runtime, bundle):
    (bundle.rootfs / "bin" / "dd").symlink_to("busybox")
    # The hog starts only once `events` runs (its first stats line): a kill
    # before it watches would go unseen (a slow emulated guest got there first).
    go = bundle.rootfs / "tmp" / "go"
    with_resources(bundle, {"memory": {"limit": 32 << 20, "swap": 32 << 20}},
                   args=["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                                     "dd if=/dev/zero of=/dev/null bs=200M count=1; "
                                     "echo rc=$? > /tmp/rc; sleep 30"],
                   extra=lambda c: c["root"].update(readonly=False))
    run_d(runtime, bundle)
    p = subprocess.Popen(runtime.cmd("events", "--interval", "1s", bundle.id),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=runtime.env())
    try:
        seen = []
        deadline = time.monotonic() + (60 if IN_VM else 15)
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            ev = json.loads(line)
            assert ev["id"] == bundle.id
            seen.append(ev["type"])
            go.touch()
            if ev["type"] == "oom":
                break
        assert "oom" in seen, seen
    finally:
        p.kill()
        p.wait()
    # The shell's `>` makes the file before `echo` writes to it: wait for the line.
    rc = bundle.rootfs / "tmp" / "rc"
    assert wait_for(lambda: rc.exists() and rc.read_text().endswith("\n"), 5)
    assert rc.read_text().strip() == "rc=137"  # SIGKILL
    if CGROUP_V2:
        assert "oom_kill 1" in cgfile(bundle, "memory", "memory.events").splitlines()
    else:
        assert "oom_kill 1" in cgfile(bundle, "memory", "memory.oom_control")


def test_fork_bomb_stopped_by_pids_limit(runtime, bundle):
    with_resources(bundle, {"pids": {"limit": 10}},
                   args=["sh", "-c", "b() { b | b & }; b; sleep 2; echo done"])
    res = runtime.run("run", "--bundle", bundle, bundle.id, timeout=30)
    assert "can't fork" in res.stderr, res


def _node(bundle, name, major, minor, kind=stat.S_IFCHR):
    path = bundle.rootfs / "tmp" / name
    os.mknod(path, 0o666 | kind, os.makedev(major, minor))
    return f"/tmp/{name}"


def test_denied_device_cannot_be_opened(runtime, bundle):
    # /dev/loop0 (b 7:0) opens without capabilities; the default list leaves it out
    kmsg = _node(bundle, "loop", 7, 0, stat.S_IFBLK)
    null = _node(bundle, "null2", 1, 3)
    bundle.config(args=["sh", "-c", f"head -c 1 {kmsg} >/dev/null && echo kmsg-open; "
                                    f"echo x > {null} && echo null-open"],
                  fn=lambda c: c["linux"].update(cgroupsPath=cg_path(bundle)))
    res = runtime.run("run", "--bundle", bundle, bundle.id, timeout=30)
    assert "null-open" in res.stdout, res
    assert "kmsg-open" not in res.stdout, res
    assert "Operation not permitted" in res.stderr, res


def test_allowed_device_can_be_opened(runtime, bundle):
    kmsg = _node(bundle, "loop", 7, 0, stat.S_IFBLK)
    bundle.config(args=["sh", "-c", f"head -c 1 {kmsg} >/dev/null && echo kmsg-open"],
                  fn=lambda c: c["linux"].update(
                      cgroupsPath=cg_path(bundle),
                      resources={"devices": [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "b", "major": 7,
                                              "minor": 0, "access": "r"}]}))
    res = runtime.run("run", "--bundle", bundle, bundle.id, timeout=30)
    assert "kmsg-open" in res.stdout, res


def test_update_changes_files(runtime, bundle):
    with_resources(bundle, {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}})
    run_d(runtime, bundle)
    runtime.run("update", "--memory", "128m", "--pids-limit", "30", "--cpu-share", "256",
                "--cpu-quota", "30000", "--cpu-period", "60000", bundle.id, check=True)
    if CGROUP_V2:
        _check_update_v2(runtime, bundle)
        return
    assert cgfile(bundle, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert cgfile(bundle, "pids", "pids.max") == "30"
    assert cgfile(bundle, "cpu", "cpu.shares") == "256"
    assert cgfile(bundle, "cpu", "cpu.cfs_quota_us") == "30000"
    assert cgfile(bundle, "cpu", "cpu.cfs_period_us") == "60000"
    # --resources from stdin; a shorter period than the current quota allows
    runtime.run("update", "--resources", "-", bundle.id, check=True,
                input=json.dumps({"cpu": {"quota": 5000, "period": 10000},
                                  "memory": {"limit": 256 << 20, "swap": 512 << 20}}))
    assert cgfile(bundle, "cpu", "cpu.cfs_quota_us") == "5000"
    assert cgfile(bundle, "cpu", "cpu.cfs_period_us") == "10000"
    assert cgfile(bundle, "memory", "memory.limit_in_bytes") == str(256 << 20)
    assert cgfile(bundle, "memory", "memory.memsw.limit_in_bytes") == str(512 << 20)


def _check_update_v2(runtime, bundle):
    assert cgfile(bundle, "", "memory.max") == str(128 << 20)
    assert cgfile(bundle, "", "pids.max") == "30"
    assert cgfile(bundle, "", "cpu.weight") == str(cpu_weight(256))
    assert cgfile(bundle, "", "cpu.max") == "30000 60000"
    runtime.run("update", "--resources", "-", bundle.id, check=True,
                input=json.dumps({"cpu": {"quota": 5000, "period": 10000},
                                  "memory": {"limit": 256 << 20, "swap": 512 << 20},
                                  "unified": {"memory.high": str(200 << 20)}}))
    assert cgfile(bundle, "", "cpu.max") == "5000 10000"
    assert cgfile(bundle, "", "memory.max") == str(256 << 20)
    assert cgfile(bundle, "", "memory.swap.max") == str(256 << 20)
    assert cgfile(bundle, "", "memory.high") == str(200 << 20)
    assert cgfile(bundle, "", "pids.max") == "30"  # untouched by the second update


def test_update_errors(runtime, bundle):
    r = runtime.run("update", "--memory", "1m", "nosuch", check=False)
    assert r.returncode == 1 and r.error == "container does not exist", r
    with_resources(bundle, {}, args=["true"])
    runtime.run("run", "--keep", "--bundle", bundle, bundle.id, check=True)
    r = runtime.run("update", "--memory", "1m", bundle.id, check=False)
    assert r.returncode == 1 and r.error == "container not running", r
    r = runtime.run("update", "--memory", "abc", bundle.id, check=False)
    assert r.error == "invalid value for memory: invalid size: 'abc'", r
    r = runtime.run("update", "--cpu-share", "x", bundle.id, check=False)
    assert r.error == 'invalid value for cpu-share: strconv.ParseUint: parsing "x": invalid syntax', r
    r = runtime.run("update", "--l3-cache-schema", "x", bundle.id, check=False)
    assert r.error == "Intel RDT/CAT: l3 cache schema is not enabled", r


def test_update_with_a_value_that_is_not_utf8_fails_in_one_line(runtime, bundle):
    """A flag's bytes that are not UTF-8 go into the resources document that
    is read as JSON text: its dump threw, and brig aborted (exit 134, a core).
    Now the value reaches the cgroup write (as U+FFFD) and fails there, as
    runc's does, and the container keeps its cpuset."""
    with_resources(bundle, {})
    run_d(runtime, bundle)
    before = cgfile(bundle, "cpuset", "cpuset.cpus") if not CGROUP_V2 else None
    r = runtime.run("update", "--cpuset-cpus", os.fsdecode(b"\xff"), bundle.id, check=False)
    assert r.returncode == 1, r
    # One line (runc warns first that it could not set the old values back).
    last = r.stderr.strip().splitlines()[-1] if IS_RUNC else r.error
    assert "internal error" not in last, r
    if not CGROUP_V2:  # v2: the cpuset controller may not be enabled for the container
        assert last.endswith('cpuset.cpus: invalid argument"') or last.endswith("cpuset.cpus: invalid argument"), r
    if before is not None:
        assert cgfile(bundle, "cpuset", "cpuset.cpus") == before
    runtime.run("update", "--pids-limit", "7", bundle.id, check=True)


@v1_only  # v2 takes any memory.max and lets the OOM killer reclaim
def test_update_memory_below_usage(runtime, bundle):
    with_resources(bundle, {})
    run_d(runtime, bundle)
    r = runtime.run("update", "--memory", "1", bundle.id, check=False)
    assert r.returncode == 1, r
    assert r.error.startswith("unable to set memory limit to 1 (current usage: "), r


def test_pause_resume(runtime, bundle):
    with_resources(bundle, {})
    run_d(runtime, bundle)
    runtime.run("pause", bundle.id, check=True)
    if CGROUP_V2:
        assert cgfile(bundle, "", "cgroup.freeze") == "1"
        assert "frozen 1" in cgfile(bundle, "", "cgroup.events").splitlines()
    else:
        assert cgfile(bundle, "freezer", "freezer.state") == "FROZEN"
    assert runtime.status(bundle.id) == "paused"
    listed = json.loads(runtime.run("list", "--format", "json", check=True).stdout)
    assert [c["status"] for c in listed] == ["paused"]
    r = runtime.run("pause", bundle.id, check=False)
    assert r.error == "container not running", r
    r = runtime.run("delete", bundle.id, check=False)
    assert r.error == f"cannot delete container {bundle.id} that is not stopped: paused", r
    runtime.run("resume", bundle.id, check=True)
    if CGROUP_V2:
        assert cgfile(bundle, "", "cgroup.freeze") == "0"
        assert "frozen 0" in cgfile(bundle, "", "cgroup.events").splitlines()
    else:
        assert cgfile(bundle, "freezer", "freezer.state") == "THAWED"
    assert runtime.status(bundle.id) == "running"
    r = runtime.run("resume", bundle.id, check=False)
    assert r.error == "container not paused", r


def test_pause_stopped_container(runtime, bundle):
    with_resources(bundle, {}, args=["true"])
    runtime.run("run", "--keep", "--bundle", bundle, bundle.id, check=True)
    r = runtime.run("pause", bundle.id, check=False)
    assert r.returncode == 1 and r.error == "container not running", r
    r = runtime.run("resume", bundle.id, check=False)
    assert r.returncode == 1 and r.error == "container not paused", r
    r = runtime.run("pause", "nosuch", check=False)
    assert r.error == "container does not exist", r


def test_kill_paused_container(runtime, bundle):
    with_resources(bundle, {})
    run_d(runtime, bundle)
    runtime.run("pause", bundle.id, check=True)
    runtime.run("kill", bundle.id, "KILL", check=True)
    assert runtime.wait_status(bundle.id, "stopped", 5), runtime.status(bundle.id)


def test_delete_force_paused_container(runtime, bundle):
    with_resources(bundle, {})
    run_d(runtime, bundle)
    runtime.run("pause", bundle.id, check=True)
    runtime.run("delete", "-f", bundle.id, check=True, timeout=20)
    assert runtime.status(bundle.id) is None
    assert not cgroup_dir("freezer", cg_path(bundle)).exists()


def test_paused_created_container(runtime, bundle):
    with_resources(bundle, {})
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    runtime.run("pause", bundle.id, check=True)
    assert runtime.status(bundle.id) == "paused"
    runtime.run("resume", bundle.id, check=True)
    assert runtime.status(bundle.id) == "created"


@brig_only  # crun 1.8.1 hangs here; runc's behaviour differs between versions
def test_run_into_prefrozen_cgroup(runtime, bundle):
    d = cgroup_dir("freezer", cg_path(bundle))
    d.mkdir(parents=True)
    if CGROUP_V2:
        (d / "cgroup.freeze").write_text("1")
    else:
        (d / "freezer.state").write_text("FROZEN")
    with_resources(bundle, {})
    run_d(runtime, bundle)  # must not hang (the wrapper times out at 30 s)
    assert runtime.status(bundle.id) == "running"


def test_events_stats(runtime, bundle):
    with_resources(bundle, {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    run_d(runtime, bundle)
    r = runtime.run("events", "--stats", bundle.id, check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == bundle.id
    data = ev["data"]
    for k in ("cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"):
        assert k in data, k
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"] == {"current": 1, "limit": 50}
    assert data["cpu"]["usage"]["total"] > 0
    assert "raw" in data["memory"]


def test_events_stopped_and_interval_errors(runtime, bundle):
    with_resources(bundle, {}, args=["true"])
    runtime.run("run", "--keep", "--bundle", bundle, bundle.id, check=True)
    r = runtime.run("events", "--stats", bundle.id, check=False)
    assert r.returncode == 1 and r.error == f"container with id {bundle.id} is not running", r


def test_events_interval_prints_stats(runtime, bundle):
    with_resources(bundle, {})
    run_d(runtime, bundle)
    p = subprocess.Popen(runtime.cmd("events", "--interval", "200ms", bundle.id),
                         stdout=subprocess.PIPE, text=True, env=runtime.env())
    try:
        lines = [p.stdout.readline() for _ in range(3)]
    finally:
        p.kill()
        p.wait()
    assert all(json.loads(l)["type"] == "stats" for l in lines), lines


def test_ps(runtime, bundle):
    with_resources(bundle, {}, args=["sh", "-c", "sleep 61 & sleep 60"])
    run_d(runtime, bundle)
    pid = runtime.state(bundle.id)["pid"]
    r = runtime.run("ps", "--format", "json", bundle.id, check=True)
    pids = json.loads(r.stdout)
    assert pid in pids and len(pids) == 2, r
    r = runtime.run("ps", bundle.id, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"], r
    assert len(lines) == 3, r
    assert any("sleep 61" in l for l in lines)
    r = runtime.run("ps", bundle.id, "--", "-o", "pid,comm", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"], r
    assert sorted(int(l.split()[0]) for l in lines[1:]) == sorted(pids)


def _count_cgroup_dirs(parent):
    """Directories under `parent` in every hierarchy (other test runs on the
    machine make and remove cgroups elsewhere meanwhile)."""
    n = 0
    for h in _hierarchies():
        if (h / parent).is_dir():
            for _, dirs, _ in os.walk(h / parent):
                n += len(dirs)
    return n


def test_no_cgroup_dirs_leak_over_100_cycles(runtime, bundle):
    parent = f"{bundle.id}-parent"
    with_resources(bundle, {"memory": {"limit": 64 << 20}, "pids": {"limit": 10}})
    bundle.set_config(lambda c: c["linux"].__setitem__("cgroupsPath", f"/{parent}/{bundle.id}"))
    try:
        # the parent directory is kept; make it exist before counting
        runtime.run("create", "--bundle", bundle, bundle.id, check=True)
        runtime.run("delete", "-f", bundle.id, check=True)
        before = _count_cgroup_dirs(parent)
        assert before == 0
        # the emulated (TCG) guest of test/vm/ is ~20x slower: fewer cycles
        for _ in range(10 if IN_VM else 100):
            runtime.run("create", "--bundle", bundle, bundle.id, check=True)
            assert _count_cgroup_dirs(parent) > 0
            runtime.run("delete", bundle.id, check=True)
        assert _count_cgroup_dirs(parent) == before
    finally:
        for h in _hierarchies():
            if (h / parent).is_dir():
                os.rmdir(h / parent)


@brig_only  # runc joins first and then fails to set the limit: other wording
def test_memory_limit_below_init_needs_names_oom(runtime, bundle):
    """A memory limit the init cannot live with: create fails naming the OOM
    kill, not only "killed by signal 9" (seen through containerd's ctr)."""
    with_resources(bundle, {"memory": {"limit": 4096}})
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.startswith("brig create failed: unable to start container process: "
                                "init killed by signal 9: OOM-killed in cgroup "), res
    assert "linux.resources.memory.limit too low?" in res.error
    assert runtime.run("list", "-q", check=True).stdout == ""


@pytest.fixture
def extra_v1_hierarchies():
    """net_cls, net_prio and hugetlb are in this kernel but not mounted on
    these hosts: mount each missing one as a v1 hierarchy, as an admin would,
    for one test (which deletes its containers before the unmount)."""
    if CGROUP_V2:
        pytest.skip("v1 hierarchies")
    known = Path("/proc/cgroups").read_text()
    mounted = []
    for ctrl in ("net_cls", "net_prio", "hugetlb"):
        d = CG / ctrl
        if d.is_dir() or f"\n{ctrl}\t" not in known:
            continue
        d.mkdir()
        r = subprocess.run(["mount", "-t", "cgroup", "-o", ctrl, "cgroup", str(d)], capture_output=True, text=True)
        if r.returncode != 0:
            d.rmdir()
            continue
        mounted.append(d)
    yield [d.name for d in mounted]
    for d in mounted:
        parent = d / RUNC_CGROUP_PARENT
        if parent.is_dir():
            os.rmdir(parent)
        subprocess.run(["umount", str(d)], check=True)
        d.rmdir()


def test_v1_net_cls_net_prio_hugetlb_written(runtime, bundle, extra_v1_hierarchies):
    for ctrl in ("net_cls", "net_prio", "hugetlb"):
        if not (CG / ctrl).is_dir():
            pytest.skip(f"{ctrl} cannot be mounted here")
    res = {"network": {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 5}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]}
    with_resources(bundle, res)
    try:
        run_d(runtime, bundle)
        assert cgfile(bundle, "net_cls", "net_cls.classid") == str(0x100001)
        assert "lo 5" in cgfile(bundle, "net_prio", "net_prio.ifpriomap").splitlines()
        assert cgfile(bundle, "hugetlb", "hugetlb.2MB.limit_in_bytes") == str(4 << 21)
        # the container's processes are in each of them
        pid = runtime.state(bundle.id)["pid"]
        procs = Path(f"/proc/{pid}/cgroup").read_text()
        for ctrl in ("net_cls", "net_prio", "hugetlb"):
            assert any(ctrl in line.split(":")[1].split(",") and line.endswith(cg_path(bundle))
                       for line in procs.splitlines()), procs
    finally:
        runtime.run("delete", "-f", bundle.id)
    for ctrl in ("net_cls", "net_prio", "hugetlb"):
        assert not (CG / ctrl / cg_path(bundle).lstrip("/")).exists()
