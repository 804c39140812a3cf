"""Idmapped bind mounts (idmap / ridmap with the mount's uidMappings and
gidMappings). runc 1.1.5 ignores these options, so the tests are brig's."""

import os
import subprocess

import pytest

from conftest import brig_only
from test_rootfs_safety import parse_mountinfo, run_in

pytestmark = brig_only

MAP = [{"containerID": 0, "hostID": 1000, "size": 10}]


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "idsrc"
    d.mkdir()
    (d / "root-owned").write_text("r\n")
    os.chown(d / "root-owned", 0, 0)
    (d / "five").write_text("5\n")
    os.chown(d / "five", 5, 6)
    (d / "far").write_text("f\n")
    os.chown(d / "far", 4000, 4000)
    return d


def _bind(src, opts, maps=True):
    m = {"destination": "/idm", "type": "bind", "source": str(src), "options": opts}
    if maps:
        m["uidMappings"] = MAP
        m["gidMappings"] = MAP
    return m


def test_idmap_maps_owners(runtime, bundle, src):
    res = run_in(runtime, bundle,
                 "stat -c '%n %u:%g' /idm/root-owned /idm/five /idm/far; "
                 "grep ' /idm ' /proc/self/mountinfo",
                 mounts=[_bind(src, ["bind", "idmap"])])
    lines = res.stdout.splitlines()
    # on-disk id N (containerID) shows as hostID + N; ids outside the map are overflow
    assert lines[:3] == ["/idm/root-owned 1000:1000", "/idm/five 1005:1006",
                         "/idm/far 65534:65534"], res
    assert "idmapped" in lines[3].split()[5].split(","), res
    # the host's files are unchanged
    assert os.stat(src / "five").st_uid == 5


def test_idmap_writes_map_back(runtime, bundle, src):
    # a process running as 1003 creates a file: on disk it belongs to 3
    os.chmod(src, 0o777)
    bundle.config(user={"uid": 1003, "gid": 1003})
    run_in(runtime, bundle, "echo x > /idm/new", mounts=[_bind(src, ["bind", "idmap"])])
    st = os.stat(src / "new")
    assert (st.st_uid, st.st_gid) == (3, 3)


@pytest.fixture
def src_with_submount(src):
    sub = src / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "brig-idmap-sub", str(sub)], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


@pytest.mark.parametrize("opt,sub_mapped", [("idmap", False), ("ridmap", True)])
def test_ridmap_is_recursive(runtime, bundle, src_with_submount, opt, sub_mapped):
    res = run_in(runtime, bundle, "cat /proc/self/mountinfo; stat -c %u /idm/sub",
                 mounts=[_bind(src_with_submount, ["rbind", opt])])
    lines = res.stdout.splitlines()
    mi = parse_mountinfo("\n".join(lines[:-1]))
    assert "idmapped" in mi["/idm"]["opts"], res
    assert ("idmapped" in mi["/idm/sub"]["opts"]) == sub_mapped, res
    assert lines[-1] == ("1000" if sub_mapped else "0"), res


def test_idmap_without_mappings_or_userns_is_an_error(runtime, bundle, src):
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[_bind(src, ["bind", "idmap"], maps=False)])
    assert "mounts[" in res.error and "idmap needs uidMappings" in res.error, res


def test_idmap_on_a_non_bind_mount_is_an_error(runtime, bundle):
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[{"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["idmap"], "uidMappings": MAP, "gidMappings": MAP}])
    assert "mounts[" in res.error and "idmap" in res.error, res


def _open_for_mapped_root(bundle):
    # The container's root is host uid 100000: pytest's tmp dirs are 0700,
    # and the host-owned rootfs takes no new directory from it.
    (bundle.rootfs / "idm").mkdir()
    bundle.open_for_mapped_root()


USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.mark.parametrize("own_maps", [True, False])
def test_idmap_in_a_container_with_its_own_user_namespace(runtime, bundle, src, own_maps):
    """The kernel lets only the runtime's user namespace idmap a host mount:
    brig makes the tree before the clone and init attaches it. With no
    mappings of its own the mount takes the container's (root-owned files
    show as the container's root, and its writes land as host root)."""
    _open_for_mapped_root(bundle)
    m = {"destination": "/idm", "type": "bind", "source": str(src), "options": ["bind", "idmap"]}
    if own_maps:
        m["uidMappings"] = USERNS_MAP
        m["gidMappings"] = USERNS_MAP
    res = run_in(runtime, bundle,
                 "stat -c '%n %u:%g' /idm/root-owned /idm/five; echo x > /idm/new; "
                 "grep ' /idm ' /proc/self/mountinfo",
                 add_ns=["user"], uid_mappings=USERNS_MAP, gid_mappings=USERNS_MAP,
                 readonly=False, mounts=[m])
    lines = res.stdout.splitlines()
    assert lines[0] == "/idm/root-owned 0:0", res
    assert lines[1] == "/idm/five 5:6", res
    assert "idmapped" in lines[2].split()[5].split(","), res
    st = os.stat(src / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmap_in_a_joined_user_namespace(runtime, bundle, src, userns):
    """The same with a user namespace joined by path (a pod's): the tree is
    made before the clone too, where the kernel lets us idmap it."""
    _open_for_mapped_root(bundle)
    m = {"destination": "/idm", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
         "uidMappings": USERNS_MAP, "gidMappings": USERNS_MAP}
    res = run_in(runtime, bundle,
                 "stat -c '%n %u:%g' /idm/root-owned /idm/five; echo x > /idm/new; "
                 "grep ' /idm ' /proc/self/mountinfo",
                 add_ns=[{"type": "user", "path": userns}], uid_mappings=USERNS_MAP,
                 gid_mappings=USERNS_MAP, readonly=False, mounts=[m])
    lines = res.stdout.splitlines()
    assert lines[0] == "/idm/root-owned 0:0", res
    assert lines[1] == "/idm/five 5:6", res
    assert "idmapped" in lines[2].split()[5].split(","), res
    st = os.stat(src / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmap_in_a_user_namespace_keeps_the_mount_flags(runtime, bundle, src):
    _open_for_mapped_root(bundle)
    m = {"destination": "/idm", "type": "bind", "source": str(src),
         "options": ["bind", "idmap", "ro", "nosuid"],
         "uidMappings": USERNS_MAP, "gidMappings": USERNS_MAP}
    res = run_in(runtime, bundle,
                 "grep ' /idm ' /proc/self/mountinfo; echo x > /idm/new && echo WROTE",
                 check=False, add_ns=["user"], uid_mappings=USERNS_MAP,
                 gid_mappings=USERNS_MAP, readonly=False, mounts=[m])
    opts = res.stdout.splitlines()[0].split()[5].split(",")
    assert "ro" in opts and "nosuid" in opts and "idmapped" in opts, res
    assert "WROTE" not in res.stdout, res
    assert not (src / "new").exists()
