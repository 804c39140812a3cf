"""Mount options really apply: mountinfo inside the container shows them."""

import os
import subprocess

import pytest

from conftest import IS_RUNC, brig_only
from test_rootfs_safety import parse_mountinfo, run_in


def mountinfo_of(runtime, bundle, mounts, extra="", **cfg):
    res = run_in(runtime, bundle, f"{extra}cat /proc/self/mountinfo", mounts=mounts, **cfg)
    return parse_mountinfo(res.stdout), res


@pytest.fixture
def host_dir(tmp_path):
    d = tmp_path / "hostdir"
    d.mkdir()
    (d / "f").write_text("data\n")
    return d


@pytest.fixture
def host_dir_with_submount(host_dir):
    """host_dir with a tmpfs mounted on host_dir/sub (on the host, unmounted after)."""
    sub = host_dir / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "brig-test-sub", str(sub)], check=True)
    try:
        yield host_dir
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


def test_bind_flags_are_applied(runtime, bundle, host_dir):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/data", "type": "bind", "source": str(host_dir),
         "options": ["bind", "ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime"]}])
    opts = mi["/data"]["opts"]
    assert {"ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime"} <= set(opts), res


def test_ro_on_rbind_is_the_top_mount_only_rro_is_recursive(runtime, make_bundle,
                                                           host_dir_with_submount):
    src = str(host_dir_with_submount)
    b = make_bundle()
    mi, res = mountinfo_of(runtime, b, [
        {"destination": "/a", "type": "bind", "source": src, "options": ["rbind", "ro"]},
        {"destination": "/b", "type": "bind", "source": src, "options": ["rbind", "rro"]},
        {"destination": "/c", "type": "bind", "source": src, "options": ["rbind", "rro", "rnosuid"]},
    ])
    assert "ro" in mi["/a"]["opts"] and "rw" in mi["/a/sub"]["opts"], res
    assert "ro" in mi["/b"]["opts"] and "ro" in mi["/b/sub"]["opts"], res
    assert {"ro", "nosuid"} <= set(mi["/c/sub"]["opts"]), res
    assert mi["/a/sub"]["fstype"] == "tmpfs", res


def test_bind_without_rbind_leaves_submounts_out(runtime, bundle, host_dir_with_submount):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/a", "type": "bind", "source": str(host_dir_with_submount),
         "options": ["bind"]}])
    assert "/a" in mi and "/a/sub" not in mi, res


@pytest.mark.parametrize("option,field", [("shared", "shared:"), ("unbindable", "unbindable"),
                                          ("rshared", "shared:")])
def test_propagation_option(runtime, bundle, host_dir, option, field):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/data", "type": "bind", "source": str(host_dir),
         "options": ["rbind", option]}])
    assert any(o.startswith(field) for o in mi["/data"]["optional"]), res


def test_private_and_slave_propagation(runtime, bundle):
    # /a is a shared tmpfs; /b binds it (through the rootfs path the container
    # sees before the pivot) as a slave: /b's master is /a's peer group
    src = str(bundle.rootfs / "a")
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]},
        {"destination": "/b", "type": "bind", "source": src, "options": ["bind", "slave"]},
        {"destination": "/c", "type": "bind", "source": src, "options": ["bind", "private"]},
    ], readonly=False)
    peer = [o for o in mi["/a"]["optional"] if o.startswith("shared:")]
    assert peer, res
    assert "master:" + peer[0].split(":")[1] in mi["/b"]["optional"], res
    assert mi["/c"]["optional"] == [], res


def test_atime_options(runtime, bundle):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/n", "type": "tmpfs", "source": "tmpfs", "options": ["noatime"]},
        {"destination": "/s", "type": "tmpfs", "source": "tmpfs", "options": ["strictatime"]},
        {"destination": "/r", "type": "tmpfs", "source": "tmpfs", "options": ["noatime", "relatime"]},
        {"destination": "/d", "type": "tmpfs", "source": "tmpfs", "options": ["nodiratime"]},
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["noatime", "atime"]},
    ])
    assert "noatime" in mi["/n"]["opts"], res
    assert not {"noatime", "relatime"} & set(mi["/s"]["opts"]), res
    if not IS_RUNC:  # the last atime option wins (runc keeps noatime here)
        assert "relatime" in mi["/r"]["opts"] and "noatime" not in mi["/r"]["opts"], res
    assert "nodiratime" in mi["/d"]["opts"], res
    assert "noatime" not in mi["/a"]["opts"], res


def test_fs_specific_and_superblock_options(runtime, bundle):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=2m", "mode=700", "uid=5", "dirsync", "nosymfollow"]},
    ])
    sopts = mi["/t"]["sopts"]
    assert {"size=2048k", "mode=700", "uid=5", "dirsync"} <= set(sopts), res
    assert "nosymfollow" in mi["/t"]["opts"], res


@brig_only  # runc 1.1 remounts a bind without MS_BIND: EBUSY
def test_remount_changes_an_existing_mount(runtime, bundle, host_dir):
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/data", "type": "bind", "source": str(host_dir), "options": ["bind"]},
        {"destination": "/data", "options": ["remount", "ro", "nosuid"]},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/t", "type": "tmpfs", "options": ["remount", "size=3m"]},
    ])
    assert {"ro", "nosuid"} <= set(mi["/data"]["opts"]), res
    assert "size=3072k" in mi["/t"]["sopts"], res
    assert len([l for l in res.stdout.splitlines() if " /data " in l]) == 1, res


@brig_only
def test_remount_of_a_plain_directory_is_an_error(runtime, bundle):
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[{"destination": "/etc", "options": ["remount", "ro"]}])
    assert "remount /etc: not a mount point" in res.error, res


def test_tmpcopyup(runtime, bundle):
    (bundle.rootfs / "etc" / "sub").mkdir()
    (bundle.rootfs / "etc" / "sub" / "deep").write_text("deep\n")
    os.symlink("passwd", bundle.rootfs / "etc" / "pw-link")
    os.chmod(bundle.rootfs / "etc" / "group", 0o640)
    mi, res = mountinfo_of(runtime, bundle, [
        {"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "mode=755"]}],
        extra="cat /etc/sub/deep; readlink /etc/pw-link; stat -c %a /etc/group; "
              "echo new > /etc/new && echo wrote; head -c 5 /etc/passwd; echo; ")
    lines = res.stdout.splitlines()
    assert lines[:5] == ["deep", "passwd", "640", "wrote", "root:"], res
    mi = parse_mountinfo("\n".join(lines[5:]))
    assert mi["/etc"]["fstype"] == "tmpfs", res
    assert not (bundle.rootfs / "etc" / "new").exists()  # writes stay in the tmpfs


def test_missing_targets_take_the_type_of_the_source(runtime, bundle, tmp_path, host_dir):
    f = tmp_path / "afile"
    f.write_text("file\n")
    res = run_in(runtime, bundle,
                 "stat -c '%F' /new/dir/file /new/d2; cat /new/dir/file; cat rel/f",
                 mounts=[{"destination": "/new/dir/file", "type": "bind", "source": str(f),
                          "options": ["bind", "ro"]},
                         {"destination": "/new/d2", "type": "bind", "source": str(host_dir),
                          "options": ["bind"]},
                         # relative destinations are relative to / (spec v1.2)
                         {"destination": "rel", "type": "bind", "source": str(host_dir),
                          "options": ["bind"]}],
                 cwd="/")
    assert res.stdout.splitlines() == ["regular file", "directory", "file", "data"], res
    assert (bundle.rootfs / "new" / "dir" / "file").is_file()
    assert (bundle.rootfs / "new" / "d2").is_dir()
    assert (bundle.rootfs / "rel").is_dir()


def test_relative_bind_source_is_relative_to_the_bundle(runtime, bundle):
    (bundle.path / "vol").mkdir()
    (bundle.path / "vol" / "v").write_text("vol\n")
    res = run_in(runtime, bundle, "cat /vol/v",
                 mounts=[{"destination": "/vol", "type": "bind", "source": "vol",
                          "options": ["bind"]}])
    assert res.stdout == "vol\n", res


def test_unknown_filesystem_option_is_an_error(runtime, bundle):
    res = run_in(runtime, bundle, "true", check=False,
                 mounts=[{"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["bogus=1"]}])
    msg = res.error
    assert "/t" in msg and ("bogus" in msg or "invalid argument" in msg), msg
    if not IS_RUNC:
        assert msg.startswith("brig run failed: unable to start container process: mounts["), msg
