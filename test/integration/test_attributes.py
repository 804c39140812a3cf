"""Process attributes (issue #4): scheduler, ioPriority, personality,
execCPUAffinity and LSM labels, each read back from inside the container."""

import os

import pytest

from conftest import IS_RUNC

brig_only = pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5 does not support this field")


def stat_field(text, n):
    # /proc/self/stat: fields after "(comm)"; n is the 1-based field number
    return text.rsplit(")", 1)[1].split()[n - 3]


@brig_only
def test_scheduler_batch_with_nice(runtime, bundle):
    bundle.config(args=["cat", "/proc/self/stat"],
                  fn=lambda c: c["process"].update(scheduler={"policy": "SCHED_BATCH", "nice": 7}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert stat_field(res.stdout, 41) == "3"   # policy SCHED_BATCH
    assert stat_field(res.stdout, 19) == "7"   # nice


@brig_only
def test_io_priority(runtime, bundle):
    bundle.config(args=["sh", "-c", "ionice -p $$"],
                  fn=lambda c: c["process"].update(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 6}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "best-effort: prio 6", res


@brig_only
def test_personality_linux32(runtime, bundle):
    bundle.config(args=["/bin/busybox", "uname", "-m"], fn=lambda c: c["linux"].update(personality={"domain": "LINUX32"}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.strip() in ("i686", "i386"), res


@brig_only
@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_final(runtime, bundle):
    bundle.config(args=["grep", "Cpus_allowed_list", "/proc/self/status"],
                  fn=lambda c: c["process"].update(execCPUAffinity={"initial": "0-1", "final": "1"}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 0, res
    assert res.stdout.split() == ["Cpus_allowed_list:", "1"], res


@brig_only
def test_bad_cpu_list_is_one_error_line(runtime, bundle):
    bundle.config(args=["true"], fn=lambda c: c["process"].update(execCPUAffinity={"final": "3-1"}))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert 'process.execCPUAffinity.final: invalid CPU list "3-1"' in res.error, res


@pytest.mark.skipif(os.path.exists("/sys/fs/selinux"), reason="SELinux is enabled here")
def test_selinux_label_without_selinux(runtime, bundle):
    bundle.config(args=["true"], fn=lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert res.error.endswith("selinux label is specified in config, but selinux is disabled or not supported"), res


@brig_only  # runc 1.1.5 silently ignores the profile
@pytest.mark.skipif(os.path.exists("/sys/module/apparmor/parameters/enabled"), reason="AppArmor is present")
def test_apparmor_profile_without_apparmor(runtime, bundle):
    bundle.config(args=["true"], fn=lambda c: c["process"].update(apparmorProfile="brig-default"))
    res = runtime.run("run", "--bundle", bundle, bundle.id)
    assert res.returncode == 1, res
    assert "apparmor is not enabled on this system" in res.error, res
    assert runtime.state(bundle.id, check=False) is None
