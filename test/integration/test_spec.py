"""`spec`: the default config.json and its flags."""

import json
import os
import subprocess

from conftest import BRIG, error_msg, Result


def spec(*args, cwd, timeout=30):
    argv = [BRIG, "spec", *args]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return Result(argv, p.returncode, p.stdout, p.stderr)


def test_spec_writes_default_config(tmp_path):
    res = spec(cwd=tmp_path)
    assert res.returncode == 0, res
    assert res.stdout == "" and res.stderr == "", res
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["ociVersion"].startswith("1."), cfg["ociVersion"]
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    p = cfg["process"]
    assert p["terminal"] is True
    assert p["args"] == ["sh"]
    assert p["cwd"] == "/"
    assert p["user"] == {"uid": 0, "gid": 0}
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in p["env"]
    assert "TERM=xterm" in p["env"]
    assert p["noNewPrivileges"] is True
    for k in ("bounding", "effective", "permitted"):
        assert sorted(p["capabilities"][k]) == ["CAP_AUDIT_WRITE", "CAP_KILL",
                                                "CAP_NET_BIND_SERVICE"], k
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert cfg["hostname"] in ("runc", "brig")
    dests = [m["destination"] for m in cfg["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                     "/sys/fs/cgroup"]
    types = {m["destination"]: m["type"] for m in cfg["mounts"]}
    assert types == {"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts",
                     "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs",
                     "/sys/fs/cgroup": "cgroup"}
    ns = [n["type"] for n in cfg["linux"]["namespaces"]]
    assert ns == ["pid", "network", "ipc", "uts", "mount"]
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    assert "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert cfg["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert "uidMappings" not in cfg["linux"]
    # runc writes tab-indented JSON
    text = (tmp_path / "config.json").read_text()
    assert text.startswith('{\n\t"ociVersion": '), text[:40]


def test_spec_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    res = spec(cwd=tmp_path)
    assert res.returncode == 1, res
    assert error_msg(res) == "File config.json exists. Remove it first"
    assert (tmp_path / "config.json").read_text() == "{}"


def test_spec_bundle_flag(tmp_path):
    b = tmp_path / "b"
    b.mkdir()
    for flag in ("--bundle", "-b"):
        res = spec(flag, str(b), cwd=tmp_path)
        assert res.returncode == 0, res
        assert not (tmp_path / "config.json").exists()
        json.loads((b / "config.json").read_text())
        os.unlink(b / "config.json")


def test_spec_bundle_missing_dir(tmp_path):
    res = spec("--bundle", str(tmp_path / "nope"), cwd=tmp_path)
    assert res.returncode == 1, res
    assert error_msg(res) == f"chdir {tmp_path / 'nope'}: no such file or directory"


def test_spec_rejects_arguments(tmp_path):
    res = spec("extra", cwd=tmp_path)
    assert res.returncode == 1, res
    assert error_msg(res).endswith('"spec" requires exactly 0 argument(s)')
    assert not (tmp_path / "config.json").exists()


def test_spec_rootless(tmp_path):
    res = spec("--rootless", cwd=tmp_path)
    assert res.returncode == 0, res
    cfg = json.loads((tmp_path / "config.json").read_text())
    lin = cfg["linux"]
    ns = [n["type"] for n in lin["namespaces"]]
    assert "user" in ns
    assert "network" not in ns
    uid, gid = os.geteuid(), os.getegid()
    assert lin["uidMappings"] == [{"containerID": 0, "hostID": uid, "size": 1}]
    assert lin["gidMappings"] == [{"containerID": 0, "hostID": gid, "size": 1}]
    assert "resources" not in lin
    # /sys is bind-mounted from the host, not a new sysfs
    sysm = [m for m in cfg["mounts"] if m["destination"] == "/sys"][0]
    assert sysm["type"] == "none" and sysm["source"] == "/sys", sysm
    assert "rbind" in sysm["options"]
