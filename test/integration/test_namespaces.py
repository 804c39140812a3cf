"""Namespaces: the container's are really separate from the host's (or really shared)."""

import os
import subprocess
import uuid

import pytest

from conftest import IS_RUNC

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
