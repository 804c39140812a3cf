"""Process attributes the default spec sets: capabilities, no_new_privs, rlimits,
stdio wiring and signal forwarding of a foreground `run`."""

import signal
import time

from conftest import runc_bug


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def test_capabilities_and_no_new_privs(runtime, bundle):
    bundle.config(args=["cat", "/proc/self/status"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    st = status_fields(res.stdout)
    # CAP_KILL(5) | CAP_NET_BIND_SERVICE(10) | CAP_AUDIT_WRITE(29)
    want = f"{(1 << 5) | (1 << 10) | (1 << 29):016x}"
    zero = "0" * 16
    # the default spec has no inheritable set, so the ambient set cannot be
    # raised either (runc ignores that failure)
    exp = {"CapInh": zero, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": zero}
    got = {k: st[k] for k in exp}
    assert got == exp, res.stdout
    assert st["NoNewPrivs"] == "1", res.stdout


def test_capabilities_for_non_root_user(runtime, bundle):
    bundle.config(args=["cat", "/proc/self/status"], user={"uid": 1000, "gid": 1000})
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    st = status_fields(res.stdout)
    want = f"{(1 << 5) | (1 << 10) | (1 << 29):016x}"
    zero = "0" * 16
    # with no inheritable/ambient caps, exec as a non-root uid drops the
    # permitted and effective sets; the bounding set stays
    exp = {"CapInh": zero, "CapPrm": zero, "CapEff": zero, "CapBnd": want, "CapAmb": zero}
    assert {k: st[k] for k in exp} == exp, res.stdout
    assert st["NoNewPrivs"] == "1"
    assert st["Uid"].split() == ["1000"] * 4, st["Uid"]
    assert st["Gid"].split() == ["1000"] * 4, st["Gid"]


def test_ambient_capabilities_raised_where_inheritable(runtime, bundle):
    """An ambient capability needs to be permitted and inheritable: the one
    that is (KILL) is raised and survives the exec as uid 1000, the one that
    is not (NET_BIND_SERVICE) is left out without failing the start."""
    three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    caps = {"bounding": three, "effective": three, "permitted": three,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"]}
    bundle.config(args=["cat", "/proc/self/status"], user={"uid": 1000, "gid": 1000},
                  fn=lambda c: c["process"].update(capabilities=caps))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    st = status_fields(res.stdout)
    kill = f"{1 << 5:016x}"
    exp = {"CapInh": kill, "CapPrm": kill, "CapEff": kill, "CapAmb": kill,
           "CapBnd": f"{(1 << 5) | (1 << 10) | (1 << 29):016x}"}
    assert {k: st[k] for k in exp} == exp, res.stdout
    assert st["Uid"].split() == ["1000"] * 4, st["Uid"]


def _status_under(runtime, bundle, ignored=(), blocked=()):
    """The container's /proc/self/status, `run` from a caller that ignores
    and blocks the given signals (both pass through fork and execve)."""
    bundle.config(args=["cat", "/proc/self/status"])
    old = {s: signal.signal(s, signal.SIG_IGN) for s in ignored}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(blocked))
    try:
        res = runtime.run("run", "--bundle", bundle, bundle.id)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for s, h in old.items():
            signal.signal(s, h)
    assert res.returncode == 0, res
    return status_fields(res.stdout), res


def test_signals_the_caller_ignores_start_at_their_default(runtime, bundle):
    # nohup's SIGHUP, a shell's SIGINT: the container's process must not
    # inherit them (brig resets just the ones /proc/self/status lists).
    st, res = _status_under(runtime, bundle,
                            ignored=(signal.SIGHUP, signal.SIGUSR2, signal.SIGRTMIN + 3))
    zero = "0" * 16
    assert (st["SigIgn"], st["SigCgt"]) == (zero, zero), res.stdout


@runc_bug("runc 1.1.5 passes the caller's blocked signals to the container's process")
def test_signals_the_caller_blocks_start_unblocked(runtime, bundle):
    st, res = _status_under(runtime, bundle, blocked=(signal.SIGUSR1, signal.SIGWINCH))
    assert st["SigBlk"] == "0" * 16, res.stdout


def test_rlimit_nofile(runtime, bundle):
    bundle.config(args=["sh", "-c", "ulimit -n; ulimit -Hn"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.split() == ["1024", "1024"], res


def test_stdout_and_stderr_are_separate(runtime, bundle):
    bundle.config(args=["sh", "-c", "echo to-out; echo to-err >&2"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout == "to-out\n" and res.stderr == "to-err\n", res


def test_only_stdio_fds_inherited(runtime, bundle):
    bundle.config(args=["ls", "/proc/self/fd"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    # 0,1,2 and the fd ls opened for the directory itself
    assert res.stdout.split() == ["0", "1", "2", "3"], res


def test_foreground_run_forwards_signals(runtime, bundle):
    bundle.config(args=["sh", "-c", "trap 'echo got-term; exit 143' TERM; "
                                    "while true; do sleep 0.05; done"])
    p = runtime.popen("run", "--bundle", bundle, bundle.id)
    try:
        assert runtime.wait_status(bundle.id, "running"), "container never ran"
        runtime.record_pid(bundle.id, runtime.state(bundle.id)["pid"])
        time.sleep(0.3)  # let the trap be installed
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p.outfile.seek(0)
    assert rc == 143
    assert p.outfile.read() == "got-term\n"
