"""Namespaces: the container's are really separate from the host's (or really shared)."""

import fcntl
import os
import subprocess
import uuid

import pytest

from conftest import IS_RUNC, brig_only, proc_cgroups, runc_bug, wait_for

ALL_NS = ["mnt", "uts", "ipc", "net", "pid", "cgroup"]
# config.json namespace type -> /proc/<pid>/ns/<name>
NS_FILE = {"mount": "mnt", "uts": "uts", "ipc": "ipc", "network": "net", "pid": "pid",
           "cgroup": "cgroup", "user": "user"}


def host_ns(name):
    return os.readlink(f"/proc/self/ns/{name}")


def inside_ns(runtime, bundle, names):
    """readlink of /proc/self/ns/<name> from inside the container."""
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in names)
    bundle.config(args=["sh", "-c", script])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    links = res.stdout.split()
    assert len(links) == len(names), res
    return dict(zip(names, links))


def test_default_namespaces_differ_from_host(runtime, bundle):
    # the default spec: pid, network, ipc, uts, mount (no cgroup ns)
    got = inside_ns(runtime, bundle, ALL_NS)
    for n in ("mnt", "uts", "ipc", "net", "pid"):
        assert got[n] != host_ns(n), f"{n} namespace is the host's: {got[n]}"
    assert got["cgroup"] == host_ns("cgroup"), "no cgroup ns in config, yet it differs"


def test_all_namespaces_including_cgroup(runtime, bundle):
    bundle.config(add_ns=["cgroup"])
    got = inside_ns(runtime, bundle, ALL_NS)
    for n in ALL_NS:
        assert got[n] != host_ns(n), f"{n} namespace is the host's: {got[n]}"
    # in a cgroup namespace the container sees its own cgroup as the root
    bundle.config(args=["cat", "/proc/self/cgroup"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    for line in res.stdout.splitlines():
        assert line.split(":", 2)[2] == "/", res.stdout


@pytest.mark.parametrize("drop", ["network", "uts", "ipc"])
def test_dropped_namespace_is_the_hosts(runtime, bundle, drop):
    bundle.config(drop_ns=[drop])
    if drop == "uts":
        bundle.set_config(lambda c: c.pop("hostname"))
    got = inside_ns(runtime, bundle, ALL_NS)
    f = NS_FILE[drop]
    assert got[f] == host_ns(f), f"{drop} was dropped from config but differs"
    for n in ("mnt", "uts", "ipc", "net", "pid"):
        if n != f:
            assert got[n] != host_ns(n), n


def test_hostname_without_uts_namespace_fails(runtime, bundle):
    bundle.config(drop_ns=["uts"], hostname="x", args=["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.endswith("unable to set hostname without a private UTS namespace"), res


def test_no_pid_namespace(runtime, bundle):
    bundle.config(drop_ns=["pid"])
    got = inside_ns(runtime, bundle, ["pid"])
    assert got["pid"] == host_ns("pid")
    bundle.config(args=["sh", "-c", "echo $$"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert int(res.stdout) > 1, res


@pytest.fixture
def netns():
    """A network namespace made with `ip netns add`, deleted afterwards."""
    name = "brigtest-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=15)
    path = f"/run/netns/{name}"
    try:
        yield path
    finally:
        subprocess.run(["ip", "netns", "delete", name], timeout=15)
    assert not os.path.exists(path)


def test_join_network_namespace_by_path(runtime, bundle, netns):
    bundle.config(add_ns=[{"type": "network", "path": netns}])
    got = inside_ns(runtime, bundle, ["net", "uts"])
    st = os.stat(netns)
    assert got["net"] == f"net:[{st.st_ino}]"
    assert got["net"] != host_ns("net")
    assert got["uts"] != host_ns("uts")


def lo_flags(runtime, bundle):
    bundle.config(args=["cat", "/sys/class/net/lo/flags"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    return int(res.stdout.strip(), 16)


@pytest.mark.parametrize("userns", [False, True], ids=["plain", "userns"])
def test_new_network_namespace_has_loopback_up(runtime, bundle, userns):
    """runc brings lo up in every network namespace it makes (127.0.0.1 works)."""
    if userns:
        bundle.open_for_mapped_root()
        bundle.config(
            add_ns=["user"], readonly=False,
            uid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
            gid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])
    assert lo_flags(runtime, bundle) & 0x1, "lo is down (IFF_UP unset)"


def test_joined_network_namespace_is_left_as_it_is(runtime, bundle, netns):
    """A namespace joined by path is the caller's: its lo (down) stays down."""
    bundle.config(add_ns=[{"type": "network", "path": netns}])
    assert not lo_flags(runtime, bundle) & 0x1


def test_join_namespace_bad_path(runtime, bundle, tmp_path):
    bundle.config(add_ns=[{"type": "network", "path": str(tmp_path / "no-such-ns")}])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode != 0, res
    assert "no-such-ns" in res.error, res
    assert "no such file or directory" in res.error, res


def test_user_namespace_mappings(runtime, bundle):
    bundle.open_for_mapped_root()  # the mapped root is host uid 100000
    bundle.config(
        add_ns=["user"],
        uid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        gid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        readonly=False)
    bundle.config(args=["sh", "-c",
                        "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                        "readlink /proc/self/ns/user"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"], res
    assert lines[1].split() == ["0", "100000", "65536"], res
    assert lines[2] == "0", res
    assert lines[3] != host_ns("user"), res


NS_GET_USERNS = 0xB701


def owner_of(pid, name):
    """Inode of the user namespace owning /proc/PID/ns/NAME."""
    fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            return os.fstat(owner).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


def joined_userns_config(bundle, userns, args, cwd="/"):
    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    caps = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    bundle.open_for_mapped_root()
    bundle.config(add_ns=[{"type": "user", "path": userns}, "cgroup"], uid_mappings=ids, gid_mappings=ids,
                  readonly=False, args=args, cwd=cwd,
                  fn=lambda c: c["process"].update(capabilities={k: caps for k in ("bounding", "effective",
                                                                                    "permitted")}))


def test_joined_user_namespace_owns_the_namespaces_made(runtime, bundle, userns):
    """With a user namespace joined by path (a Kubernetes pod's, with hostUsers:
    false), the namespaces the container makes are made inside it, as runc and
    crun do: its root has its privileges over its own network and mounts, and
    what init makes in the rootfs belongs to that root, not to the host's."""
    joined_userns_config(bundle, userns, cwd="/tmp/made-by-init", args=[
        "sh", "-c", "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; cat /sys/class/net/lo/flags; "
        "ip link set lo down && echo net-ok; mount -t tmpfs t /tmp && echo mount-ok"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"], res
    assert lines[1:3] == ["0", os.readlink(userns)], res
    assert int(lines[3], 16) & 0x1, "lo is down"
    assert lines[4:] == ["net-ok", "mount-ok"], res
    st = os.stat(bundle.path / "rootfs" / "tmp" / "made-by-init")
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_joined_user_namespace_owner_cgroups_and_exec(runtime, bundle, userns):
    """Seen from the host: every namespace made (mount, network, ipc, uts, pid,
    cgroup) is owned by the joined user namespace; init is in the container's
    cgroups; exec joins them all."""
    joined_userns_config(bundle, userns, args=["sleep", "60"])
    res = runtime.run("run", "-d", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    pid = runtime.state(bundle.id)["pid"]
    want = os.stat(userns).st_ino
    for name in ("mnt", "net", "ipc", "uts", "pid", "cgroup"):
        assert owner_of(pid, name) == want, name
    # memory (v1), and the cgroup2 tree (a hybrid host's unified one, or the whole of v2)
    placed = {m: p for m, p in proc_cgroups(pid).items()
              if m in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")}
    assert placed and all(p.endswith("/" + bundle.id) for p in placed.values()), placed
    res = runtime.run("exec", bundle.id, "sh", "-c", "readlink /proc/self/ns/user; readlink /proc/self/ns/net; id -u")
    assert res.returncode == 0, res
    assert res.stdout.split() == [os.readlink(userns), os.readlink(f"/proc/{pid}/ns/net"), "0"], res


def test_joined_user_and_pid_namespaces(runtime, bundle, userns_and_pidns):
    """A pod with user namespaces that shares its processes: user and pid
    joined by path. The pid brig keeps is the host's pid of init (in the
    joined pid namespace), and the namespaces made belong to the user
    namespace."""
    user, pidns, holder = userns_and_pidns
    joined_userns_config(bundle, user, args=["sleep", "60"])
    bundle.config(add_ns=[{"type": "pid", "path": pidns}])
    res = runtime.run("run", "-d", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    pid = runtime.state(bundle.id)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(pidns)
    assert open(f"/proc/{pid}/cmdline").read().split("\0")[0] == "sleep"
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink(user)
    want = os.stat(user).st_ino
    for name in ("mnt", "net", "ipc", "uts", "cgroup"):
        assert owner_of(pid, name) == want, name
    # exec joins the same pid namespace, where the pod's first process is 1
    res = runtime.run("exec", bundle.id, "sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/cmdline")
    assert res.returncode == 0, res
    link, cmdline = res.stdout.split("\n", 1)
    assert link == os.readlink(pidns), res
    assert cmdline == open(f"/proc/{holder}/cmdline").read() == "sleep\x00600\x00", res


@pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 has no time namespace support")
def test_joined_user_and_time_namespaces(runtime, bundle, userns_and_timens):
    """A time namespace joined by path, with the user namespace that owns it:
    init and its process are in it (clocks a day ahead)."""
    user, timens = userns_and_timens
    joined_userns_config(bundle, user, args=["sh", "-c", "readlink /proc/self/ns/time; cat /proc/uptime"])
    bundle.config(add_ns=[{"type": "time", "path": timens}])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    link, uptime = res.stdout.splitlines()
    assert link == os.readlink(timens), res
    host = float(open("/proc/uptime").read().split()[0])
    assert float(uptime.split()[0]) > host + 86000, res


@brig_only
def test_joined_user_namespace_without_root(runtime, bundle, userns_without_root):
    """runc's init becomes root of the user namespace too, and fails where
    it has no root; brig says which namespace and why."""
    ids = [{"containerID": 1000, "hostID": 101000, "size": 100}]
    bundle.config(add_ns=[{"type": "user", "path": userns_without_root}], uid_mappings=ids, gid_mappings=ids,
                  user={"uid": 1000, "gid": 1000})
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode != 0, res
    assert res.error.endswith(f"setgid 0 in user namespace {userns_without_root} (gid 0 is not mapped there): "
                              "invalid argument"), res


@runc_bug("its error is three lines and does not name the path")
def test_joined_user_namespace_bad_path(runtime, bundle, netns):
    """A path that is no user namespace: setns's error names it, and nothing is left."""
    bundle.config(add_ns=[{"type": "user", "path": netns}],
                  uid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                  gid_mappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode != 0, res
    assert netns in res.error and "invalid argument" in res.error.lower(), res


@pytest.fixture
def timens():
    """A time namespace (boottime a day ahead) held by a sleeping process: its path."""
    p = subprocess.Popen(["unshare", "-T", "--boottime", "86400", "-f", "--kill-child", "sleep", "600"])
    try:
        def child():
            try:
                kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
                return int(kids[0]) if kids else None
            except OSError:
                return None
        assert wait_for(lambda: child() is not None, 5)
        yield f"/proc/{child()}/ns/time"
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 has no time namespace support")
def test_joined_time_namespace_is_the_containers_only(runtime, bundle, timens, tmp_path):
    """Joining a time namespace moves the joiner too (setns), unlike pid:
    brig joins it only around init's clone. A createRuntime hook runs in the
    runtime's namespaces: its time namespace is the host's."""
    seen = tmp_path / "hook-time-ns"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"readlink /proc/self/ns/time > {seen}"]}
    bundle.config(args=["readlink", "/proc/self/ns/time"], add_ns=[{"type": "time", "path": timens}],
                  fn=lambda c: c.update(hooks={"createRuntime": [hook]}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.strip() == os.readlink(timens), res
    assert seen.read_text().strip() == host_ns("time")


@pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 has no time namespace support")
def test_time_namespace_offsets(runtime, bundle):
    """linux.timeOffsets: the boottime/monotonic clocks inside are shifted."""
    host_uptime = float(open("/proc/uptime").read().split()[0])
    bundle.config(args=["sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time"], add_ns=["time"],
                  fn=lambda c: c["linux"].update(timeOffsets={"boottime": {"secs": 1000000, "nanosecs": 0},
                                                              "monotonic": {"secs": 500000}}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    inside = float(lines[0].split()[0])
    assert 1000000 + host_uptime - 5 < inside < 1000000 + host_uptime + 60, res.stdout
    assert lines[1] != os.readlink("/proc/self/ns/time"), res.stdout


@pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 has no time namespace support")
def test_exec_joins_the_time_namespace(runtime, bundle):
    """exec enters the container's time namespace (around its clone) and
    its process sees the container's clocks."""
    bundle.config(args=["sleep", "60"], add_ns=["time"],
                  fn=lambda c: c["linux"].update(timeOffsets={"boottime": {"secs": 1000000}}))
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    pid = runtime.state(bundle.id)["pid"]
    res = runtime.run("exec", bundle.id, "sh", "-c", "readlink /proc/self/ns/time; cat /proc/uptime")
    assert res.returncode == 0, res
    link, uptime = res.stdout.splitlines()
    assert link == os.readlink(f"/proc/{pid}/ns/time") != host_ns("time"), res
    assert float(uptime.split()[0]) > float(open("/proc/uptime").read().split()[0]) + 999000, res
    # brig's exec itself, waiting for its process, is back in the host's
    p = runtime.popen("exec", bundle.id, "sleep", "3")
    try:
        kids = f"/proc/{p.pid}/task/{p.pid}/children"

        def exec_ran():  # its child has exec'd: the clone, and our restore, are behind us
            try:
                return any(open(f"/proc/{k}/comm").read().strip() == "sleep" for k in open(kids).read().split())
            except OSError:
                return False
        assert wait_for(exec_ran, 10)
        assert os.readlink(f"/proc/{p.pid}/ns/time") == host_ns("time")
    finally:
        p.kill()
        p.wait()
