"""Fixtures for brig's integration tests.

The tests drive a runc-compatible binary as a user would.  The binary comes
from the environment variable BRIG (CTest sets it to the built brig); the same
suite runs against runc itself (BRIG=$(which runc)), which proves that the
tests encode runc's real behaviour.

Every test gets its own state directory (passed as the global flag
``--root DIR``), so tests never touch /run/runc or /run/brig, and a leak check
runs after each test: every container the test made is force-deleted and then
nothing may be left -- no state dir, no process, no cgroup dir, no mount.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

# --------------------------------------------------------------------------
# The binary under test
# --------------------------------------------------------------------------

BRIG = os.environ.get("BRIG") or shutil.which("brig") or ""
NAME = os.path.basename(BRIG)
IS_RUNC = NAME == "runc"

# Things brig does on purpose differently from runc (keep these few).
brig_only = pytest.mark.skipif(IS_RUNC, reason="brig-specific behaviour")


def runc_bug(reason):
    """A test of behaviour runc itself gets wrong (an xfail for runc only).

    Leftovers after such a test are reported, not failed, under runc."""
    def deco(f):
        f = pytest.mark.xfail(IS_RUNC, reason=f"runc bug: {reason}", strict=False)(f)
        return pytest.mark.runc_bug(f)
    return deco


def pytest_configure(config):
    config.addinivalue_line("markers", "runc_bug: runc itself misbehaves here")
    config.addinivalue_line(
        "markers", "cgroup: cgroup tests, also run on pure cgroup v2 in a guest VM (test/vm/)")

BUSYBOX = "/bin/busybox"
APPLETS = [
    "sh", "ls", "cat", "echo", "hostname", "mount", "sleep", "true", "false",
    "id", "ps", "readlink", "stat", "grep", "test", "env", "pwd", "kill", "wc",
    "touch", "mkdir", "umount", "head",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_layout():
    """"v2" when /sys/fs/cgroup itself is cgroup2 (pure v2, as in the guest
    of test/vm/), "hybrid" with v1 controllers plus cgroup2 at unified/ (this
    CI host), else "v1"."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return "v2"
    if (CGROUP_ROOT / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    return "v1"


# Set by test/vm/guest-init.py: the tests run in an emulated guest, where
# everything takes many times longer (time bounds relax, loops shrink).
IN_VM = os.environ.get("BRIG_TEST_IN_VM") == "1"

CGROUP_LAYOUT = _cgroup_layout()
CGROUP_V2 = CGROUP_LAYOUT == "v2"
v1_only = pytest.mark.skipif(CGROUP_V2, reason="cgroup v1 files (pure cgroup v2 host)")
v2_only = pytest.mark.skipif(not CGROUP_V2, reason="needs a pure cgroup v2 host (test/vm/ tier)")


def cgroup_dir(controller, path):
    """The directory of cgroup `path` holding `controller`'s files: the one
    unified directory on pure v2, the controller's hierarchy otherwise."""
    rel = str(path).lstrip("/")
    return CGROUP_ROOT / rel if CGROUP_V2 else CGROUP_ROOT / controller / rel


def v2_controllers():
    """Controllers the pure v2 root offers to its children."""
    try:
        return (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
    except OSError:
        return []
# runc, given no linux.cgroupsPath, puts a container in "<id>" *relative to
# its own cgroup*; on this host our shell's memory cgroup is the sandbox's
# (/process_api/...), where we must create nothing.  So bundles made for runc
# get an absolute cgroupsPath under this parent.  brig's default placement
# (/brig/<id>) is left alone and checked by a brig-only test.
RUNC_CGROUP_PARENT = "brigtest"

SESSION = uuid.uuid4().hex[:6]
_counter = [0]

# A marker put into the environment of the runtime and of the container
# processes, so that the leak check finds any process a test left behind.
MARKER_VAR = "BRIG_ITEST"


def new_id(prefix="c"):
    _counter[0] += 1
    return f"{prefix}{SESSION}-{_counter[0]:03d}"


def pytest_report_header(config):
    return f"runtime under test: {BRIG or '(BRIG not set)'}"


@pytest.fixture(scope="session", autouse=True)
def _require_binary():
    if not BRIG or not os.access(BRIG, os.X_OK):
        pytest.exit(f"BRIG={BRIG!r} is not an executable; set BRIG=/path/to/brig "
                    f"(or BRIG=$(which runc))", returncode=4)
    if os.geteuid() != 0:
        pytest.exit("the integration tests need root", returncode=4)
    yield
    # Parents of runc test cgroups: remove the empty ones we created.
    for ctrl in _hierarchies():
        d = ctrl / RUNC_CGROUP_PARENT
        if d.is_dir():
            try:
                os.rmdir(d)
            except OSError:
                pass


# --------------------------------------------------------------------------
# logfmt / error helpers
# --------------------------------------------------------------------------

LOGFMT_RE = re.compile(
    r'^time="(?P<time>[^"]*)" level=(?P<level>\w+) msg="(?P<msg>(?:[^"\\]|\\.)*)"$')


def parse_logfmt(line):
    """Parse one `time="..." level=error msg="..."` line; None if it is not one."""
    m = LOGFMT_RE.match(line.strip())
    if not m:
        return None
    msg = json.loads('"' + m.group("msg") + '"')
    return {"time": m.group("time"), "level": m.group("level"), "msg": msg}


def error_msg(res):
    """The msg of the single error line on stderr (asserts there is exactly one line)."""
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got:\n{res.stderr}"
    rec = parse_logfmt(lines[0])
    assert rec is not None, f"stderr line is not logfmt: {lines[0]!r}"
    assert rec["level"] == "error", f"not an error line: {lines[0]!r}"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rec["time"]), rec
    return rec["msg"]


# --------------------------------------------------------------------------
# Host inspection helpers
# --------------------------------------------------------------------------

def _hierarchies():
    if CGROUP_V2:
        return [CGROUP_ROOT]  # its subdirectories are cgroups, not hierarchies
    out = []
    if CGROUP_ROOT.is_dir():
        for d in sorted(CGROUP_ROOT.iterdir()):
            if d.is_dir() and not d.is_symlink():
                out.append(d)
    return out


def proc_cgroups(pid):
    """{hierarchy-dir: path} for a live pid, from /proc/<pid>/cgroup."""
    res = {}
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return res
    mounts = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        f = pre.split()
        fstype, _source, opts = post.split(" ", 2)
        if fstype == "cgroup2":
            mounts[""] = f[4]
        elif fstype == "cgroup":
            for o in opts.split(","):
                if o not in ("rw", "ro") and not o.startswith("relatime"):
                    mounts.setdefault(o, f[4])
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        key = ctrls.split(",")[0] if ctrls else ""
        mnt = mounts.get(key)
        if mnt is None and ctrls:
            # co-mounted controllers, e.g. cpu,cpuacct
            mnt = mounts.get(ctrls)
        if mnt:
            res[mnt] = path
    return res


def proc_starttime(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def proc_alive(pid, starttime):
    """True if the pid still is the same process and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    rest = stat.rsplit(")", 1)[1].split()
    if starttime is not None and rest[19] != starttime:
        return False  # pid reused
    return rest[0] not in ("Z", "X")


def marked_pids(marker, paths=(), cgroup_names=()):
    """PIDs of live processes a test left: the environment carries the marker
    (the runtime and the container's processes get it), or the environment or
    command line names one of `paths` (runc's re-exec'd `runc init` has a
    clean environment but _LIBCONTAINER_STATEDIR=<root>/<id>), or the process
    sits in a cgroup named after one of `cgroup_names`."""
    needle = f"{MARKER_VAR}={marker}".encode()
    bpaths = [str(p).encode() for p in paths]
    names = set(cgroup_names)
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        hit = False
        try:
            env = Path(f"/proc/{p}/environ").read_bytes()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
            hit = needle in env.split(b"\0") or any(b in env or b in cmd for b in bpaths)
            if not hit and names:
                for line in Path(f"/proc/{p}/cgroup").read_text().splitlines():
                    if any(seg in names for seg in line.split(":", 2)[2].split("/")):
                        hit = True
                        break
        except OSError:
            continue
        if hit and proc_alive(int(p), None):
            found.append(int(p))
    return found


def mounts_under(path):
    path = str(path)
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].encode().decode("unicode_escape")
        if mp == path or mp.startswith(path.rstrip("/") + "/"):
            out.append(mp)
    return out


def ns_link(pid, ns):
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def wait_for(pred, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(interval)


class ConsoleSocket:
    """A --console-socket listener at `path`: read() takes the pty master the
    runtime sends and returns everything the container writes until it ends."""

    def __init__(self, path, timeout=20):
        import socket
        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.srv.settimeout(timeout)

    def read(self):
        import socket
        conn, _ = self.srv.accept()
        try:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            out = b""
            while True:
                try:
                    chunk = os.read(fds[0], 4096)
                except OSError:  # EIO once the last slave fd is closed
                    break
                if not chunk:
                    break
                out += chunk
            os.close(fds[0])
            return out
        finally:
            conn.close()
            self.srv.close()

    def close(self):
        self.srv.close()


# --------------------------------------------------------------------------
# The runtime wrapper
# --------------------------------------------------------------------------

class Result(subprocess.CompletedProcess):
    def __str__(self):
        return (f"$ {' '.join(map(str, self.args))}\n"
                f"exit {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}")

    __repr__ = __str__

    @property
    def error(self):
        return error_msg(self)


class Runtime:
    """Runs the binary under test with a private --root."""

    def __init__(self, root, scratch, marker, tmp_path):
        self.binary = BRIG
        self.tmp_path = tmp_path
        self.root = str(root)
        self.scratch = Path(scratch)
        self.marker = marker
        self.ids = []          # container ids this test used (deleted afterwards)
        self.all_ids = []      # every id handed out (for the cgroup/process scan)
        self.procs = {}        # id -> [(pid, starttime)]
        self.cgroups = {}      # id -> [(hierarchy-mount, path)]
        self._n = 0
        self._lock = threading.Lock()
        # Network tests run every command inside a test netns (prefix, e.g.
        # ["nsenter", "--net=/run/netns/X"]) with their own config/state dirs.
        self.prefix = []
        self.extra_env = {}

    def new_id(self, prefix="c"):
        cid = new_id(prefix)
        self.all_ids.append(cid)
        self.track(cid)
        return cid

    def track(self, cid):
        # only ids the runtime could accept (never `delete -f ..` a path)
        if not re.fullmatch(r"[\w+.-]+", cid or "") or cid in (".", ".."):
            return
        if cid not in self.ids:
            self.ids.append(cid)

    def env(self, extra=None):
        env = dict(os.environ)
        env[MARKER_VAR] = self.marker
        env.update(self.extra_env)
        if extra:
            env.update(extra)
        return env

    def cmd(self, *args, global_args=()):
        return [*self.prefix, self.binary, "--root", self.root, *global_args, *map(str, args)]

    def _prepare(self, args, global_args):
        """argv, a fresh scratch file prefix, and the command name; tracks the
        id of a create/run so the leak check deletes it."""
        argv = self.cmd(*args, global_args=global_args)
        with self._lock:
            self._n += 1
            base = self.scratch / f"cmd{self._n}"
        cmdname = next((a for a in map(str, args) if not a.startswith("-")), "")
        if cmdname in ("create", "run") and args and not str(args[-1]).startswith("-"):
            self.track(str(args[-1]))
        return argv, base, cmdname

    def run(self, *args, input=None, timeout=30, check=None, cwd=None,
            global_args=(), env=None):
        """Run `BRIG --root ROOT [global_args] *args`.

        stdout/stderr go to files, not pipes: a detached container inherits
        them and would otherwise keep the pipe open.  check=True asserts exit
        0, check=False asserts a non-zero exit.
        """
        argv, base, cmdname = self._prepare(args, global_args)
        with open(f"{base}.out", "w+") as out, open(f"{base}.err", "w+") as err:
            stdin = subprocess.DEVNULL
            inf = None
            if input is not None:
                inf = open(f"{base}.in", "w+")
                inf.write(input)
                inf.flush()
                inf.seek(0)
                stdin = inf
            try:
                p = subprocess.run(argv, stdin=stdin, stdout=out, stderr=err,
                                   timeout=timeout, cwd=cwd, env=self.env(env),
                                   start_new_session=True)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                out.seek(0)
                err.seek(0)
                pytest.fail(f"timed out after {timeout}s: {' '.join(argv)}\n"
                            f"--- stdout\n{out.read()}--- stderr\n{err.read()}")
            finally:
                if inf:
                    inf.close()
            out.seek(0)
            err.seek(0)
            res = Result(argv, rc, out.read(), err.read())
        if check is True:
            assert res.returncode == 0, f"command failed:\n{res}"
        elif check is False:
            assert res.returncode != 0, f"command unexpectedly succeeded:\n{res}"
        if cmdname in ("create", "run") and res.returncode == 0 and str(args[-1]) in self.ids:
            self._record(str(args[-1]))
        return res

    def popen(self, *args, global_args=()):
        """Start a long-running command (e.g. foreground `run`) in the background."""
        argv, base, cmdname = self._prepare(args, global_args)
        out = open(f"{base}.out", "w+")
        err = open(f"{base}.err", "w+")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=self.env(), start_new_session=True)
        p.outfile, p.errfile = out, err
        return p

    def _record(self, cid):
        st = self.state(cid, check=False)
        if st and st.get("pid"):
            pid = st["pid"]
            self.procs.setdefault(cid, []).append((pid, proc_starttime(pid)))
            for mnt, path in proc_cgroups(pid).items():
                self.cgroups.setdefault(cid, []).append((mnt, path))

    def record_pid(self, cid, pid):
        self.procs.setdefault(cid, []).append((pid, proc_starttime(pid)))
        for mnt, path in proc_cgroups(pid).items():
            self.cgroups.setdefault(cid, []).append((mnt, path))

    def state(self, cid, check=True):
        res = self.run("state", cid, timeout=15)
        if res.returncode != 0:
            if check:
                raise AssertionError(f"state {cid} failed:\n{res}")
            return None
        try:
            return json.loads(res.stdout)
        except ValueError:
            if check:
                raise AssertionError(f"state {cid} printed no JSON:\n{res}")
            return None

    def status(self, cid):
        st = self.state(cid, check=False)
        return st["status"] if st else None

    def wait_status(self, cid, status, timeout=10):
        return wait_for(lambda: self.status(cid) == status, timeout)

    # -- the leak check ----------------------------------------------------
    def cleanup_and_check(self, watch_paths):
        problems = []
        for cid in self.ids:
            try:
                self.run("delete", "-f", cid, timeout=30)
            except BaseException as e:  # a hung delete is a failure too
                problems.append(f"delete -f {cid}: {e}")
        pids, cgdirs = [], []
        for cid in self.ids:
            if os.path.lexists(os.path.join(self.root, cid)):
                problems.append(f"state dir {self.root}/{cid} left behind")
            pids += [(cid, pid, st) for pid, st in self.procs.get(cid, [])]
            own = proc_cgroups(os.getpid())
            for mnt, path in self.cgroups.get(cid, []):
                if path in ("/", "") or path == own.get(mnt):
                    continue
                cgdirs.append((cid, Path(mnt) / path.lstrip("/")))
        # one shared deadline for everything to go away
        wait_for(lambda: not any(proc_alive(p, st) for _, p, st in pids)
                 and not any(d.exists() for _, d in cgdirs), 5)
        problems += [f"process {p} of {cid} still alive"
                     for cid, p, st in pids if proc_alive(p, st)]
        problems += [f"cgroup {d} of {cid} left behind" for cid, d in cgdirs if d.exists()]
        leftover = _find_cgroup_dirs(set(self.ids) | set(self.all_ids))
        problems += [f"cgroup dir {d} left behind" for d in leftover]
        left = lambda: marked_pids(self.marker, [self.tmp_path], self.ids + self.all_ids)  # noqa: E731
        pids = [] if wait_for(lambda: not left(), 5) else left()
        if pids:
            descr = []
            for p in pids:
                try:
                    cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    cmd = b"?"
                descr.append(f"{p} ({cmd.decode(errors='replace').strip()})")
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            problems.append("processes left behind: " + ", ".join(descr))
        for wp in watch_paths:
            m = mounts_under(wp)
            if m:
                problems.append(f"mounts left behind: {m}")
        return problems


def _find_cgroup_dirs(names, max_depth=6):
    found = []
    if not names:
        return found
    for h in _hierarchies():
        base_depth = len(h.parts)
        for dirpath, dirnames, _ in os.walk(h):
            if len(Path(dirpath).parts) - base_depth >= max_depth:
                dirnames[:] = []
            for d in dirnames:
                if d in names:
                    found.append(os.path.join(dirpath, d))
    return found


@pytest.fixture
def runtime(tmp_path, request):
    root = tmp_path / "state"
    scratch = tmp_path / "cmds"
    scratch.mkdir()
    rt = Runtime(root, scratch, f"{SESSION}-{uuid.uuid4().hex[:8]}", tmp_path)
    yield rt
    problems = rt.cleanup_and_check([tmp_path])
    _force_cleanup(rt, tmp_path)
    if problems and IS_RUNC and request.node.get_closest_marker("runc_bug"):
        import warnings
        warnings.warn("runc left leftovers (known runc bug): " + "; ".join(problems))
        return
    assert not problems, "leftovers after the test:\n  " + "\n  ".join(problems)


def _force_cleanup(rt, tmp_path):
    """After a failed leak check, remove what the test created so later tests
    (and later runs) start clean: our marked processes, cgroup dirs named
    after our ids (bottom-up rmdir, nothing else), mounts under tmp_path."""
    ids = set(rt.ids) | set(rt.all_ids)
    pids = marked_pids(rt.marker, [tmp_path], list(ids))
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    wait_for(lambda: not any(proc_alive(p, None) for p in pids), 5)
    dirs = _find_cgroup_dirs(ids)

    def rmdirs():
        for d in dirs:
            for sub, _, _ in sorted(os.walk(d), key=lambda t: len(t[0]), reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
        return not any(os.path.exists(d) for d in dirs)
    if dirs:
        wait_for(rmdirs, 5, 0.1)
    for mp in sorted(mounts_under(tmp_path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], timeout=15)


# --------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------

def _held_userns(unshare_args, idmap):
    """A process held in a new user namespace (mapped by idmap) and whatever
    else unshare_args make; yields its pid."""
    extra = ["--kill-child"] if "-f" in unshare_args else []  # the child dies with unshare
    p = subprocess.Popen(["unshare", "-U", *unshare_args, *extra, "sleep", "600"])
    pid = None
    try:
        def holder():  # unshare itself, or the child it forks (-f)
            try:
                kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            except OSError:
                return None
            pid = int(kids[0]) if kids else p.pid
            try:
                inside = os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
            except OSError:
                return None
            return pid if inside and ("-f" not in unshare_args or kids) else None
        assert wait_for(lambda: holder() is not None, 5)
        pid = holder()
        for f in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{f}", "w") as fh:
                fh.write(idmap)
        yield pid
    finally:
        if pid and pid != p.pid:
            os.kill(pid, signal.SIGKILL)  # the child unshare forked (-f)
        p.kill()
        p.wait()


@pytest.fixture
def userns():
    """A user namespace (root -> host uid 100000, 65536 ids) held by a sleeping
    process, as a pod's sandbox holds the one its containers join: its path."""
    for pid in _held_userns([], "0 100000 65536\n"):
        yield f"/proc/{pid}/ns/user"


@pytest.fixture
def userns_and_pidns():
    """The same, with a pid namespace it owns (a pod sharing its processes):
    the paths of both, and the pid namespace's pid 1 seen from here."""
    for pid in _held_userns(["-p", "-f"], "0 100000 65536\n"):
        yield f"/proc/{pid}/ns/user", f"/proc/{pid}/ns/pid", pid


@pytest.fixture
def userns_and_timens():
    """A user namespace and a time namespace it owns (clocks shifted by a
    day): their paths."""
    for pid in _held_userns(["-T", "--boottime", "86400", "-f"], "0 100000 65536\n"):
        yield f"/proc/{pid}/ns/user", f"/proc/{pid}/ns/time"


@pytest.fixture
def userns_without_root():
    """A user namespace that maps ids 1000.. but not 0."""
    for pid in _held_userns([], "1000 101000 100\n"):
        yield f"/proc/{pid}/ns/user"


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    t = tmp_path_factory.mktemp("rootfs-template")
    (t / "bin").mkdir()
    shutil.copy2(BUSYBOX, t / "bin" / "busybox")
    for a in APPLETS:
        os.symlink("busybox", t / "bin" / a)
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        (t / d).mkdir()
    os.chmod(t, 0o755)
    for d in ("bin", "proc", "sys", "dev", "etc", "root"):
        os.chmod(t / d, 0o755)
    os.chmod(t / "tmp", 0o1777)
    (t / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "user:x:1000:1000:user:/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (t / "etc" / "group").write_text(
        "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n")
    return t


def _copy_rootfs(src, dst):
    # Only the big busybox binary is shared (hardlinked); every other file is
    # a bundle's own, so a test that changes its rootfs cannot touch another's.
    def link_or_copy(s, d):
        if os.path.basename(s) == "busybox":
            try:
                os.link(s, d)
                return
            except OSError:
                pass
        shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


class Bundle:
    def __init__(self, path, rt, cid):
        self.path = Path(path)
        self.rootfs = self.path / "rootfs"
        self.id = cid
        self.rt = rt

    def __str__(self):
        return str(self.path)

    __fspath__ = __str__

    @property
    def config_path(self):
        return self.path / "config.json"

    def load(self):
        return json.loads(self.config_path.read_text())

    def open_for_mapped_root(self):
        """A container root mapped to an unprivileged host uid must reach the
        rootfs: pytest makes its tmp dirs 0700, so open them for traversal."""
        p = self.path
        while str(p).startswith(str(self.path.parents[2])) and p != p.parent:
            os.chmod(p, os.stat(p).st_mode | 0o011)
            p = p.parent

    def save(self, cfg):
        self.config_path.write_text(json.dumps(cfg, indent=2))

    def set_config(self, fn):
        """fn(cfg) edits the parsed config in place."""
        cfg = self.load()
        fn(cfg)
        self.save(cfg)
        return self

    def config(self, *, args=None, env=None, cwd=None, terminal=None, user=None,
               hostname=None, readonly=None, drop_ns=(), add_ns=(), mounts=(),
               annotations=None, uid_mappings=None, gid_mappings=None, fn=None):
        """Patch config.json: the common knobs as keywords, anything else via fn(cfg)."""
        cfg = self.load()
        p = cfg.setdefault("process", {})
        if args is not None:
            p["args"] = list(args)
        if env is not None:
            p["env"] = [e for e in p.get("env", []) if e.startswith(MARKER_VAR + "=")]
            p["env"] += list(env)
        if cwd is not None:
            p["cwd"] = cwd
        if terminal is not None:
            p["terminal"] = terminal
        if user is not None:
            p["user"] = user
        if hostname is not None:
            cfg["hostname"] = hostname
        if readonly is not None:
            cfg["root"]["readonly"] = readonly
        lin = cfg.setdefault("linux", {})
        if drop_ns:
            lin["namespaces"] = [n for n in lin.get("namespaces", [])
                                 if n["type"] not in drop_ns]
        for ns in add_ns:
            ns = {"type": ns} if isinstance(ns, str) else ns
            lin["namespaces"] = [n for n in lin.get("namespaces", [])
                                 if n["type"] != ns["type"]] + [ns]
        if mounts:
            cfg["mounts"] = cfg.get("mounts", []) + list(mounts)
        if annotations is not None:
            cfg["annotations"] = annotations
        if uid_mappings is not None:
            lin["uidMappings"] = uid_mappings
        if gid_mappings is not None:
            lin["gidMappings"] = gid_mappings
        if fn is not None:
            fn(cfg)
        self.save(cfg)
        return self


def set_config(bundle, fn):
    return bundle.set_config(fn)


@pytest.fixture
def make_bundle(tmp_path, rootfs_template, runtime):
    """Factory: make_bundle(name=None) -> a fresh busybox bundle with its own container id."""
    n = [0]

    def make(name=None):
        n[0] += 1
        path = tmp_path / (name or f"bundle{n[0]}")
        path.mkdir(mode=0o755)
        _copy_rootfs(rootfs_template, path / "rootfs")
        res = subprocess.run([BRIG, "spec"], cwd=path, capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, f"{BRIG} spec failed: {res.stderr}"
        b = Bundle(path, runtime, runtime.new_id())

        def defaults(cfg):
            p = cfg["process"]
            p["terminal"] = False
            p["env"] = p.get("env", []) + [f"{MARKER_VAR}={runtime.marker}"]
            if IS_RUNC:
                cfg["linux"]["cgroupsPath"] = f"/{RUNC_CGROUP_PARENT}/{b.id}"
        b.set_config(defaults)
        return b

    return make


@pytest.fixture
def bundle(make_bundle):
    return make_bundle("bundle")
