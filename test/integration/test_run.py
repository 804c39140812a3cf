"""`run` in the foreground and detached: what the process sees and what `run` returns."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_RUNC, brig_only, proc_alive, wait_for


def run_fg(runtime, bundle, *args, input=None, check=True, **kw):
    res = runtime.run("run", "--bundle", bundle, *args, bundle.id, input=input, **kw)
    if check:
        assert res.returncode == 0, f"run failed:\n{res}"
    return res


@brig_only
def test_debug_phase_marks_carry_time_and_page_faults_per_process(runtime, bundle):
    """--debug phase marks (contrib/bench/README.md): "phase WHAT +N ms, F
    faults", F the process's minor faults so far: brig's own count only
    grows over its marks, and init's (replayed by brig) counts from its clone."""
    bundle.config(args=["true"])
    res = run_fg(runtime, bundle, global_args=["--debug"])
    marks = re.findall(r'msg="phase ([^"+]+?) \+([0-9.]+) ms, ([0-9]+) faults"', res.stderr)
    own = [int(f) for what, _, f in marks if what.split(":")[0] in ("create", "spawn", "start", "run", "delete")]
    init = [int(f) for what, _, f in marks if what.startswith("init:")]
    assert len(own) >= 5 and len(init) >= 5, res.stderr
    assert own == sorted(own) and own[-1] > 0, own
    assert init == sorted(init) and init[-1] > 0, init
    # Counted from the clone, not inherited: init's first mark is below what
    # brig had taken before its first mark (the loader's faults alone).
    assert init[0] < own[0], (own, init)
    assert all("faults" in l for l in res.stderr.splitlines() if "msg=\"phase " in l), res.stderr


# An ASan build always clones copies (its shadow memory and fake stacks
# cannot follow a second process running in the same memory).
SANITIZED = "detect_leaks" in os.environ.get("ASAN_OPTIONS", "")
SHARED = "phase spawn: init cloned, sharing our memory, and ready +"
COPY = "phase spawn: init cloned +"


@brig_only
@pytest.mark.skipif(SANITIZED, reason="an ASan build clones copies")
def test_init_shares_brigs_memory_unless_a_step_needs_both(runtime, bundle):
    """init runs in brig's memory (InitContext::shared_memory) unless a step
    needs both at once; then, or with BRIG_CLONE_COPY=1, it is a copy. Either
    way the container is the same: lo up, its own network namespace, only
    stdio open, the seccomp filter loaded after start (raw, from init's own
    mapping, when shared)."""
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 39}]}
    show = ("cat /sys/class/net/lo/flags; readlink /proc/self/ns/net; ls /proc/self/fd | wc -l;"
            " mkdir /tmp/x 2>&1 | grep -c 'Directory not empty'")  # ENOTEMPTY: only the filter says that
    bundle.config(args=["sh", "-c", show], readonly=False, fn=lambda c: (c["linux"].update(seccomp=seccomp), c["process"].update(noNewPrivileges=True)))
    host_net = os.readlink("/proc/self/ns/net")
    seen = {}
    for mode, env in (("shared", None), ("copy", {"BRIG_CLONE_COPY": "1"})):
        res = run_fg(runtime, bundle, global_args=["--debug"], env=env)
        assert (SHARED if mode == "shared" else COPY) in res.stderr, res.stderr
        flags, net, nfds, filtered = res.stdout.split()
        assert int(flags, 16) & 1, res.stdout  # IFF_UP
        assert net != host_net
        assert nfds == "4", res.stdout  # 0 1 2 and ls's own directory
        assert filtered == "1", res.stdout
        seen[mode] = res.stdout.replace(net, "NET")
        # init's own faults, from its clone to its ready: few when it shares
        # brig's pages, dozens more as a copy (copy-on-write, refaults).
        init = [int(f) for f in re.findall(r'msg="phase init: ready \+[0-9.]+ ms, ([0-9]+) faults"', res.stderr)]
        seen[mode + " faults"] = init[0]
    assert seen["shared"] == seen["copy"]
    assert seen["shared faults"] < seen["copy faults"], seen
    # A hook init runs after "ready" needs the C library there: a copy.
    bundle.config(fn=lambda c: c.update(hooks={"startContainer": [{"path": "/bin/true"}]}))
    res = run_fg(runtime, bundle, global_args=["--debug"])
    assert COPY in res.stderr, res.stderr


@brig_only
@pytest.mark.skipif(SANITIZED, reason="an ASan build clones copies")
def test_init_reads_nothing_of_brigs_after_its_hand_over(runtime, bundle):
    """On one CPU brig often runs on right after init's "ready" (returns,
    writes its state, starts) before init goes on: init must not read its
    sync fd (or anything else) from brig's stack then, or it closes
    whatever brig keeps there (the container's stdin, once in ~30 runs)."""
    bundle.config(args=["ls", "/proc/self/fd"])
    runtime.prefix = ["taskset", "-c", "0", *runtime.prefix]
    for i in range(40):
        res = run_fg(runtime, bundle, input="")
        assert res.stdout.split() == ["0", "1", "2", "3"], (i, res)


@brig_only
def test_oom_score_adj_is_the_containers_not_brigs(runtime, bundle):
    """init writes process.oomScoreAdj; in memory shared with brig the
    kernel would write it to brig too: such a config keeps a copy."""
    bundle.config(args=["sh", "-c", "cat /proc/self/oom_score_adj; sleep 2"],
                  fn=lambda c: c["process"].update(oomScoreAdj=500))
    own = open("/proc/self/oom_score_adj").read()
    p = subprocess.Popen(runtime.cmd("run", "--bundle", bundle, bundle.id), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=runtime.env())
    runtime.track(bundle.id)
    try:
        assert p.stdout.readline() == "500\n"
        assert open(f"/proc/{p.pid}/oom_score_adj").read() == own
    finally:
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err


def _hot_text_end(binary):
    """brig_hot_text_end's offset in the executable segment and the symbol
    table ({name: address}), or (None, table) when the build has no function
    order (no ld.lld, or a sanitizer build)."""
    nm = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tTwW":
            table[f[2]] = int(f[0], 16)
    if "brig_hot_text_end" not in table:
        return None, table
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        f = line.split()
        if f[:1] == ["LOAD"] and f[-3:-1] == ["R", "E"]:
            return table["brig_hot_text_end"] - (int(f[2], 16) & ~0xfff), table
    return None, table


@brig_only
def test_hot_code_is_mapped_in_one_call_before_and_after_the_self_exe_move(runtime, bundle, tmp_path):
    """The code the common commands run is linked first, in the order of
    contrib/bench/hot-functions.txt, and ends at brig_hot_text_end, listed
    last: every listed function the binary has lies below it. brig maps that
    range in one call as it starts and again after the self-exe move maps
    the binary anew (runtime/selfexe.hpp, set_hot_text); the move's debug
    line says how much."""
    end, table = _hot_text_end(runtime.binary)
    if end is None:
        sanitized = any(n.startswith(("__asan_", "__ubsan_")) for n in table)
        if sanitized or not shutil.which("ld.lld"):
            pytest.skip("a build without the function order (sanitizers, or no ld.lld)")
        pytest.fail("ld.lld is installed but brig was linked without its function order")
    listed = Path(__file__).parents[2] / "contrib" / "bench" / "hot-functions.txt"
    names = [n.strip() for n in listed.read_text().splitlines() if n.strip() and not n.startswith("#")]
    assert names[-1] == "brig_hot_text_end"
    hot = [n for n in names[:-1] if n in table]
    assert len(hot) > len(names) // 2, "most listed functions are in the binary"
    above = [n for n in hot if table[n] >= table["brig_hot_text_end"]]
    assert not above, above[:5]
    log = tmp_path / "debug.log"
    bundle.config(args=["true"])
    run_fg(runtime, bundle, global_args=["--debug", "--log", str(log)])
    kib = (end + 4095) // 4096 * 4
    one = " (one call)" if os.uname().machine == "x86_64" else ""
    assert f"self-exe protection: remapped in place{one}; hot code mapped ({kib} KiB)" in log.read_text()


@brig_only
def test_loader_finds_brigs_libraries_without_ld_so_cache(runtime):
    """brig's DT_RUNPATH names the folders its shared libraries were linked
    from, every one absolute (an empty entry would be the working directory),
    so the loader finds them there and never opens /etc/ld.so.cache
    (CMakeLists.txt: its munmap's TLB flush is dear on a VM)."""
    dyn = subprocess.run(["readelf", "-d", runtime.binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dyn)
    if not needed:
        pytest.skip("a fully static build loads nothing")
    runpath = re.search(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", dyn)
    assert runpath, dyn
    dirs = runpath.group(1).split(":")
    assert all(d.startswith("/") for d in dirs), dirs
    env = dict(os.environ, LD_DEBUG="libs")
    env.pop("LD_LIBRARY_PATH", None)
    res = subprocess.run([runtime.binary, "--version"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res
    assert "find library=libc.so.6" in res.stderr, res.stderr  # LD_DEBUG was heard
    assert "search cache=" not in res.stderr, res.stderr


@brig_only
@pytest.mark.parametrize("copy", [False, True], ids=["shared", "copy"])
def test_exec_error_after_start_is_init_s_last_word(runtime, bundle, copy):
    """An execve that fails after `start` (a file the kernel cannot run):
    init says so on the container's stderr and exits 127, whether it shares
    brig's memory (raw syscalls only, then) or is a copy."""
    bad = bundle.rootfs / "not-a-program"
    bad.write_text("neither ELF nor #!\n")
    bad.chmod(0o755)
    bundle.config(args=["/not-a-program"])
    res = run_fg(runtime, bundle, check=False, env={"BRIG_CLONE_COPY": "1"} if copy else None)
    assert res.returncode == 127, res
    assert res.stderr == "exec /not-a-program: exec format error\n", res
    assert runtime.run("list", "-q", check=True).stdout == ""


@brig_only
@pytest.mark.parametrize("copy", [False, True], ids=["shared", "copy"])
def test_address_space_limit_below_brigs_own(runtime, bundle, copy):
    """process.rlimits RLIMIT_AS below brig's own address space: init sets
    it before "ready", and sharing brig's memory it can map nothing after
    that; what it needs then was mapped before its set-up."""
    limit = 6 << 20
    bundle.config(args=["sh", "-c", "ulimit -v"],
                  fn=lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_AS", "hard": limit, "soft": limit}]))
    res = run_fg(runtime, bundle, env={"BRIG_CLONE_COPY": "1"} if copy else None)
    assert res.stdout == f"{limit >> 10}\n", res


def test_hostname(runtime, bundle):
    bundle.config(args=["hostname"], hostname="itest-host")
    res = run_fg(runtime, bundle)
    assert res.stdout == "itest-host\n", res


def test_pid_one_in_new_pid_namespace(runtime, bundle):
    bundle.config(args=["sh", "-c", "echo $$"])
    res = run_fg(runtime, bundle)
    assert res.stdout == "1\n", res


def _mountinfo(text):
    out = {}
    for line in text.splitlines():
        pre, _, post = line.partition(" - ")
        f = pre.split()
        fstype, source, sopts = post.split(" ", 2)
        out[f[4]] = {"root": f[3], "opts": f[5].split(","), "fstype": fstype,
                     "source": source, "sopts": sopts.split(",")}
    return out


def test_mounts_inside(runtime, bundle):
    bundle.config(args=["cat", "/proc/self/mountinfo"])
    res = run_fg(runtime, bundle)
    mi = _mountinfo(res.stdout)
    assert "/" in mi, res.stdout
    # The container's root mount: read-only (root.readonly is true by default)
    assert "ro" in mi["/"]["opts"], mi["/"]
    expect = {"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts",
              "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs"}
    for mp, fstype in expect.items():
        assert mp in mi, f"{mp} not mounted:\n{res.stdout}"
        assert mi[mp]["fstype"] == fstype, (mp, mi[mp])
    assert "ro" in mi["/sys"]["opts"], mi["/sys"]
    for mp in ("/dev/shm", "/dev/mqueue", "/dev/pts"):
        assert "nosuid" in mi[mp]["opts"] and "noexec" in mi[mp]["opts"], (mp, mi[mp])
    # nothing of the host's mount table shows through (e.g. the host's /tmp bundle)
    assert not any(str(bundle.path) in mp for mp in mi), res.stdout


def test_exit_status_propagated(runtime, bundle):
    bundle.config(args=["sh", "-c", "exit 7"])
    res = run_fg(runtime, bundle, check=False)
    assert res.returncode == 7, res
    assert res.stderr == "", res
    bundle.config(args=["false"])
    res = run_fg(runtime, bundle, check=False)
    assert res.returncode == 1, res


def test_killed_by_signal_gives_128_plus_n(runtime, bundle):
    # Without a pid namespace the process is not a namespace init, so it can
    # kill itself; `run` then exits 128+SIGKILL.
    bundle.config(args=["sh", "-c", "kill -9 $$"], drop_ns=["pid"])
    res = run_fg(runtime, bundle, check=False)
    assert res.returncode == 137, res


def test_killed_from_outside_while_in_foreground(runtime, bundle):
    bundle.config(args=["sleep", "60"])
    p = runtime.popen("run", "--bundle", bundle, bundle.id)
    try:
        assert runtime.wait_status(bundle.id, "running"), "container never ran"
        st = runtime.state(bundle.id)
        runtime.record_pid(bundle.id, st["pid"])
        runtime.run("kill", bundle.id, "KILL", check=True)
        rc = p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 137
    # without --keep, a foreground run removes the container when it ends
    assert runtime.run("state", bundle.id).returncode == 1


def test_stdin_passed_through(runtime, bundle):
    bundle.config(args=["cat"])
    data = "hello from stdin\nsecond line\n"
    res = run_fg(runtime, bundle, input=data)
    assert res.stdout == data, res


def test_env(runtime, bundle):
    bundle.config(args=["env"], env=["PATH=/bin", "FOO=bar baz", "EMPTY="])
    res = run_fg(runtime, bundle)
    lines = res.stdout.splitlines()
    assert "FOO=bar baz" in lines, res
    assert "EMPTY=" in lines, res
    assert "PATH=/bin" in lines, res
    # runc adds HOME from /etc/passwd when the config has none
    assert "HOME=/root" in lines, res


def test_home_from_a_passwd_without_end_fails_cleanly_and_a_fifo_is_not_waited_on(runtime, bundle):
    """HOME comes from the container's /etc/passwd, a file the container
    owns. Pointed at /dev/zero, brig read it until init died of bad_alloc;
    runc fails with "unable to find user". Now create and exec stop at 16 MiB
    with one line, and a FIFO there (which would have kept brig waiting)
    reads as empty: HOME=/."""
    bundle.config(args=["sleep", "100"], env=["PATH=/bin"], readonly=False)
    passwd = bundle.rootfs / "etc" / "passwd"
    kept = passwd.read_text()
    passwd.unlink()
    passwd.symlink_to("/dev/zero")
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    too_big = "unable to find user 0: /etc/passwd: read: file too large"
    if not IS_RUNC:
        assert res.error.endswith(too_big), res
    assert runtime.state(bundle.id, check=False) is None
    # A container that swaps its own /etc/passwd for one makes exec fail the same way.
    passwd.unlink()
    passwd.write_text(kept)
    runtime.run("run", "--detach", "--bundle", bundle, bundle.id, check=True)
    runtime.run("exec", bundle.id, "sh", "-c", "/bin/busybox rm /etc/passwd && /bin/busybox ln -s /dev/zero /etc/passwd",
                check=True)
    res = runtime.run("exec", bundle.id, "true", timeout=20)
    assert res.returncode != 0, res
    if not IS_RUNC:
        assert too_big in res.error, res
        runtime.run("exec", "--env", "HOME=/", bundle.id, "sh", "-c",
                    "/bin/busybox rm /etc/passwd && /bin/busybox mkfifo /etc/passwd", check=True)
        res = runtime.run("exec", bundle.id, "sh", "-c", "echo $HOME", timeout=20, check=True)
        assert res.stdout == "/\n", res
        # With HOME set brig looks nothing up (runc reads /etc/passwd anyway).
        runtime.run("exec", "--env", "HOME=/h", bundle.id, "true", check=True)
    runtime.run("delete", "--force", bundle.id, check=True)


def test_cwd(runtime, bundle):
    bundle.config(args=["pwd"], cwd="/tmp")
    assert run_fg(runtime, bundle).stdout == "/tmp\n"


def test_cwd_created_if_missing(runtime, bundle):
    bundle.config(args=["pwd"], cwd="/does/not/exist", readonly=False)
    assert run_fg(runtime, bundle).stdout == "/does/not/exist\n"


def test_cwd_created_in_a_read_only_root(runtime, bundle):
    """runc makes a missing cwd before the root turns read-only."""
    bundle.config(args=["pwd"], cwd="/does/not/exist", readonly=True)
    assert run_fg(runtime, bundle).stdout == "/does/not/exist\n"
    assert (bundle.rootfs / "does" / "not" / "exist").is_dir()


def test_user(runtime, bundle):
    bundle.config(args=["id"], user={"uid": 1000, "gid": 1000, "additionalGids": [2000]})
    res = run_fg(runtime, bundle)
    # the supplementary groups are exactly additionalGids (not the primary gid)
    assert res.stdout == "uid=1000(user) gid=1000(user) groups=2000(extra)\n", res


def test_user_home_env(runtime, bundle):
    bundle.config(args=["sh", "-c", "echo $HOME"], user={"uid": 1000, "gid": 1000})
    assert run_fg(runtime, bundle).stdout == "/tmp\n"


def test_user_home_from_a_passwd_only_root_may_read(runtime, bundle):
    """HOME is looked up as root, before the switch to the container's user,
    as runc does: /etc/passwd readable by root alone still gives the user's
    entry, in run and in exec. (brig read it as the user until 2026-12-06,
    and gave HOME=/.)"""
    show = "echo $HOME; cat /etc/passwd >/dev/null 2>&1 || echo unreadable"
    bundle.config(args=["sh", "-c", show], user={"uid": 1000, "gid": 1000})
    os.chmod(bundle.rootfs / "etc" / "passwd", 0o600)
    assert run_fg(runtime, bundle).stdout == "/tmp\nunreadable\n"
    bundle.config(args=["sleep", "100"])
    runtime.run("run", "--detach", "--bundle", bundle, bundle.id, check=True)
    try:
        res = runtime.run("exec", bundle.id, "sh", "-c", show, timeout=20, check=True)
        assert res.stdout == "/tmp\nunreadable\n", res
    finally:
        runtime.run("delete", "--force", bundle.id, check=True)


def test_keep(runtime, bundle):
    bundle.config(args=["true"])
    res = run_fg(runtime, bundle, "--keep")
    assert res.stdout == "", res
    st = runtime.state(bundle.id)
    assert st["status"] == "stopped"
    assert os.path.isdir(os.path.join(runtime.root, bundle.id))
    runtime.run("delete", bundle.id, check=True)
    assert runtime.run("state", bundle.id).returncode == 1
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_no_keep_removes_state(runtime, bundle):
    bundle.config(args=["true"])
    run_fg(runtime, bundle)
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    res = runtime.run("list", "-q", check=True)
    assert res.stdout == ""


def test_detached(runtime, bundle):
    bundle.config(args=["sleep", "60"])
    t0 = time.monotonic()
    res = runtime.run("run", "-d", "--bundle", bundle, bundle.id, timeout=20)
    assert res.returncode == 0, res
    assert time.monotonic() - t0 < 10
    assert res.stdout == "" and res.stderr == "", res
    st = runtime.state(bundle.id)
    assert st["status"] == "running"
    pid = st["pid"]
    assert proc_alive(pid, None)
    assert os.readlink(f"/proc/{pid}/exe").endswith("busybox")
    runtime.run("kill", bundle.id, "KILL", check=True)
    assert runtime.wait_status(bundle.id, "stopped")
    runtime.run("delete", bundle.id, check=True)
    assert wait_for(lambda: not proc_alive(pid, None), 5)
    assert runtime.run("list", "-q", check=True).stdout == ""


def test_detached_pid_file(runtime, bundle, tmp_path):
    bundle.config(args=["sleep", "60"])
    pidfile = tmp_path / "run.pid"
    runtime.run("run", "-d", "--pid-file", pidfile, "--bundle", bundle, bundle.id,
                check=True)
    st = runtime.state(bundle.id)
    assert pidfile.read_text() == str(st["pid"])


def test_bundle_defaults_to_cwd(runtime, bundle):
    bundle.config(args=["true"])
    res = runtime.run("run", "--keep", bundle.id, cwd=bundle.path)
    assert res.returncode == 0, res
    assert runtime.state(bundle.id)["bundle"] == str(bundle.path)
