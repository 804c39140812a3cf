#!/usr/bin/python3
"""PID 1 of the cgroup v2 test guest (run by contrib/vm/init after switch_root).

The guest's root is the host's, read-only, with tmpfs on /tmp, /run, /root;
/sys/fs/cgroup is a pure cgroup2 hierarchy (cgroup_no_v1=all). This enables
every available controller in the root's cgroup.subtree_control, runs the
cgroup integration tests against the built brig (argument: the brig binary),
reaps orphans the whole time (we are PID 1), prints one line
"BRIG-VM-RESULT rc=N" with pytest's exit status, and powers off.
"""

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(f"brig-guest: {msg}", flush=True)


def setup():
    os.environ.update(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      HOME="/root", PYTHONDONTWRITEBYTECODE="1", TMPDIR="/tmp", LANG="C.UTF-8")
    cg = "/sys/fs/cgroup"
    ctrls = open(f"{cg}/cgroup.controllers").read().split()
    for c in ctrls:
        try:
            with open(f"{cg}/cgroup.subtree_control", "w") as f:
                f.write(f"+{c}")
        except OSError as e:
            log(f"cannot enable {c}: {e}")
    log("cgroup2 controllers: " + open(f"{cg}/cgroup.subtree_control").read().strip())
    try:
        cs = open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
    except OSError:
        cs = "?"
    log(f"clocksource {cs}, {os.cpu_count()} CPUs")
    with open("/proc/uptime") as f:
        log(f"guest up {f.read().split()[0]} s")


def run_tests(brig):
    env = dict(os.environ, BRIG=brig, BRIG_TEST_IN_VM="1")
    # Only the files that carry the `cgroup` marker: importing the whole
    # suite just to deselect it costs tens of seconds under TCG.
    tdir = f"{REPO}/test/integration"
    files = sorted(f"{tdir}/{n}" for n in os.listdir(tdir)
                   if n.startswith("test_") and n.endswith(".py")
                   and "pytest.mark.cgroup" in open(f"{tdir}/{n}").read())
    args = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--color=no",
            "--durations=15",
            # a test stuck this long dumps every thread's stack to the console
            "-o", "faulthandler_timeout=240", "-m", "cgroup", *files]
    extra = os.environ.get("brig_pytest_k")
    if extra:  # "a,b" (the kernel command line splits at spaces) -> -k "a or b"
        args += ["-k", " or ".join(extra.split(","))]
    p = subprocess.Popen(args, env=env, cwd="/tmp")
    rc = None
    while rc is None:
        try:
            pid, status = os.wait()  # reaps orphans too
        except ChildProcessError:
            break
        if pid == p.pid:
            rc = os.waitstatus_to_exitcode(status)
    return 125 if rc is None else rc


def main():
    rc = 125
    try:
        setup()
        t0 = time.monotonic()
        rc = run_tests(sys.argv[1] if len(sys.argv) > 1 else f"{REPO}/build/brig")
        log(f"tests took {time.monotonic() - t0:.1f} s")
    except BaseException as e:  # PID 1 must not die before reporting
        log(f"error: {e!r}")
    print(f"BRIG-VM-RESULT rc={rc}", flush=True)
    os.sync()
    os.execv("/bin/busybox", ["reboot", "-f"])


main()
