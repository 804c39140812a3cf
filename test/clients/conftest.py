"""Fixtures for the client tier: the real programs that drive a runtime
(podman + conmon, containerd's ctr and shim, the Kubernetes CRI) run with
the runtime under test instead of runc.

The runtime comes from the environment variable BRIG, as in the main
integration suite; BRIG=$(which runc) runs the same tier against Debian's
runc, which checks the tier itself.

Everything is private to one session: a temp dir holds podman's storage
(vfs), run and tmp dirs, containerd's root, state, sockets and config, and
the images, which are made here (no registry is reachable): a busybox-static
rootfs plus a static /pause binary compiled at session start.  Cgroups go
under /<CG_PARENT> (never under our shell's cgroup).  At the end containerd
is stopped by PID and the session asserts that no process, mount, cgroup or
netns of its own is left.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

BRIG = os.environ.get("BRIG") or shutil.which("brig") or ""
IS_RUNC = os.path.basename(BRIG) == "runc"
HERE = Path(__file__).resolve().parent

SESSION = secrets.token_hex(3)
CG_PARENT = f"brigclients-{SESSION}"
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "ps",
           "top", "stty", "env", "grep", "head", "wc", "kill", "readlink",
           "hostname", "ip", "trap", "printf", "tty", "nproc", "test", "mount"]

_counter = [0]


def new_name(prefix="c"):
    _counter[0] += 1
    return f"{prefix}{SESSION}-{_counter[0]:03d}"


def _become_subreaper():
    """Orphans (conmon's and the shim's double forks, podman's exit command)
    are re-parented to PID 1, and a PID 1 that reaps late (as on our CI VMs)
    leaves zombies that podman takes for a live conmon: every `podman run`
    then waits 20 s for its exit.  So the session process forks: the parent,
    a child subreaper, reaps every orphan at once while the child carries on
    as pytest."""
    if os.environ.get("BRIGCLIENTS_REAPER"):
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        return
    os.environ["BRIGCLIENTS_REAPER"] = str(os.getpid())
    child = os.fork()
    if child == 0:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: os.kill(child, n))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def pytest_configure(config):
    _become_subreaper()


# Log files worth showing when a test fails: (title, path).
LOGS = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for title, path in LOGS:
            try:
                text = Path(path).read_text(errors="replace")
            except OSError:
                continue
            rep.sections.append((title, text[-4000:]))


def pytest_report_header(config):
    return f"runtime under test: {BRIG or '(BRIG not set)'}"


def run(args, timeout=60, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    res = subprocess.run(args, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{args!r} exited {res.returncode}\nstdout: {res.stdout}\n"
                             f"stderr: {res.stderr}")
    return res


def wait_for(pred, timeout=10.0, step=0.05, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def hierarchies():
    return [d for d in sorted(CGROUP_ROOT.iterdir()) if d.is_dir() and not d.is_symlink()]


def cgroup_file(ctrl, rel, name):
    """Read <cgroup root>/<ctrl>/<rel>/<name>."""
    return (CGROUP_ROOT / ctrl / rel.lstrip("/") / name).read_text().strip()


def proc_cgroup(pid, ctrl):
    """The path of pid in the v1 hierarchy holding controller `ctrl`."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if ctrl in ctrls.split(","):
            return path
    raise AssertionError(f"pid {pid} has no {ctrl} cgroup")


def unmounted_v1_hierarchies():
    """v1 hierarchies that our processes belong to but that are mounted
    nowhere (e.g. a hugetlb hierarchy someone mounted, used and unmounted
    again: it lives on while it has child cgroups).  containerd's cgroups
    library then fails to load a task's cgroup ("cannot find cgroup mount
    destination"), so the shim has no metrics, whatever the runtime."""
    mounted = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        _, _, post = line.partition(" - ")
        fstype, _src, opts = post.split(" ", 2)
        if fstype == "cgroup":
            mounted.update(o for o in opts.split(",") if o not in ("rw", "ro"))
    out = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, _ = line.split(":", 2)
        if ctrls and not all(c in mounted for c in ctrls.split(",")):
            out.append(ctrls)
    return out


def _rm_cgroup_tree(d):
    if not d.is_dir():
        return
    for sub in [p for p in d.iterdir() if p.is_dir()]:
        _rm_cgroup_tree(sub)
    try:
        os.rmdir(d)
    except OSError:
        pass


def our_pids(needles):
    """Live, non-zombie processes whose command line or environment names
    one of `needles` (our temp dir, our cgroup parent)."""
    found = []
    bneedles = [n.encode() for n in needles]
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                continue
            blob = (p / "cmdline").read_bytes() + b"\0" + (p / "environ").read_bytes()
            cg = (p / "cgroup").read_bytes()
        except OSError:
            continue
        if any(n in blob or n in cg for n in bneedles):
            found.append(int(p.name))
    return found


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:160].decode()
    except OSError:
        return "?"


def mounts_under(prefix):
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4]
        if mp.startswith(str(prefix)):
            out.append(mp)
    return out


# --------------------------------------------------------------------------
# Session: temp dir, images, leak check
# --------------------------------------------------------------------------

PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
"""


class Session:
    def __init__(self, base):
        self.base = base
        self.rootfs = base / "rootfs"
        self.rootfs_tar = base / "rootfs.tar"


def _make_rootfs(s):
    r = s.rootfs
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user"):
        (r / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, r / "bin/busybox")
    for a in APPLETS:
        (r / "bin" / a).symlink_to("busybox")
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                  "user:x:1000:1000:user:/home/user:/bin/sh\n")
    (r / "etc/group").write_text("root:x:0:\nuser:x:1000:\n")
    (r / "pause.c").write_text(PAUSE_C)
    run(["gcc", "-static", "-Os", "-o", str(r / "pause"), str(r / "pause.c")])
    (r / "pause.c").unlink()
    run(["tar", "-C", str(r), "--numeric-owner", "-cf", str(s.rootfs_tar), "."])


@pytest.fixture(scope="session")
def session():
    if not BRIG or not os.access(BRIG, os.X_OK):
        pytest.exit(f"BRIG={BRIG!r} is not an executable", returncode=4)
    if os.geteuid() != 0:
        pytest.exit("the client tier needs root", returncode=4)
    base = Path(tempfile.mkdtemp(prefix=f"brigclients-{SESSION}-", dir="/tmp"))
    s = Session(base)
    _make_rootfs(s)
    s.cleanups = []
    yield s
    for fn in reversed(s.cleanups):
        fn()
    # Nothing of ours may be left: processes, mounts, cgroups, netns.
    leaks = []
    # conmon runs podman's exit command (`podman container cleanup`) after a
    # container exits: give such stragglers time to finish on their own.
    end = time.monotonic() + 15
    while (pids := our_pids([str(base), CG_PARENT])) and time.monotonic() < end:
        time.sleep(0.1)
    if pids:
        leaks.append("processes: " + ", ".join(f"{p} {_cmdline(p)!r}" for p in pids))
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    ns = [n for n in os.listdir("/run/netns") if SESSION in n] if os.path.isdir("/run/netns") else []
    if ns:
        leaks.append(f"netns: {ns}")
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    m = mounts_under(base)
    if m:
        leaks.append(f"mounts: {m}")
        for mp in sorted(m, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
    cg = [str(h / CG_PARENT / sub.name) for h in hierarchies() if (h / CG_PARENT).is_dir()
          for sub in (h / CG_PARENT).iterdir() if sub.is_dir() and sub.name != "conmon"]
    # (podman puts every conmon into <cgroup-parent>/conmon and never removes
    # that dir: it is podman's, not a container's; removed below all the same.)
    if cg:
        leaks.append(f"cgroups: {cg}")
    for h in hierarchies():
        _rm_cgroup_tree(h / CG_PARENT)
    left = [str(h / CG_PARENT) for h in hierarchies() if (h / CG_PARENT).exists()]
    if left:
        leaks.append(f"cgroup parents not removable: {left}")
    shutil.rmtree(base, ignore_errors=True)
    assert not leaks, "the client tier left things behind:\n" + "\n".join(leaks)


# --------------------------------------------------------------------------
# podman
# --------------------------------------------------------------------------

PODMAN_IMAGE = "localhost/brigbb:latest"


def _nproc_for_podman():
    # podman lowers its own RLIMIT_NPROC to kernel.pid_max when it cannot
    # raise it; the container's default limit must not exceed what the
    # runtime (a child of podman) holds, or setrlimit fails with EPERM.
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    if hard == resource.RLIM_INFINITY:
        return pid_max
    return min(hard, pid_max)


class Podman:
    def __init__(self, s):
        import resource
        self.dir = s.base / "podman"
        self.dir.mkdir()
        d = self.dir
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = _nproc_for_podman()
        (d / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/graph"\nrunroot = "{d}/run"\n')
        (d / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            'netns = "none"\n'
            'log_driver = "k8s-file"\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{d}/events.log"\n'
            f'tmp_dir = "{d}/tmp"\n'
            'lock_type = "file"\n'
            # a runtime named here gets `--log FILE --log-format json` from
            # podman, which then reads its errors from that json log
            f'runtime_supports_json = ["{os.path.basename(BRIG)}", "runc", "crun"]\n'
            f'volume_path = "{d}/volumes"\n'
            f'conmon_path = ["/usr/bin/conmon"]\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(d / "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(d / "registries.conf"))
        (d / "registries.conf").write_text("unqualified-search-registries = []\n")

    def state(self, name):
        """The runtime's own `state` of a podman container: proof that the
        runtime under test made it."""
        cid = self.inspect(name, "{{.Id}}")
        r = run([BRIG, "state", cid])
        return json.loads(r.stdout)

    def cmd(self, *args):
        """The podman argv; create/run get our cgroup parent.  (No
        --runtime-flag root=: podman 4.3 leaves runtime flags out of conmon's
        exit command, whose `delete` would then look in the default root and
        leave the container's cgroups behind.)"""
        a = ["podman", "--runtime", BRIG]
        args = list(args)
        if args and args[0] in ("run", "create"):
            args = [args[0], "--cgroup-parent", f"/{CG_PARENT}"] + args[1:]
        return a + args

    def __call__(self, *args, timeout=60, check=True, input=None):
        return run(self.cmd(*args), timeout=timeout, check=check, input=input, env=self.env)

    def inspect(self, name, fmt):
        return self("inspect", "--format", fmt, name).stdout.strip()

    def cleanup(self):
        self("rm", "-a", "-f", "-t", "0", check=False, timeout=120)


@pytest.fixture(scope="session")
def podman(session):
    p = Podman(session)
    run(["podman", "import", str(session.rootfs_tar), PODMAN_IMAGE], env=p.env, timeout=120)
    session.cleanups.append(p.cleanup)
    yield p


# --------------------------------------------------------------------------
# containerd (ctr and CRI)
# --------------------------------------------------------------------------

CTR_IMAGE = "localhost/brigbb:latest"
CNI_PLUGIN = r"""#!/bin/sh
# A test CNI plugin: puts a dummy eth0 with a fixed address into the pod's
# netns (no host-side state), so CRI pods get a netns of their own without
# real network plugins.
set -e
case "$CNI_COMMAND" in
ADD)
  cat >/dev/null
  nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name brigpeer0
  nsenter --net="$CNI_NETNS" ip addr add 10.88.77.2/24 dev "$CNI_IFNAME"
  nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"10.88.77.2/24","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS"
  ;;
DEL) cat >/dev/null; printf '{}' ;;
CHECK) cat >/dev/null ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
"""


def _sha(b):
    import hashlib
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_oci_archive(s, out, name):
    """An OCI image layout tar (one uncompressed layer: the rootfs) for
    `ctr images import`; its entrypoint is the static /pause."""
    import tarfile
    import io
    layer = s.rootfs_tar.read_bytes()
    cfg = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _sha(layer), "size": len(layer)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": _sha(manifest), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": "latest"}}],
    }).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data):
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (layer, cfg, manifest):
            add("blobs/sha256/" + _sha(blob).split(":")[1], blob)


class Containerd:
    def __init__(self, s):
        self.s = s
        self.dir = d = s.base / "containerd"
        d.mkdir()
        self.sock = d / "containerd.sock"
        (d / "cni/bin").mkdir(parents=True)
        (d / "cni/conf").mkdir(parents=True)
        plugin = d / "cni/bin/brigtest"
        plugin.write_text(CNI_PLUGIN)
        plugin.chmod(0o755)
        shutil.copy2("/usr/lib/cni/loopback", d / "cni/bin/loopback")
        (d / "cni/conf/10-brigtest.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "brigtest",
            "plugins": [{"type": "brigtest"}]}))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (d / "config.toml").write_text(f"""
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{CTR_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  stats_collect_period = 1
[{cri}.cni]
  bin_dir = "{d}/cni/bin"
  conf_dir = "{d}/cni/conf"
[{cri}.containerd]
  default_runtime_name = "brig"
  snapshotter = "overlayfs"
[{cri}.containerd.runtimes.brig]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.brig.options]
  BinaryName = "{BRIG}"
  Root = "{d}/runtime-root"
  SystemdCgroup = false
""")
        self.proc = None
        self.runtime_root = d / "runtime-root"  # also the CRI runtime's Root
        self.fifo_dir = d / "fifo"
        LOGS.append(("containerd log", d / "containerd.log"))

    def state(self, ns, cid):
        """The runtime's own `state` (the shim's root is <Root>/<namespace>)."""
        r = run([BRIG, "--root", str(self.runtime_root / ns), "state", cid])
        return json.loads(r.stdout)

    def start(self):
        self.log = open(self.dir / "containerd.log", "w")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(self.dir / "config.toml")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("containerd exited:\n" +
                                     (self.dir / "containerd.log").read_text()[-3000:])
            if not self.sock.exists():
                return False
            return self.ctr("version", check=False).returncode == 0
        wait_for(ready, timeout=30, what="containerd")

    def ctr(self, *args, ns="brigtest", timeout=60, check=True, input=None):
        return run(["ctr", "--address", str(self.sock), "--namespace", ns, *args],
                   timeout=timeout, check=check, input=input)

    def stop(self):
        for ns in ("brigtest", "k8s.io"):
            tasks = self.ctr("tasks", "ls", "-q", ns=ns, check=False).stdout.split()
            for t in tasks:
                self.ctr("tasks", "kill", "-s", "SIGKILL", t, ns=ns, check=False)
                self.ctr("tasks", "delete", "-f", t, ns=ns, check=False)
            for c in self.ctr("containers", "ls", "-q", ns=ns, check=False).stdout.split():
                self.ctr("containers", "delete", c, ns=ns, check=False)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        # Shims outlive containerd by design; any left (their command line
        # names our socket) and any mount are found by the session's check.


@pytest.fixture(scope="session")
def containerd(session):
    c = Containerd(session)
    session.cleanups.append(c.stop)
    c.start()
    archive = session.base / "brigbb-oci.tar"
    make_oci_archive(session, archive, CTR_IMAGE)
    for ns in ("brigtest", "k8s.io"):
        c.ctr("images", "import", str(archive), ns=ns, timeout=120)
    yield c
