"""File descriptors: only stdio and the preserved ones reach the container
(issue #4: --preserve-fds, LISTEN_FDS/LISTEN_PID, close_range before exec)."""

import subprocess

from conftest import brig_only


def fd_listing(res):
    # `ls -l /proc/self/fd` from inside: "N -> target" lines; ls's own
    # directory fd (the highest) points at /proc/<pid>/fd.
    out = {}
    for line in res.stdout.splitlines():
        if " -> " not in line:
            continue
        left, target = line.split(" -> ", 1)
        out[int(left.split()[-1])] = target
    return out


def run_with_fds(runtime, bundle, extra_args, files, prefix=""):
    """Runs the runtime from a shell that opened `files` at fds 3, 4, ..."""
    bundle.config(args=["ls", "-l", "/proc/self/fd"])
    argv = runtime.cmd("run", *extra_args, "--bundle", bundle, bundle.id)
    runtime.track(bundle.id)
    redirs = " ".join(f'{3 + i}>"{f}"' for i, f in enumerate(files))
    script = f'{prefix} exec {redirs} "$@"' if files else f'{prefix} exec "$@"'
    return subprocess.run(["/bin/sh", "-c", script, "sh", *map(str, argv)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30, env=runtime.env())


def test_only_stdio_reaches_the_container(runtime, bundle):
    bundle.config(args=["ls", "-l", "/proc/self/fd"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    fds = fd_listing(res)
    own = [fd for fd, t in fds.items() if t.endswith("/fd")]
    assert set(fds) - set(own) == {0, 1, 2}, res.stdout


def test_preserve_fds(runtime, bundle, tmp_path):
    p = run_with_fds(runtime, bundle, ["--preserve-fds", "2"], [tmp_path / "a.txt", tmp_path / "b.txt"])
    assert p.returncode == 0, p.stderr
    fds = fd_listing(p)
    assert fds.get(3, "").endswith("a.txt"), p.stdout
    assert fds.get(4, "").endswith("b.txt"), p.stdout


def test_preserve_fds_not_given_closes_extra_fds(runtime, bundle, tmp_path):
    p = run_with_fds(runtime, bundle, [], [tmp_path / "a.txt"])
    assert p.returncode == 0, p.stderr
    assert not any(t.endswith("a.txt") for t in fd_listing(p).values()), p.stdout


@brig_only
def test_preserve_fds_that_are_not_open_never_carry_runtime_fds(runtime, bundle):
    """Asked to preserve fds the caller did not open: the container gets
    /dev/null there, never one of the runtime's own fds (runc 1.1.5 passes its
    own cgroup dir and epoll fds in this case)."""
    p = run_with_fds(runtime, bundle, ["--preserve-fds", "3"], [])
    assert p.returncode == 0, p.stderr
    fds = fd_listing(p)
    assert [fds.get(i) for i in (3, 4, 5)] == ["/dev/null"] * 3, p.stdout


def test_socket_activation_listen_fds(runtime, bundle, tmp_path):
    """LISTEN_FDS=1 with LISTEN_PID = the runtime's pid: fd 3 goes in, and the
    container sees LISTEN_FDS=1, LISTEN_PID=1."""
    bundle.config(args=["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; ls -l /proc/self/fd/3"])
    argv = runtime.cmd("run", "--bundle", bundle, bundle.id)
    runtime.track(bundle.id)
    # the shell's own pid becomes the runtime's pid after `exec`
    script = f'exec 3>"{tmp_path}/sock.txt"; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"'
    p = subprocess.run(["/bin/sh", "-c", script, "sh", *map(str, argv)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30, env=runtime.env())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "1 1", p.stdout
    assert lines[1].endswith("sock.txt"), p.stdout
