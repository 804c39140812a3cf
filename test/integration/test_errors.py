"""Errors: exit code, exactly one logfmt error line with runc's wording, nothing left behind.

Every failing command here must leave no state dir, no cgroup dir named after
the container, no process and no mount (checked here and again by the
per-test leak check in conftest.py).
"""

import json
import os

import pytest

from conftest import BRIG, IS_RUNC, NAME, _find_cgroup_dirs, mounts_under, marked_pids


def assert_nothing_left(runtime, cid, bundle=None):
    root = runtime.root
    if os.path.isdir(root):
        assert os.listdir(root) == [], f"state left in {root}: {os.listdir(root)}"
    ids = {cid} | ({bundle.id} if bundle else set())
    ids.discard("")
    assert _find_cgroup_dirs(ids) == []
    assert marked_pids(runtime.marker, [runtime.tmp_path], ids) == []
    if bundle:
        assert mounts_under(bundle.path) == []


def failed(cmd, what):
    """runc wraps create/run errors as '<name> <cmd> failed: <what>'."""
    return f"{NAME} {cmd} failed: {what}"


@pytest.mark.parametrize("cmd", ["run", "create"])
def test_missing_bundle_dir(runtime, tmp_path, cmd):
    cid = runtime.new_id()
    missing = tmp_path / "no-such-bundle"
    res = runtime.run(cmd, "--bundle", missing, cid)
    assert res.returncode == 1, res
    assert res.error == failed(cmd, f"chdir {missing}: no such file or directory")
    assert res.stdout == ""
    assert_nothing_left(runtime, cid)


def test_missing_config_json(runtime, bundle):
    os.unlink(bundle.config_path)
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed("run", "JSON specification file config.json not found")
    assert_nothing_left(runtime, bundle.id, bundle)


def test_invalid_json(runtime, bundle):
    bundle.config_path.write_text('{"ociVersion": "1.0.2", bad')
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    # the parser's own words differ between implementations; the prefix does not
    assert res.error.startswith(failed("create", "")), res
    assert len(res.error) > len(failed("create", "")) + 5, res
    assert_nothing_left(runtime, bundle.id, bundle)


def test_empty_args(runtime, bundle):
    bundle.config(args=[])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    # brig names the JSON path of the bad field (issue #2); runc has its own words.
    assert res.error == failed("run", "args must not be empty" if IS_RUNC
                               else "process.args: must have at least one entry")
    assert_nothing_left(runtime, bundle.id, bundle)


def test_relative_cwd(runtime, bundle):
    bundle.config(args=["true"], cwd="tmp")
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed("run", "Cwd must be an absolute path" if IS_RUNC
                               else "process.cwd: must be an absolute path")
    assert_nothing_left(runtime, bundle.id, bundle)


def test_missing_rootfs(runtime, bundle):
    bundle.set_config(lambda c: c["root"].update(path="no-rootfs"))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed(
        "run", f"invalid rootfs: stat {bundle.path}/no-rootfs: no such file or directory")
    assert_nothing_left(runtime, bundle.id, bundle)


def test_symlink_rootfs(runtime, bundle):
    """runc refuses a rootfs path that is (or goes through) a symlink: such a
    rootfs could make any host directory the container's /."""
    os.rename(bundle.rootfs, bundle.path / "real-rootfs")
    os.symlink("real-rootfs", bundle.rootfs)
    bundle.config(args=["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed("run", "invalid rootfs: not an absolute path, or a symlink")
    assert_nothing_left(runtime, bundle.id, bundle)


def test_rootfs_through_a_symlinked_directory(runtime, bundle):
    """Every name of a relative root.path is looked at, not only the last:
    a symlink half-way is refused as well."""
    real = bundle.path / "real"
    real.mkdir()
    os.rename(bundle.rootfs, real / "rootfs")
    os.symlink("real", bundle.path / "link")
    bundle.config(args=["true"], fn=lambda c: c["root"].update(path="link/rootfs"))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed("run", "invalid rootfs: not an absolute path, or a symlink")
    assert_nothing_left(runtime, bundle.id, bundle)
    # The same directory named without the link is fine.
    bundle.config(args=["true"], fn=lambda c: c["root"].update(path="real/rootfs"))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert_nothing_left(runtime, bundle.id, bundle)


def test_rootfs_a_dangling_symlink(runtime, bundle):
    """A rootfs that is a symlink to nothing: the stat's error, as runc."""
    os.rename(bundle.rootfs, bundle.path / "old-rootfs")
    os.symlink("gone", bundle.rootfs)
    bundle.config(args=["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed(
        "run", f"invalid rootfs: stat {bundle.path}/rootfs: no such file or directory")
    assert_nothing_left(runtime, bundle.id, bundle)


@pytest.mark.parametrize("path", ["rootfs/", "./rootfs", "rootfs/."])
def test_rootfs_path_spelled_otherwise(runtime, bundle, path):
    """A root.path with a trailing slash or dots is the same directory."""
    bundle.config(args=["true"], fn=lambda c: c["root"].update(path=path))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert_nothing_left(runtime, bundle.id, bundle)


def test_bundle_reached_through_a_symlink(runtime, bundle, tmp_path):
    """A relative root.path is taken from the bundle's real directory: a
    symlink on the way to the bundle is fine (runc chdirs into it)."""
    link = tmp_path / "bundle-link"
    os.symlink(bundle.path, link)
    bundle.config(args=["true"])
    res = runtime.run("run", "--bundle", link, bundle.id)
    assert res.returncode == 0, res
    assert_nothing_left(runtime, bundle.id, bundle)


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "a b", "x:y"])
def test_invalid_container_id(runtime, bundle, bad):
    bundle.config(args=["true"])
    for cmd in ("run", "create"):
        res = runtime.run(cmd, "--bundle", bundle, bad)
        assert res.returncode == 1, res
        assert res.error == failed(cmd, "invalid container ID format")
    assert_nothing_left(runtime, bad, bundle)


def test_empty_container_id(runtime, bundle):
    bundle.config(args=["true"])
    res = runtime.run("run", "--bundle", bundle, "")
    assert res.returncode == 1, res
    assert res.error == failed("run", "container id cannot be empty")
    assert_nothing_left(runtime, "", bundle)


def test_duplicate_id(runtime, bundle):
    bundle.config(args=["sleep", "60"])
    runtime.run("create", "--bundle", bundle, bundle.id, check=True)
    st = runtime.state(bundle.id)
    for cmd in ("create", "run"):
        res = runtime.run(cmd, "--bundle", bundle, bundle.id)
        assert res.returncode == 1, res
        assert res.error == failed(cmd, "container with given ID already exists")
    # the existing container is untouched
    assert runtime.state(bundle.id) == st


def test_missing_executable_in_path(runtime, bundle):
    bundle.config(args=["nosuchcmd", "arg"])
    for cmd in ("run", "create"):
        res = runtime.run(cmd, "--bundle", bundle, bundle.id)
        assert res.returncode == 1, res
        assert res.error == failed(
            cmd, 'unable to start container process: exec: "nosuchcmd": '
                 "executable file not found in $PATH"), res
        assert "executable file not found in $PATH" in res.error
        assert_nothing_left(runtime, bundle.id, bundle)


def test_empty_path_searches_nowhere(runtime, bundle):
    """PATH= names no directory, not the cwd: a program there is not found."""
    (bundle.rootfs / "tool").write_text("#!/bin/sh\necho ran\n")
    (bundle.rootfs / "tool").chmod(0o755)
    bundle.config(args=["tool"], env=["PATH="], cwd="/", readonly=False)
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed(
        "run", 'unable to start container process: exec: "tool": executable file not found in $PATH'), res
    assert_nothing_left(runtime, bundle.id, bundle)


@pytest.mark.parametrize("path", [":/bin", ".:/bin", "tmp/..:/bin"])
def test_program_found_through_a_relative_path_entry_is_refused(runtime, bundle, path):
    """runc (Go's exec.ErrDot) will not run a program that a relative PATH
    entry found in the cwd; found through an absolute entry later, it would."""
    (bundle.rootfs / "tool").write_text("#!/bin/sh\necho ran\n")
    (bundle.rootfs / "tool").chmod(0o755)
    bundle.config(args=["tool"], env=[f"PATH={path}"], cwd="/", readonly=False)
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed("run", 'unable to start container process: exec: "tool": '
                               "cannot run executable found relative to current directory"), res
    assert_nothing_left(runtime, bundle.id, bundle)
    # a program in an absolute entry runs, whatever comes before it
    bundle.config(args=["true"], env=[f"PATH={path}"])
    assert runtime.run("run", "--bundle", bundle, bundle.id).returncode == 0


def test_missing_executable_absolute(runtime, bundle):
    bundle.config(args=["/bin/nosuch"])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed(
        "run", 'unable to start container process: exec: "/bin/nosuch": '
               "stat /bin/nosuch: no such file or directory"), res
    assert_nothing_left(runtime, bundle.id, bundle)


def test_bind_mount_source_missing(runtime, bundle):
    bundle.config(args=["true"], mounts=[{"destination": "/mnt", "type": "bind",
                                          "source": "/nonexistent-src",
                                          "options": ["rbind"]}])
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.startswith(failed("run", "")), res
    assert "/nonexistent-src" in res.error and "/mnt" in res.error, res
    assert res.error.endswith("no such file or directory"), res
    assert_nothing_left(runtime, bundle.id, bundle)


def test_terminal_without_console_socket(runtime, bundle):
    bundle.config(args=["true"], terminal=True)
    res = runtime.run("create", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error == failed(
        "create", f"cannot allocate tty if {NAME} will detach without setting console socket")
    assert_nothing_left(runtime, bundle.id, bundle)


@pytest.mark.parametrize("cmd,n", [("run", "exactly 1"), ("create", "exactly 1"),
                                   ("start", "exactly 1"), ("delete", "exactly 1"),
                                   ("state", "exactly 1"), ("kill", "a minimum of 1"),
                                   ("list", "exactly 0")])
def test_wrong_number_of_arguments(runtime, cmd, n):
    args = [cmd] + (["extra"] if n == "exactly 0" else [])
    res = runtime.run(*args)
    assert res.returncode == 1, res
    # the prefix is argv[0] as invoked (here the full path)
    assert res.error == f'{BRIG}: "{cmd}" requires {n} argument(s)'
    # the usage goes to stdout
    assert res.stdout.startswith("Incorrect Usage.\n\nNAME:\n"), res
    assert f"{NAME} {cmd} - " in res.stdout


def test_too_many_arguments(runtime):
    res = runtime.run("state", "a", "b")
    assert res.returncode == 1, res
    assert res.error == f'{BRIG}: "state" requires exactly 1 argument(s)'


def test_log_file_json(runtime, tmp_path):
    log = tmp_path / "log.json"
    cid = runtime.new_id()
    res = runtime.run("run", "--bundle", tmp_path / "nope", cid,
                      global_args=("--log", log, "--log-format", "json"))
    assert res.returncode == 1, res
    want = failed("run", f"chdir {tmp_path / 'nope'}: no such file or directory")
    # with --log, stderr gets the bare message
    assert res.stderr == want + "\n", res
    lines = log.read_text().splitlines()
    errs = [json.loads(line) for line in lines if '"error"' in line]
    assert len(errs) == 1, lines
    e = errs[0]
    assert e["level"] == "error" and e["msg"] == want, e
    assert "time" in e
    assert list(e) == ["level", "msg", "time"], e


def test_log_file_text(runtime, tmp_path):
    from conftest import parse_logfmt
    log = tmp_path / "log.txt"
    res = runtime.run("kill", "nosuch", global_args=("--log", log))
    assert res.returncode == 1, res
    assert res.stderr == "container does not exist\n", res
    recs = [parse_logfmt(line) for line in log.read_text().splitlines()]
    assert [r["msg"] for r in recs if r and r["level"] == "error"] == \
        ["container does not exist"], log.read_text()


def test_log_format_json_to_stderr(runtime):
    res = runtime.run("state", "nosuch", global_args=("--log-format", "json"))
    assert res.returncode == 1, res
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res
    e = json.loads(lines[0])
    assert e["level"] == "error" and e["msg"] == "container does not exist", e


def test_log_file_quiet_on_success(runtime, bundle, tmp_path):
    log = tmp_path / "ok.log"
    bundle.config(args=["true"])
    res = runtime.run("run", "--bundle", bundle, bundle.id,
                      global_args=("--log", log, "--log-format", "json"))
    assert res.returncode == 0, res
    assert res.stderr == ""
    text = log.read_text() if log.exists() else ""
    assert '"level":"error"' not in text, text


def test_bad_log_format(runtime):
    res = runtime.run("list", global_args=("--log-format", "xml"))
    assert res.returncode == 1, res
    assert res.error == "invalid log-format: xml"
    assert res.stdout == ""
