"""/dev: the default nodes and links, linux.devices with their attributes,
device access, and what is not there."""

import os

from conftest import IS_RUNC
from test_rootfs_safety import parse_mountinfo, run_in


def test_configured_devices_with_attributes(runtime, bundle):
    def fn(cfg):
        cfg["linux"]["devices"] = [
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o646,
             "uid": 1000, "gid": 2000},
            {"path": "/dev/sub/dir/zero2", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600},
            {"path": "/dev/blk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
            {"path": "/dev/fifo", "type": "p", "fileMode": 0o620},
        ]
        # the device cgroup must let the nodes be used
        cfg["linux"].setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle,
                 "stat -c '%n %F %t:%T %a %u:%g' /dev/mynull /dev/sub/dir/zero2 /dev/blk /dev/fifo; "
                 "echo x > /dev/mynull && echo w-ok; head -c 7 /dev/sub/dir/zero2 | wc -c")
    lines = res.stdout.splitlines()
    assert lines[0] == "/dev/mynull character special file 1:3 646 1000:2000", res
    assert lines[1] == "/dev/sub/dir/zero2 character special file 1:5 600 0:0", res
    assert lines[2] == "/dev/blk block special file 7:c8 600 0:0", res
    assert lines[3].startswith("/dev/fifo fifo") and " 620 " in lines[3], res
    assert lines[4] == "w-ok" and lines[5].strip() == "7", res


def test_device_in_a_set_group_id_dev_gets_the_owner_asked_for(runtime, bundle):
    """Without a /dev tmpfs the nodes go in the rootfs's own /dev. A
    set-group-ID directory gives a new node its group, not the maker's: the
    node must still end up with the uid, gid and mode of linux.devices."""
    dev = bundle.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    os.chown(dev, 0, 5)
    os.chmod(dev, 0o2755)

    def fn(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["linux"]["devices"] = [
            {"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 0},
            {"path": "/dev/theirs", "type": "c", "major": 1, "minor": 5, "fileMode": 0o604,
             "uid": 1000, "gid": 5},
        ]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle, "stat -c '%n %t:%T %a %u:%g' /dev/mine /dev/theirs /dev/null")
    assert res.stdout.splitlines() == [
        "/dev/mine 1:3 640 0:0", "/dev/theirs 1:5 604 1000:5", "/dev/null 1:3 666 0:0"], res


def test_default_device_access_and_absent_nodes(runtime, bundle):
    res = run_in(runtime, bundle,
                 "head -c 5 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; "
                 "(echo x > /dev/full) 2>&1 | grep -c 'No space'; head -c 4 /dev/urandom | wc -c; "
                 "for d in sda vda kmsg mem port loop0 console; do test -e /dev/$d && echo has-$d; done; "
                 "ls /dev")
    lines = res.stdout.splitlines()
    assert [l.strip() for l in lines[:4]] == ["5", "null-ok", "1", "4"], res
    assert not any(l.startswith("has-") for l in lines), res
    names = set(lines[4:])
    want = {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin",
            "stdout", "stderr", "pts", "shm", "mqueue"}
    assert want <= names, (want - names, res)


def test_dev_links_shm_mqueue(runtime, bundle):
    res = run_in(runtime, bundle,
                 "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; "
                 "echo hi > /dev/shm/x && cat /dev/shm/x; cat /proc/self/mountinfo")
    lines = res.stdout.splitlines()
    assert lines[:6] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                         "/proc/self/fd/2", "hi"], res
    mi = parse_mountinfo("\n".join(lines[6:]))
    assert mi["/dev/shm"]["fstype"] == "tmpfs" and mi["/dev/mqueue"]["fstype"] == "mqueue"
    assert "newinstance" in mi["/dev/pts"]["sopts"] or "ptmxmode=666" in mi["/dev/pts"]["sopts"]


def test_console_only_with_terminal(runtime, bundle):
    res = run_in(runtime, bundle, "test -e /dev/console && echo yes || echo no")
    assert res.stdout == "no\n", res


def test_host_dev_bind_has_no_extra_nodes_made(runtime, bundle, tmp_path):
    d = tmp_path / "mydev"
    d.mkdir()
    os.mknod(d / "null", 0o666 | 0o020000, os.makedev(1, 3))

    def fn(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": str(d),
                              "options": ["rbind"]})
    bundle.config(fn=fn)
    res = run_in(runtime, bundle, "ls /dev")
    if not IS_RUNC:
        assert res.stdout.split() == ["null"], res
    assert sorted(os.listdir(d))[:1] == ["null"]


def test_devices_alternating_parents_and_under_a_mount(runtime, bundle):
    # Device ops share one lookup of their parent directory while it stays the
    # same: nodes whose parents alternate, one parent covered by a tmpfs from
    # the config, must each land in the directory the container sees.
    (bundle.rootfs / "opt" / "devs").mkdir(parents=True)

    def dev(path, minor):
        return {"path": path, "type": "c", "major": 1, "minor": minor, "fileMode": 0o640}

    def fn(cfg):
        cfg["mounts"].append({"destination": "/opt/devs", "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid"]})
        cfg["linux"]["devices"] = [dev("/opt/devs/n1", 3), dev("/dev/n2", 5), dev("/opt/devs/n3", 7),
                                   dev("/dev/n4", 8)]
        cfg["linux"].setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    bundle.config(fn=fn)
    res = run_in(runtime, bundle,
                 "stat -c '%n %t:%T %a' /opt/devs/n1 /dev/n2 /opt/devs/n3 /dev/n4; stat -f -c %T /opt/devs")
    assert res.stdout.splitlines() == ["/opt/devs/n1 1:3 640", "/dev/n2 1:5 640", "/opt/devs/n3 1:7 640",
                                       "/dev/n4 1:8 640", "tmpfs"], res
    # made in the tmpfs, not beneath it in the bundle
    assert os.listdir(bundle.rootfs / "opt" / "devs") == []
