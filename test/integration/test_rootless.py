"""Rootless: brig run by an unprivileged user (here nobody, via setpriv) on a
bundle from `brig spec --rootless`, as podman and people run runc rootless.
The container has its own user namespace mapping that user to root; brig may
not make its cgroup, so (runc's rule for --rootless, auto for an
unprivileged user) it has none: no limits, no pause, and its processes are
those of its pid namespace."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BRIG, IS_RUNC, _find_cgroup_dirs, brig_only, wait_for

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


def test_rootless_network_namespace_has_lo_up(runtime, rootless):
    """A network namespace of its own (in its user namespace): lo is up."""
    rootless.config(args=["busybox", "ip", "-o", "link", "show", "lo"], add_ns=["network"])
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode == 0, res
    assert ",UP" in res.stdout or "<UP" in res.stdout, res


@pytest.mark.parametrize("asks", ["cgroupsPath", "pids limit"])
def test_rootless_cgroup_asked_for_is_an_error(runtime, rootless, asks):
    """runc does without a cgroup only when the config asks for none: a
    cgroupsPath or a limit it may not make is an error, and nothing is left."""
    def ask(c):
        if asks == "cgroupsPath":
            c["linux"]["cgroupsPath"] = "/brigtest-rootless/" + rootless.id
        else:
            c["linux"]["resources"] = {"pids": {"limit": 50}}
    rootless.config(args=["true"], fn=ask)
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode != 0, res
    if not IS_RUNC:  # runc: "cannot set pids limit: container could not join or create cgroup", and a warning
        assert "permission denied" in res.error, res
    assert not (Path(runtime.root) / rootless.id).exists()
    assert not _find_cgroup_dirs({rootless.id})


def test_rootless_oom_score_adj(runtime, rootless):
    """init writes its own oom_score_adj while it may (before it stops
    being dumpable), as runc's does."""
    rootless.config(args=["cat", "/proc/self/oom_score_adj"], fn=lambda c: c["process"].update(oomScoreAdj=100))
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "100", res


def test_rootless_zero_limits_ask_for_nothing(runtime, rootless):
    """Zero and empty values write nothing (Docker sends such), so runc runs
    without a cgroup: so does brig."""
    rootless.config(args=["true"], fn=lambda c: c["linux"].update(resources={
        "memory": {"disableOOMKiller": False}, "pids": {"limit": 0}, "cpu": {"shares": 0},
        "blockIO": {"weight": 0}, "devices": [{"allow": False, "access": "rwm"}]}))
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode == 0, res


@brig_only
def test_rootless_created_container_is_its_init(runtime, rootless):
    """Before its exec, init is not dumpable (its pid namespace link cannot
    be read): ps shows it, and kill --all reaches it."""
    rootless.config(args=["sleep", "60"])
    runtime.run("create", "--bundle", rootless, rootless.id, check=True)
    pid = runtime.state(rootless.id)["pid"]
    res = runtime.run("ps", "--format", "json", rootless.id)
    assert res.returncode == 0 and json.loads(res.stdout) == [pid], res
    runtime.run("kill", "--all", rootless.id, "KILL", check=True)
    assert wait_for(lambda: runtime.state(rootless.id)["status"] == "stopped", 10)
    runtime.run("delete", rootless.id, check=True)


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


RACE = r"""
A="setpriv --reuid=65534 --regid=65534 --clear-groups"
B="$A $BRIG --root $ROOT"
$B run -d --bundle "$BUNDLE" "$ID" || exit 1
P=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$ROOT/$ID/state.json")
for i in $(seq 100); do $B state "$ID" | grep -q '"stopped"' && break; sleep 0.05; done
# Without pidfs (kernel < 6.9) only the start time tells init from the next
# process, and both may start in one clock tick: wait one out. With pidfs the
# inode tells them apart, and the pid goes on at once, in the same tick as
# often as not.
F=$(grep -c '"pidIno"' "$ROOT/$ID/state.json")
[ "$F" = 1 ] || sleep 0.02
echo $((P-1)) > /proc/sys/kernel/ns_last_pid
$A sleep 100 & S=$!
echo "init=$P other=$S pidfs=$F"
$B ps --format json "$ID"
$B delete "$ID"
sleep 0.2
kill -0 $S 2>/dev/null && echo other-alive
kill $S 2>/dev/null
"""


@brig_only
def test_rootless_pid_of_a_stopped_init_is_nobody_elses(runtime, rootless, tmp_path):
    """A container without a cgroup and without its own pid namespace is its
    init alone: once init is gone, a process that got its pid is not the
    container's, for ps or for delete. Run in a pid namespace of the test's,
    where the pid can be handed on (ns_last_pid)."""
    def no_pidns(c):
        c["process"]["args"] = ["true"]
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/proc"]  # no proc of its own to mount
        c["linux"].pop("maskedPaths", None)
        c["linux"].pop("readonlyPaths", None)
    rootless.set_config(no_pidns)
    script = tmp_path / "race.sh"
    script.write_text(RACE)
    env = runtime.env({"BRIG": BRIG, "ROOT": runtime.root, "BUNDLE": str(rootless.path), "ID": rootless.id})
    res = subprocess.run(["unshare", "-p", "-f", "--mount-proc", "sh", str(script)], env=env,
                         capture_output=True, text=True, timeout=60)
    lines = res.stdout.splitlines()
    init, other = (w.split("=")[1] for w in lines[0].split()[:2])
    assert init == other, f"the pid was not handed on: {res}"
    major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    assert ("pidfs=1" in lines[0]) == ((major, minor) >= (6, 9)), f"pidIno in state.json on pidfs kernels: {res}"
    assert lines[1] == "[]", res
    assert lines[2] == "other-alive", res
    assert not (Path(runtime.root) / rootless.id).exists()


SUBIDS = ("/etc/subuid", "/etc/subgid")


@pytest.fixture
def subid_files():
    """give(line): /etc/subuid and /etc/subgid hold no range for nobody but
    `line` (none for None); the files are put back as they were after the
    test. Lines for nobody a killed run left behind are dropped too."""
    saved = {f: Path(f).read_bytes() if Path(f).exists() else None for f in SUBIDS}

    def give(line):
        for f, data in saved.items():
            kept = [l for l in (data or b"").decode().splitlines() if not l.startswith("nobody:")]
            Path(f).write_text("".join(l + "\n" for l in kept + ([line] if line else [])))
    yield give
    for f, data in saved.items():
        if data is None:
            Path(f).unlink()
        else:
            Path(f).write_bytes(data)


@pytest.fixture
def subids(subid_files):
    """nobody gets 300000-365535 in /etc/subuid and /etc/subgid."""
    subid_files("nobody:300000:65536")
    return 300000


def wide_maps(rootless, tmp_path, args):
    """Container root is nobody, container ids 1-1000 are 300000-300999 of
    nobody's subordinate ids; the process runs as 1000:1000 with group 500
    too, and /tmp is a host directory it may write."""
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    ids = [{"containerID": 0, "hostID": NOBODY, "size": 1}, {"containerID": 1, "hostID": 300000, "size": 1000}]

    def edit(c):
        c["linux"]["uidMappings"] = c["linux"]["gidMappings"] = ids
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [500]}
        c["process"]["args"] = args
        c["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(out), "options": ["rbind"]})
    rootless.set_config(edit)
    return out


@brig_only
def test_rootless_maps_subordinate_ids_with_newuidmap(runtime, rootless, subids, tmp_path):
    """A map beyond the caller's own id goes through newuidmap/newgidmap, as
    in runc: the container has both ranges, setgroups stays allowed (so
    additionalGids are set), and a file its user 1000 makes is the host's
    300999."""
    out = wide_maps(rootless, tmp_path, ["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups;"
                                         " touch /tmp/f"])
    res = runtime.run("run", "--bundle", rootless, rootless.id)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"uid=1000(\(\w+\))? gid=1000(\(\w+\))? groups=500", lines[0]), res
    maps = [l.split() for l in lines[1:5]]
    assert maps == [["0", str(NOBODY), "1"], ["1", "300000", "1000"]] * 2, res
    assert lines[5] == "allow", res
    st = (out / "f").stat()
    assert (st.st_uid, st.st_gid) == (300999, 300999)
    assert not (Path(runtime.root) / rootless.id).exists()


@brig_only
def test_rootless_exec_with_subordinate_ids(runtime, rootless, subids, tmp_path):
    """exec enters the user namespace newuidmap mapped: the process's user
    1000 and its groups are as in the container's own process."""
    wide_maps(rootless, tmp_path, ["sleep", "60"])
    runtime.run("run", "-d", "--bundle", rootless, rootless.id, check=True)
    res = runtime.run("exec", rootless.id, "sh", "-c", "id; cat /proc/self/uid_map")
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"uid=1000(\(\w+\))? gid=1000(\(\w+\))? groups=500", lines[0]), res
    assert [l.split() for l in lines[1:]] == [["0", str(NOBODY), "1"], ["1", "300000", "1000"]], res


@brig_only
def test_rootless_caller_with_setuid_caps_needs_no_helper(runtime, rootless, subid_files, tmp_path):
    """As runc: a map beyond the caller's own id is written directly first,
    so a caller holding CAP_SETUID and CAP_SETGID needs no /etc/subuid range
    (none is given) and no helper (none on PATH)."""
    subid_files(None)
    out = wide_maps(rootless, tmp_path, ["sh", "-c", "id; cat /proc/self/uid_map /proc/self/setgroups; touch /tmp/f"])
    runtime.prefix = ["/usr/bin/setpriv", *AS_NOBODY[1:], "--inh-caps=+setuid,+setgid", "--ambient-caps=+setuid,+setgid"]
    res = runtime.run("run", "--bundle", rootless, rootless.id, env={"PATH": "/nonexistent"})
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"uid=1000(\(\w+\))? gid=1000(\(\w+\))? groups=500", lines[0]), res
    assert [l.split() for l in lines[1:3]] == [["0", str(NOBODY), "1"], ["1", "300000", "1000"]], res
    assert lines[3] == "allow", res
    st = (out / "f").stat()
    assert (st.st_uid, st.st_gid) == (300999, 300999)


@brig_only
def test_rootless_subordinate_ids_not_granted(runtime, rootless, subid_files, tmp_path):
    """Without /etc/subuid ranges for the user, newuidmap refuses: one error
    line with its command and its reason, and nothing left."""
    subid_files(None)
    wide_maps(rootless, tmp_path, ["true"])
    res = runtime.run("create", "--bundle", rootless, rootless.id)
    assert res.returncode == 1, res
    msg = res.error
    assert re.search(r"write uid_map: newuidmap \d+ 0 65534 1 1 300000 1000: newuidmap: .*not allowed", msg), msg
    assert not (Path(runtime.root) / rootless.id).exists()


@brig_only
def test_rootless_map_helper_missing(runtime, rootless, tmp_path):
    """No newuidmap on PATH: the error says what to install."""
    wide_maps(rootless, tmp_path, ["true"])
    runtime.prefix = ["/usr/bin/setpriv", *AS_NOBODY[1:]]
    res = runtime.run("create", "--bundle", rootless, rootless.id, env={"PATH": "/nonexistent"})
    assert res.returncode == 1, res
    assert res.error.endswith("write uid_map: newuidmap (package uidmap) for a map beyond the caller's own id:"
                              " exec newuidmap: no such file or directory"), res.error
    assert not (Path(runtime.root) / rootless.id).exists()
