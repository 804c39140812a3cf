"""linux.sysctl (only keys of the container's own namespaces), process.oomScoreAdj,
linux.mountLabel on a host without SELinux."""

import os

import pytest

from conftest import NAME, brig_only
from test_rootfs_safety import run_in


def _sysctl(bundle, values, drop=()):
    def fn(cfg):
        cfg["linux"]["sysctl"] = values
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] not in drop]
    bundle.config(fn=fn)


def test_sysctls_of_own_namespaces_are_written(runtime, bundle):
    host_fwd = open("/proc/sys/net/ipv4/ip_forward").read()
    host_shm = open("/proc/sys/kernel/shmmax").read()
    _sysctl(bundle, {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096",
                     "fs.mqueue.msg_max": "20", "kernel/domainname": "brig.test"})
    res = run_in(runtime, bundle,
                 "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax "
                 "/proc/sys/fs/mqueue/msg_max /proc/sys/kernel/domainname")
    assert res.stdout.split() == ["1", "4096", "20", "brig.test"], res
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_fwd
    assert open("/proc/sys/kernel/shmmax").read() == host_shm


def test_sysctl_written_before_proc_sys_is_read_only(runtime, bundle):
    _sysctl(bundle, {"net.ipv4.ip_forward": "1"})
    res = run_in(runtime, bundle, "(echo 0 > /proc/sys/net/ipv4/ip_forward) 2>&1; cat /proc/sys/net/ipv4/ip_forward")
    assert "Read-only file system" in res.stdout and res.stdout.endswith("1\n"), res


@pytest.mark.parametrize("key,drop,why", [
    ("kernel.pid_max", (), 'sysctl "kernel.pid_max" is not in a separate kernel namespace'),
    ("vm.swappiness", (), 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ("kernel.shmmax", ("ipc",), 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ("fs.mqueue.queues_max", ("ipc",),
     'sysctl "fs.mqueue.queues_max" is not allowed in the hosts ipc namespace'),
    ("net.ipv4.ip_forward", ("network",),
     'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ("kernel.hostname", (),
     'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
])
def test_sysctl_outside_own_namespaces_is_refused(runtime, bundle, key, drop, why):
    host = open("/proc/sys/" + key.replace(".", "/")).read()
    _sysctl(bundle, {key: "1"}, drop)
    res = run_in(runtime, bundle, "true", check=False)
    assert res.error == f"{NAME} run failed: {why}", res
    assert open("/proc/sys/" + key.replace(".", "/")).read() == host
    assert not os.path.exists(os.path.join(runtime.root, bundle.id))


def test_sysctl_bad_value_names_the_file(runtime, bundle):
    _sysctl(bundle, {"net.ipv4.ip_forward": "x"})
    res = run_in(runtime, bundle, "true", check=False)
    assert "/proc/sys/net/ipv4/ip_forward: invalid argument" in res.error, res


def test_oom_score_adj(runtime, bundle):
    bundle.config(fn=lambda c: c["process"].__setitem__("oomScoreAdj", 123))
    res = run_in(runtime, bundle, "cat /proc/self/oom_score_adj")
    assert res.stdout == "123\n", res


@brig_only  # runc 1.1.5 passes context= anyway here, and the tmpfs mount fails (EINVAL)
def test_mount_label_ignored_without_selinux(runtime, bundle):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here")
    bundle.config(fn=lambda c: c["linux"].__setitem__(
        "mountLabel", "system_u:object_r:container_file_t:s0:c1,c2"))
    res = run_in(runtime, bundle, "grep -c context= /proc/self/mountinfo", check=False)
    assert res.returncode == 1 and res.stdout == "0\n", res
