"""Hooks (issue #4): all six fire in order, each with the state the spec names
on stdin and in the namespace the spec names; failure semantics per runtime.md."""

import json
import os

import pytest

from conftest import IS_RUNC, runc_bug

HOOK = r"""#!/bin/sh
read -r state
status=$(echo "$state" | sed 's/.*"status": *"\([a-z]*\)".*/\1/')
id=$(echo "$state" | sed 's/.*"id": *"\([^"]*\)".*/\1/')
echo "$1 $status $id $(readlink /proc/self/ns/mnt) $HOOKENV" >> "$2"
"""


def setup_hooks(bundle, tmp_path, fail=None):
    host_hook = tmp_path / "hook.sh"
    host_hook.write_text(HOOK)
    host_hook.chmod(0o755)
    log = tmp_path / "hooks.log"
    # startContainer's path resolves in the container: a copy inside the rootfs
    inner = bundle.path / "rootfs" / "hook.sh"
    inner.write_text(HOOK)
    inner.chmod(0o755)

    def hook(phase, path=str(host_hook), logpath=str(log)):
        h = {"path": path, "args": ["hook.sh", phase, logpath], "env": ["HOOKENV=env-" + phase]}
        if phase == fail:
            h = {"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}
        return h

    hooks = {p: [hook(p)] for p in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    hooks["startContainer"] = [hook("startContainer", "/hook.sh", "/tmp/hooks.log")]
    bundle.config(readonly=False, fn=lambda c: c.update(hooks=hooks))
    return log, bundle.path / "rootfs" / "tmp" / "hooks.log"


def test_all_hooks_in_order_with_state_and_namespace(runtime, bundle, tmp_path):
    log, inner_log = setup_hooks(bundle, tmp_path)
    bundle.config(args=["sleep", "0.3"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    host_mnt = os.readlink("/proc/self/ns/mnt")
    lines = [l.split() for l in log.read_text().splitlines()]
    phases = [l[0] for l in lines]
    assert phases == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"], lines
    st = {l[0]: l[1] for l in lines}
    # runtime.md: poststart sees "running" (runc 1.1.5 passes "created")
    assert st == {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
                  "poststart": "created" if IS_RUNC else "running", "poststop": "stopped"}, lines
    assert all(l[2] == bundle.id for l in lines)
    mnt = {l[0]: l[3] for l in lines}
    for p in ("prestart", "createRuntime", "poststart", "poststop"):
        assert mnt[p] == host_mnt, (p, lines)          # runtime namespace
    assert mnt["createContainer"] != host_mnt, lines    # container namespace
    assert all(l[4] == "env-" + l[0] for l in lines)    # the hook's own env
    inner = inner_log.read_text().split()
    assert inner[0] == "startContainer" and inner[1] == "created", inner
    assert inner[3] != host_mnt


@pytest.mark.parametrize("phase", ["createRuntime", "createContainer"])
def test_hook_sees_lo_up_in_the_containers_network_namespace(runtime, bundle, tmp_path, phase):
    """lo of the container's new network namespace is up before the create
    hooks run (a hook of one kind alone: no other hook orders it)."""
    out = tmp_path / "lo.txt"
    # createRuntime runs in the runtime's namespaces: look through init's.
    look = ("ip -o link show lo" if phase == "createContainer" else
            'pid=$(sed \'s/.*"pid": *\\([0-9]*\\).*/\\1/\'); nsenter -n -t "$pid" ip -o link show lo')
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"{look} > {out}"]}
    bundle.config(args=["true"], fn=lambda c: c.update(hooks={phase: [hook]}))
    # A fault-injection build holds brig for 0.3 s just before it brings lo
    # up: a hook that could overtake that step would see lo down. (runc and
    # other builds ignore the variable.)
    res = runtime.run("run", "--bundle", bundle, bundle.id,
                      env={"BRIG_FAULT": "create.before-lo-up:sleep"})
    assert res.returncode == 0, res
    flags = out.read_text().split("<", 1)[1].split(">", 1)[0].split(",")
    assert "UP" in flags, out.read_text()


def test_failing_create_runtime_hook_fails_create_and_leaves_nothing(runtime, bundle, tmp_path):
    setup_hooks(bundle, tmp_path, fail="createRuntime")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    # brig names the phase; runc says only "error running hook #0"
    assert ("hook #0" if IS_RUNC else "createRuntime hook #0") in res.error, res
    assert "exit status 3" in res.error and "stderr: oops" in res.error, res
    assert runtime.state(bundle.id, check=False) is None


def test_failing_create_container_hook_fails_create(runtime, bundle, tmp_path):
    setup_hooks(bundle, tmp_path, fail="createContainer")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert ("hook #0" if IS_RUNC else "createContainer hook #0") in res.error, res
    assert runtime.state(bundle.id, check=False) is None


@runc_bug("runc 1.1.5 fails create, not start, when a poststart hook is set to fail")
def test_failing_poststart_fails_start_and_stops_the_container(runtime, bundle, tmp_path):
    setup_hooks(bundle, tmp_path, fail="poststart")
    bundle.config(args=["sleep", "100"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    res = runtime.run("start", bundle.id)
    assert res.returncode != 0, res
    assert "poststart hook #0" in res.error, res
    assert runtime.wait_status(bundle.id, "stopped")


def test_failing_poststop_only_warns(runtime, bundle, tmp_path):
    log, _ = setup_hooks(bundle, tmp_path, fail="poststop")
    bundle.config(args=["true"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    runtime.run("start", bundle.id, check=True)
    assert runtime.wait_status(bundle.id, "stopped")
    res = runtime.run("delete", bundle.id)
    assert res.returncode == 0, res
    assert runtime.state(bundle.id, check=False) is None


def test_hooks_without_env_get_the_runtimes_env_or_the_containers(runtime, bundle, tmp_path):
    """A hook without "env" that the runtime runs has the runtime's environment
    (as runc and crun run it); one run in the container (createContainer,
    startContainer) has the container process's, never the caller's, as runc.
    "env": [] is an empty environment."""
    log = tmp_path / "env.log"
    inner_log = "/tmp/env.log"  # startContainer writes in the container's view

    def hook(tag, env=None, logpath=str(log)):
        h = {"path": "/bin/sh",
             "args": ["sh", "-c", f'echo "{tag} ${{BRIG_HOOK_ENV-unset}} ${{CONTAINER_VAR-unset}}" >> {logpath}']}
        if env is not None:
            h["env"] = env
        return h

    runtime_phases = ["prestart", "createRuntime", "poststart", "poststop"]
    hooks = {p: [hook(p), hook(p + "-empty", [])] for p in runtime_phases + ["createContainer"]}
    hooks["startContainer"] = [hook("startContainer", logpath=inner_log),
                               hook("startContainer-empty", [], logpath=inner_log)]

    def edit(c):
        c.update(hooks=hooks)
        c["process"]["env"] = c["process"].get("env", []) + ["CONTAINER_VAR=yes"]

    bundle.config(args=["true"], readonly=False, fn=edit)
    res = runtime.run("run", "--bundle", bundle, bundle.id, env={"BRIG_HOOK_ENV": "inherited"})
    assert res.returncode == 0, res
    got = sorted(log.read_text().splitlines() + (bundle.path / "rootfs/tmp/env.log").read_text().splitlines())
    want = ([f"{p} inherited unset" for p in runtime_phases]
            + [f"{p} unset yes" for p in ("createContainer", "startContainer")]
            + [f"{p}-empty unset unset" for p in runtime_phases + ["createContainer", "startContainer"]])
    assert got == sorted(want), got


def test_hook_past_its_timeout_is_killed_and_create_fails_clean(runtime, bundle, tmp_path):
    pidfile = tmp_path / "hook.pid"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], "timeout": 1}
    bundle.config(args=["true"], fn=lambda c: c.update(hooks={"createRuntime": [hook]}))
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "hook ran past specified timeout of 1.0s" in res.error, res
    assert runtime.state(bundle.id, check=False) is None
    assert not os.path.exists(f"/proc/{pidfile.read_text().strip()}/exe")  # killed


def test_hook_killed_by_a_signal_is_named_as_runc_names_it(runtime, bundle):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "echo hi; kill -SEGV $$"]}
    bundle.config(args=["true"], fn=lambda c: c.update(hooks={"createRuntime": [hook]}))
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "signal: segmentation fault, stdout: hi" in res.error, res  # Go's name, not glibc's
    assert runtime.state(bundle.id, check=False) is None


def test_hook_that_cannot_be_executed_names_path_and_errno(runtime, bundle, tmp_path):
    missing = tmp_path / "no-such-hook"
    bundle.config(args=["true"], fn=lambda c: c.update(hooks={"createRuntime": [{"path": str(missing)}]}))
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    # runc: "fork/exec PATH: no such file or directory"
    assert f"exec {missing}: no such file or directory" in res.error, res
    assert "exit status" not in res.error, res  # not started, so it has no status
    assert runtime.state(bundle.id, check=False) is None


@runc_bug("runc 1.1.5 waits for every holder of a hook's stdout and stderr pipes, not for the hook")
def test_hook_leaving_a_child_with_its_output_does_not_hold_up_create(runtime, bundle, tmp_path):
    pidfile = tmp_path / "bg.pid"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"sleep 30 & echo $! > {pidfile}"]}
    bundle.config(args=["true"], fn=lambda c: c.update(hooks={"createRuntime": [hook]}))
    try:
        res = runtime.run("create", "--bundle", bundle, bundle.id, timeout=10)
        assert res.returncode == 0, res
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), 9)
            except ProcessLookupError:
                pass



def test_bundle_path_that_is_not_utf8_is_refused_cleanly(runtime, bundle, tmp_path):
    """The state file and a hook's stdin are JSON, which holds only UTF-8. runc
    writes such a bundle path mangled (U+FFFD) and then fails to mount its
    rootfs; crun fails to write its JSON. brig aborted on an exception and left
    its state dir: now it refuses the bundle in one line and makes nothing."""
    seen = tmp_path / "prestart.json"
    bundle.config(args=["true"], fn=lambda c: c.update(
        hooks={"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {seen}"]}]}))
    bad = bundle.path.parent / os.fsdecode(os.fsencode(bundle.path.name) + b"-\xff")
    os.rename(bundle.path, bad)
    try:
        for cmd in ("run", "create"):
            res = runtime.run(cmd, "--bundle", bad, bundle.id)
            assert res.returncode == 1, res
            if not IS_RUNC:
                assert res.error.endswith(f"bundle {str(bad)[:-1]}\ufffd: the path is not valid UTF-8"), res
            assert runtime.state(bundle.id, check=False) is None
            assert not os.path.lexists(os.path.join(runtime.root, bundle.id))
        assert not seen.exists()
    finally:
        os.rename(bad, bundle.path)
