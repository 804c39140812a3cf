"""Seccomp (linux.seccomp): rules block real syscalls with the configured errno,
argument comparisons, the -ENOSYS answer for syscalls newer than the profile,
SCMP_ACT_LOG, a runc/Docker-style allowlist profile, and SCMP_ACT_NOTIFY with a
listener receiving the notify fd and the container process state."""

import array
import ctypes
import errno
import fcntl
import json
import os
import platform
import re
import select
import socket
import struct
import threading
from pathlib import Path

import pytest

from conftest import IS_RUNC, brig_only, mounts_under

UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
x86_64_only = pytest.mark.skipif(platform.machine() != "x86_64" or not UNISTD_64.exists(),
                                 reason="needs x86_64 and its syscall table header")


def x86_64_syscalls():
    """{name: number} from the kernel headers."""
    out = {}
    for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)", UNISTD_64.read_text(), re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def status_field(text, key):
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return v.strip()
    return None


def with_seccomp(bundle, sec, args, nnp=None):
    """Puts `sec` into the config, with a writable root (runc's spec has a
    read-only one) so that only seccomp says no."""
    def fn(cfg):
        cfg["root"]["readonly"] = False
        cfg["linux"]["seccomp"] = sec
        if nnp is not None:
            cfg["process"]["noNewPrivileges"] = nnp
    bundle.config(args=args, fn=fn)


@pytest.mark.parametrize("nnp", [True, False], ids=["noNewPrivileges", "privileged-load"])
def test_errno_rule_blocks_mkdir(runtime, bundle, nnp):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": errno.EACCES}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?; "
                                           "test -d /tmp/x && echo made; cat /proc/self/status"], nnp)
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert "mkdir: can't create directory '/tmp/x': Permission denied" in res.stdout, res
    assert "rc=1" in res.stdout and "made" not in res.stdout, res
    assert status_field(res.stdout, "Seccomp") == "2", res
    assert status_field(res.stdout, "NoNewPrivs") == ("1" if nnp else "0"), res


@x86_64_only
def test_default_errno_with_allowlist(runtime, bundle):
    allowed = sorted(n for n in x86_64_syscalls() if n not in ("mkdir", "mkdirat"))
    sec = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EXDEV,
           "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?; echo hello > /tmp/f; cat /tmp/f"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert "mkdir: can't create directory '/tmp/x': Invalid cross-device link" in res.stdout, res
    assert "rc=1" in res.stdout and res.stdout.endswith("hello\n"), res


def test_argument_comparisons(runtime, bundle):
    o_creat = os.O_CREAT
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [
               # creating files fails, opening existing ones works (MASKED_EQ on the flags)
               {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
                "args": [{"index": 1, "value": o_creat, "valueTwo": o_creat, "op": "SCMP_CMP_MASKED_EQ"}]},
               {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
                "args": [{"index": 2, "value": o_creat, "valueTwo": o_creat, "op": "SCMP_CMP_MASKED_EQ"}]},
               # two comparisons of one argument: either blocks (OR), as runc
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                         {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]},
               # pid > 0 and signal >= 31 (different arguments: both must hold, AND)
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP,
                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GT"},
                         {"index": 1, "value": 31, "op": "SCMP_CMP_GE"}]},
           ]}
    script = ("cat /etc/passwd | grep -q root && echo read-ok; "
              "echo x > /tmp/new 2>/dev/null; echo create=$?; "
              "kill -USR1 $$ 2>&1; echo usr1=$?; kill -USR2 $$ 2>&1; echo usr2=$?; "
              "kill -0 $$; echo zero=$?; kill -31 $$ 2>&1; echo sys=$?")
    with_seccomp(bundle, sec, ["sh", "-c", script])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    out = res.stdout
    assert "read-ok" in out and "create=1" in out, res
    assert "usr1=1" in out and "usr2=1" in out and "zero=0" in out and "sys=1" in out, res
    assert out.count("Operation not permitted") == 2, res
    assert "Operation not supported" in out, res


def test_unknown_syscall_name_is_skipped(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["no_such_syscall_brig", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": errno.EACCES}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert "Permission denied" in res.stdout and "rc=1" in res.stdout, res


def test_bad_action_is_one_error_line(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"},
                        {"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}
    with_seccomp(bundle, sec, ["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    msg = res.error  # exactly one logfmt error line
    assert "SCMP_ACT_BOGUS" in msg, msg
    if not IS_RUNC:
        assert "linux.seccomp.syscalls[1].action" in msg, msg
    assert res.stdout == ""
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
    assert mounts_under(bundle.path) == []


@brig_only
def test_errno_for_an_action_without_one_is_refused(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}
    with_seccomp(bundle, sec, ["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.endswith("linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL does not take an errno "
                              "(only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)"), res
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_log_action(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x && test -d /tmp/x && echo made; "
                                           "grep Seccomp: /proc/self/status"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert "made" in res.stdout and status_field(res.stdout, "Seccomp") == "2", res


@brig_only  # runc 1.1.5: "seccomp flags are not yet supported by runc"
def test_filter_flags(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                     "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x && test -d /tmp/x && echo made; "
                                           "grep Seccomp: /proc/self/status"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert "made" in res.stdout and status_field(res.stdout, "Seccomp") == "2", res


def test_kill_action(runtime, bundle):
    sec = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    with_seccomp(bundle, sec, ["mkdir", "/tmp/x"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 128 + 31, res  # SIGSYS


def docker_style_profile():
    """A big allowlist with errno default, the way runc's/Docker's default
    profile is written: three arches, conditional rules, names this
    libseccomp does not know."""
    deny = {"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
            "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
            "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "move_pages",
            "nfsservctl", "open_by_handle_at", "perf_event_open", "personality", "pivot_root",
            "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot",
            "request_key", "set_mempolicy", "setns", "settimeofday", "swapon", "swapoff", "sysfs",
            "_sysctl", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
            "clone", "clone3"}
    names = sorted(n for n in x86_64_syscalls() if n not in deny)
    names += ["socketcall", "waitpid", "no_such_syscall_from_the_future"]
    clone_ns = 0x7E020000  # CLONE_NEW* flags
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 0xffffffff, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": clone_ns, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        ],
    }


@x86_64_only
def test_docker_style_profile_runs_busybox(runtime, bundle):
    with_seccomp(bundle, docker_style_profile(),
                 ["sh", "-c", "echo hello; ls / >/dev/null && echo ls-ok; "
                              "(echo sub) ; mkdir /tmp/d && echo mkdir-ok; "
                              "mount -t tmpfs none /tmp/d 2>&1; echo mount=$?; "
                              "grep Seccomp: /proc/self/status"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    out = res.stdout
    # "sub" needs fork: clone, allowed by its MASKED_EQ rule
    for want in ("hello", "ls-ok", "sub", "mkdir-ok", "mount=1"):
        assert want in out, res
    assert status_field(out, "Seccomp") == "2", res


def host_python_bundle(bundle):
    """The container gets the host's /usr read-only, to run python3 in it."""
    r = bundle.rootfs
    (r / "usr").mkdir(exist_ok=True)
    for name in ("lib", "lib64"):
        if Path("/" + name).is_symlink() and not (r / name).exists():
            os.symlink("usr/" + name, r / name)
    return {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]}


@x86_64_only
def test_syscalls_newer_than_the_profile_get_enosys(runtime, bundle):
    if not Path("/lib64").is_symlink():
        pytest.skip("needs a merged-/usr host")
    table = x86_64_syscalls()
    allowed = sorted(n for n, nr in table.items() if nr <= 440 and n != "mkdir")
    sec = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    code = ("import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "for nr in (83, 441, 450, 1000):\n"
            "    ctypes.set_errno(0)\n"
            "    r = libc.syscall(nr, 0, 0, 0)\n"
            "    print(nr, r, ctypes.get_errno())\n")
    mnt = host_python_bundle(bundle)
    bundle.config(args=["/usr/bin/python3", "-c", code], mounts=[mnt],
                  fn=lambda cfg: cfg["linux"].__setitem__("seccomp", sec))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    got = {int(a): (int(b), int(c)) for a, b, c in (l.split() for l in res.stdout.splitlines())}
    assert got[83] == (-1, errno.EPERM), res          # named range, not allowed: the default errno
    for nr in (441, 450, 1000):                       # above the highest named: ENOSYS
        assert got[nr] == (-1, errno.ENOSYS), res


# ---------------------------------------------------------------- notify

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100   # _IOWR('!', 0, struct seccomp_notif)        (80 bytes)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101   # _IOWR('!', 1, struct seccomp_notif_resp)   (24 bytes)


class Agent(threading.Thread):
    """A seccomp agent on a unix socket: takes one connection, reads the
    container process state and the fd, answers one notification with
    `reply_errno`."""

    def __init__(self, path, reply_errno):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.reply_errno = reply_errno
        self.data = b""
        self.fds = []
        self.fd_link = None
        self.fdinfo = None
        self.notif = None
        self.error = None

    def run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(30)
                while True:
                    fds = array.array("i")
                    msg, anc, _flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * fds.itemsize))
                    for level, typ, cdata in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                            assert not self.data, "fds after the first message"
                            self.fds += list(fds)
                    if not msg:
                        break
                    self.data += msg
                    # runc 1.1 keeps the connection open: stop at a whole document
                    try:
                        json.loads(self.data)
                        break
                    except ValueError:
                        pass
            if len(self.fds) != 1:
                return
            fd = self.fds[0]
            self.fd_link = os.readlink(f"/proc/self/fd/{fd}")
            self.fdinfo = Path(f"/proc/self/fdinfo/{fd}").read_text()
            r, _, _ = select.select([fd], [], [], 30)
            if not r:
                self.error = "no notification within 30s"
                return
            buf = bytearray(80)
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
            nid, pid, _fl, nr, arch = struct.unpack_from("=QIIiI", buf)
            self.notif = {"pid": pid, "nr": nr, "arch": arch}
            resp = struct.pack("=QqiI", nid, 0, -self.reply_errno, 0)
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(resp))
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            for fd in self.fds:
                os.close(fd)
            self.sock.close()


@pytest.mark.parametrize("nnp", [True, False], ids=["noNewPrivileges", "privileged-load"])
def test_notify_listener_gets_fd_and_state(runtime, bundle, tmp_path, nnp):
    path = tmp_path / "agent.sock"
    agent = Agent(path, errno.EXDEV)
    agent.start()
    sec = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(path), "listenerMetadata": "hello-agent",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    with_seccomp(bundle, sec, ["mkdir", "/tmp/x"], nnp)
    bundle.set_config(lambda cfg: cfg.__setitem__("annotations", {"org.brig.test": "yes"}))
    res = runtime.run("run", "--bundle", bundle, bundle.id, timeout=60)
    agent.join(40)
    assert agent.error is None, agent.error
    # the container's mkdir got the agent's answer
    assert res.returncode == 1, res
    assert "mkdir: can't create directory '/tmp/x': Invalid cross-device link" in res.stderr, res

    st = json.loads(agent.data)
    assert st["fds"] == ["seccompFd"], st
    assert isinstance(st["ociVersion"], str) and st["ociVersion"], st
    assert st["metadata"] == "hello-agent", st
    assert isinstance(st["pid"], int) and st["pid"] > 0, st
    s = st["state"]
    assert s["id"] == bundle.id and s["status"] == "creating", st
    assert s["pid"] == st["pid"] and s["bundle"] == str(bundle.path), st
    assert s["annotations"] == {"org.brig.test": "yes"}, st
    assert isinstance(s["ociVersion"], str), st
    # a seccomp notify fd, and the notification came from the container's process
    assert agent.fd_link == "anon_inode:seccomp notify", agent.fd_link
    assert agent.notif["pid"] == st["pid"], (agent.notif, st)
    assert agent.notif["nr"] in (83, 258) or platform.machine() != "x86_64", agent.notif


@pytest.mark.skipif(IS_RUNC, reason="when the exec child loads the filter is brig's order")
def test_notify_listener_gets_the_exec_processes_fd(runtime, bundle, tmp_path):
    """exec loads the container's filter too: the listener gets a second fd,
    for the exec'd process, and its notifications are answered while exec
    waits. Without noNewPrivileges the filter is loaded before the caps, so
    the exec child's own mkdir of a missing --cwd is notified before its
    execve: a brig that handed the fd over only after the execve would hang."""
    path = tmp_path / "agent.sock"
    first = Agent(path, errno.EXDEV)
    first.start()
    sec = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(path),
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    with_seccomp(bundle, sec, ["sh", "-c", "mkdir /tmp/x; sleep 300"], False)  # loaded before the caps
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True, timeout=60)
    first.join(40)
    assert first.error is None, first.error
    init = runtime.state(bundle.id)["pid"]
    assert first.notif is not None and first.notif["nr"] in (83, 258), first.notif  # the container's mkdir

    path.unlink()
    second = Agent(path, errno.EPERM)
    second.start()
    res = runtime.run("exec", "--cwd", "/no/such/dir", bundle.id, "true", timeout=60)
    second.join(40)
    assert second.error is None, second.error
    st = json.loads(second.data)
    assert st["fds"] == ["seccompFd"] and st["pid"] != init, st
    assert second.notif["pid"] == st["pid"], (second.notif, st)
    # The agent's EPERM for the cwd's mkdir fails the exec, in one line.
    assert res.returncode == 255, res
    assert "/no/such/dir" in res.error and "operation not permitted" in res.error, res


def test_notify_listener_missing_fails_create(runtime, bundle, tmp_path):
    path = tmp_path / "nobody-listens.sock"
    sec = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(path),
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    with_seccomp(bundle, sec, ["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    msg = res.error
    assert str(path) in msg and "no such file or directory" in msg, msg
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))
