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
