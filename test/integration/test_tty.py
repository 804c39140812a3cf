"""A terminal session the way a person has one: `run` in the foreground with
process.terminal, inside a real terminal (a tmux pane): typing reaches the
container's shell, `stty size` follows the pane, a resize is passed on, and
the shell's exit status is run's."""

import shlex
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Pane:
    def __init__(self, env):
        self.sock = f"brig-tty-{uuid.uuid4().hex[:8]}"
        self.env = env

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock, *args], env=self.env, check=check,
                              capture_output=True, text=True, timeout=20)

    def text(self):
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200").stdout

    def wait_for(self, pred, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.text()
            if pred(t):
                return t
            time.sleep(0.05)
        raise AssertionError(f"pane never showed {what}:\n{self.text()}")

    def type(self, line):
        self.tmux("send-keys", "-l", line)
        self.tmux("send-keys", "Enter")


def test_run_in_a_real_terminal(runtime, bundle, tmp_path):
    bundle.config(terminal=True, args=["sh"], env=["PS1=ctr# ", "PATH=/bin", "TERM=xterm"])
    status = tmp_path / "status"
    cmd = shlex.join(runtime.cmd("run", "--bundle", str(bundle), bundle.id))
    pane = Pane(runtime.env())
    pane.tmux("-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30",
              f"{cmd}; echo $? > {status}; sleep 30")
    try:
        pane.wait_for(lambda t: "ctr# " in t, "the container's prompt")
        pane.type("echo typed-$((6*7)); tty; stty size")
        t = pane.wait_for(lambda t: "30 100" in t, "stty size 30 100")
        assert "typed-42" in t and "/dev/pts/0" in t, t
        pane.tmux("resize-window", "-x", "120", "-y", "40")
        time.sleep(0.2)
        pane.type("clear; stty size")
        pane.wait_for(lambda t: "40 120" in t, "stty size 40 120 after the resize")
        pane.type("exit 7")
        deadline = time.monotonic() + 20
        while not (status.exists() and status.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status.read_text().strip() == "7"
    finally:
        pane.tmux("kill-server", check=False)
