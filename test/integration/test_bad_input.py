"""Bad input table (issue #10): malformed configs and arguments. Each one
gives exactly one clear error line (naming the field or argument), a non-zero
exit, and leaves nothing behind (no state dir, cgroup dir, process or mount;
the per-test leak check of conftest.py checks the last three).
"""

import os

import pytest

from conftest import IS_RUNC, _find_cgroup_dirs


def _set(path, value):
    def fn(cfg):
        *parents, last = path.split(".")
        d = cfg
        for k in parents:
            d = d[int(k)] if isinstance(d, list) else d.setdefault(k, {})
        if value is DELETE:
            del d[last]
        elif isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value
    return fn


DELETE = object()
U64 = 2**64 - 1

# (name, config edit, words the error line must contain)
CONFIGS = [
    ("args-not-a-list", _set("process.args", "sh"), ["process.args"]),
    ("args-empty", _set("process.args", []), ["args"]),
    ("uid-negative", _set("process.user.uid", -1), ["process.user.uid"]),
    ("uid-huge", _set("process.user.uid", 2**40), ["process.user.uid"]),
    ("gid-float", _set("process.user.gid", 1.5), ["process.user.gid"]),
    ("uid-infinity", _set("process.user.uid", float("inf")), []),
    ("cwd-missing", _set("process.cwd", DELETE), ["cwd"]),
    ("cwd-relative", _set("process.cwd", "tmp"), ["cwd"]),
    ("cwd-nul", _set("process.cwd", "/tmp\0/x"), ["process.cwd: must not contain a NUL byte"]),
    ("root-missing", _set("root", DELETE), ["root"]),
    ("root-path-nul", _set("root.path", "rootfs\0x"), ["root.path: must not contain a NUL byte"]),
    ("env-nul", _set("process.env", ["A=b\0c"]), ["process.env[0]: must not contain a NUL byte"]),
    ("annotation-key-nul", _set("annotations", {"a\0b": "c"}), ["annotations: keys must not contain a NUL"]),
    ("ociVersion-missing", _set("ociVersion", DELETE), ["ociVersion"]),
    ("ociVersion-number", _set("ociVersion", 1), ["ociVersion"]),
    ("namespace-unknown", _set("linux.namespaces.0", {"type": "bogus"}), ["bogus"]),
    ("namespace-twice", lambda c: c["linux"]["namespaces"].append({"type": "pid"}), ["pid"]),
    ("namespace-path-relative", _set("linux.namespaces.0", {"type": "network", "path": "x/y"}), []),
    ("rlimit-unknown", _set("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
     ["RLIMIT_BOGUS"]),
    ("rlimit-soft-above-hard", _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]),
     []),
    ("rlimit-absurd", _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": U64, "hard": U64}]),
     []),
    ("rlimit-negative", _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": -1}]),
     ["rlimits"]),
    ("device-major-negative",
     _set("linux.devices", [{"path": "/dev/x", "type": "c", "major": -1, "minor": 1}]), []),
    ("device-major-huge",
     _set("linux.devices", [{"path": "/dev/x", "type": "c", "major": 2**40, "minor": 1}]), []),
    ("device-type-unknown",
     _set("linux.devices", [{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}]), []),
    ("device-path-relative",
     _set("linux.devices", [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]), []),
    ("mount-destination-nul",
     lambda c: c["mounts"].append({"destination": "/mnt\0x", "type": "tmpfs", "source": "tmpfs"}),
     ["destination: must not contain a NUL byte"]),
    ("mount-option-unknown-type",
     lambda c: c["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "x"}), []),
    ("mount-options-not-list",
     lambda c: c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "t", "options": "ro"}),
     ["options"]),
    ("memory-limit-string", _set("linux.resources", {"memory": {"limit": "lots"}}), ["memory.limit"]),
    ("pids-limit-object", _set("linux.resources", {"pids": {"limit": {}}}), ["pids.limit"]),
    ("hostname-number", _set("hostname", 5), ["hostname"]),
    ("env-not-list", _set("process.env", "A=b"), ["process.env"]),
    ("annotation-not-string", _set("annotations", {"a": 1}), ["annotations"]),
    ("oomScoreAdj-huge", _set("process.oomScoreAdj", 100000), []),
    ("sysctl-unknown", _set("linux.sysctl", {"kernel.no_such_sysctl_brig": "1"}), []),
    ("sysctl-dotdot", _set("linux.sysctl", {"net/../../kernel/core_pattern": "|/x"}), []),
    ("cgroupsPath-number", _set("linux.cgroupsPath", 7), ["cgroupsPath"]),
    ("seccomp-bad-action", _set("linux.seccomp", {"defaultAction": "SCMP_ACT_BOGUS"}), ["defaultAction"]),
    ("top-level-array", None, []),
    # found by fuzz_config: brig aborted (uncaught out_of_range) on it
    ("number-overflow", '{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],'
                        '"cwd":"/","user":{"uid":1e400,"gid":0}}}', []),
]


# runc 1.1.5 runs these (or fails without naming the field): brig applies the
# spec's MUST rules and ranges before it makes anything.
RUNC_LAX = {"cwd-missing", "cwd-relative", "annotation-key-nul", "ociVersion-missing",
            "device-major-huge", "device-path-relative", "oomScoreAdj-huge",
            "seccomp-bad-action", "preserve-fds-negative"}


@pytest.mark.parametrize("name,edit,words", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bad_config(runtime, bundle, name, edit, words):
    if IS_RUNC and name in RUNC_LAX:
        pytest.skip("runc 1.1.5 accepts this or does not name the field")
    if edit is None:
        bundle.config_path.write_text("[]")
    elif isinstance(edit, str):
        bundle.config_path.write_text(edit)
    else:
        bundle.config(fn=edit)
    res = runtime.run("create", "--bundle", bundle, bundle.id, timeout=60)
    assert res.returncode != 0, res
    if IS_RUNC and "nul" in name:
        return  # runc fails too, but prints the NUL as \x00 (not JSON-decodable)
    msg = res.error  # exactly one logfmt error line
    assert msg, res
    for w in words:
        assert w in msg, (w, res)
    assert not os.path.lexists(os.path.join(runtime.root, bundle.id)), "state dir left"
    assert not _find_cgroup_dirs({bundle.id}), "cgroup dir left"
    print(f"\n{name}: {msg}")


LONG_ID = "x" * 2000
# (name, argv after --root, words in the error)
ARGS = [
    ("id-with-slash", ["create", "--bundle", "{bundle}", "a/b"], ["invalid container ID format"]),
    ("id-dotdot-slash", ["create", "--bundle", "{bundle}", "../x"], ["invalid container ID format"]),
    ("id-huge", ["create", "--bundle", "{bundle}", LONG_ID], []),
    ("id-newline", ["create", "--bundle", "{bundle}", "a\nb"], ["invalid container ID format"]),
    ("preserve-fds-negative", ["create", "--preserve-fds", "-1", "--bundle", "{bundle}", "{id}"], []),
    ("preserve-fds-huge", ["create", "--preserve-fds", "99999999999", "--bundle", "{bundle}", "{id}"], []),
    ("preserve-fds-word", ["create", "--preserve-fds", "many", "--bundle", "{bundle}", "{id}"], []),
    ("bundle-dotdot-missing", ["create", "--bundle", "{bundle}/../../nonexistent-brig", "{id}"], []),
    ("pid-file-in-missing-dir", ["create", "--pid-file", "/nonexistent-brig/dir/pid",
                                 "--bundle", "{bundle}", "{id}"], []),
    ("unknown-flag", ["create", "--bogus", "--bundle", "{bundle}", "{id}"], ["bogus"]),
    ("kill-unknown-signal", ["kill", "{id}", "SIGBOGUS"], []),
    ("delete-id-with-slash", ["delete", "-f", "../../etc"], []),
    ("state-id-with-slash", ["state", "../x"], []),
]


@pytest.mark.parametrize("name,argv,words", ARGS, ids=[a[0] for a in ARGS])
def test_bad_arguments(runtime, bundle, name, argv, words):
    if IS_RUNC and name in RUNC_LAX:
        pytest.skip("runc 1.1.5 accepts this")
    bundle.config(args=["sleep", "100"])
    argv = [a.replace("{bundle}", str(bundle)).replace("{id}", bundle.id) for a in argv]
    if argv[0] == "kill":
        runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)
    res = runtime.run(*argv, timeout=60)
    assert res.returncode != 0, res
    # usage text (if any) goes to stdout; stderr has the one error line
    msg = res.error
    for w in words:
        assert w in msg, (w, res)
    if argv[0] == "create":
        assert not os.path.lexists(os.path.join(runtime.root, bundle.id)), "state dir left"
        assert not _find_cgroup_dirs({bundle.id}), "cgroup dir left"
    if name == "delete-id-with-slash":
        assert os.path.isdir("/etc")
    print(f"\n{name}: {msg}")
