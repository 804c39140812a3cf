"""The Kubernetes path: containerd's CRI plugin, with a runtime handler whose
BinaryName is the runtime under test, driven over the CRI gRPC API the way the
kubelet drives it (our own client: cri/cri.proto + python3-grpcio)."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import (CG_PARENT, CTR_IMAGE, HERE, cgroup_file, new_name, proc_cgroup, run,
                      unmounted_v1_hierarchies, wait_for)

grpc = pytest.importorskip("grpc")


@pytest.fixture(scope="module")
def cri(containerd, session):
    out = session.base / "cri-py"
    out.mkdir()
    run([sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE / 'cri'}", f"--python_out={out}",
         f"--grpc_python_out={out}", str(HERE / "cri" / "cri.proto")])
    sys.path.insert(0, str(out))
    import cri_pb2
    import cri_pb2_grpc
    ch = grpc.insecure_channel(f"unix://{containerd.sock}")
    stub = cri_pb2_grpc.RuntimeServiceStub(ch)
    stub.Version(cri_pb2.VersionRequest(version="v1"), timeout=30)

    class C:
        pb = cri_pb2
        rt = stub
    yield C
    ch.close()


def sandbox_config(pb, session, name):
    uid = f"uid-{name}"
    logdir = session.base / "pods" / uid
    logdir.mkdir(parents=True)
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="brigtest", attempt=0),
        hostname=name,
        log_directory=str(logdir),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=f"/{CG_PARENT}/pod-{name}",
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER,
                                                     ipc=pb.POD))))


def remove_pod_cgroup(name):
    """What the kubelet does after RemovePodSandbox: remove the pod's cgroup
    parent, which fails if the runtime left a container cgroup inside."""
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / CG_PARENT / f"pod-{name}"
        if d.is_dir() and not h.is_symlink():
            left = [p.name for p in d.iterdir() if p.is_dir()]
            assert not left, f"cgroups left in {d}: {left}"
            os.rmdir(d)


def netns_ino(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def test_pod_lifecycle(cri, session, containerd):
    pb, rt = cri.pb, cri.rt
    name = new_name("pod")
    scfg = sandbox_config(pb, session, name)
    pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=scfg, runtime_handler="brig"),
                           timeout=120).pod_sandbox_id
    try:
        st = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True),
                                 timeout=30)
        assert st.status.state == pb.SANDBOX_READY
        assert st.status.network.ip == "10.88.77.2"
        info = json.loads(st.info["info"])
        pause_pid = info["pid"]
        netns_path = info["runtimeSpec"]["linux"]["namespaces"]
        netns_path = [n["path"] for n in netns_path if n["type"] == "network"][0]
        # The pause process sits in the netns containerd made (joined by path)
        # and in a cgroup under the pod's cgroup parent.
        assert os.stat(netns_path).st_ino == netns_ino(pause_pid)
        assert proc_cgroup(pause_pid, "memory").startswith(f"/{CG_PARENT}/pod-{name}/")
        # (start returns before the container's init has exec'd: wait)
        wait_for(lambda: Path(f"/proc/{pause_pid}/exe").resolve().name == "pause",
                 what="the pause binary")

        ccfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="work"),
            image=pb.ImageSpec(image=CTR_IMAGE),
            command=["sh", "-c"],
            args=["trap 'echo got-term; exit 0' TERM; echo started; "
                  "while true; do sleep 0.1; done"],
            envs=[pb.KeyValue(key="GREETING", value="hi-cri")],
            log_path="work.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20,
                                                     cpu_period=100000, cpu_quota=50000),
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER,
                                                         ipc=pb.POD))))
        cid = rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ccfg, sandbox_config=scfg), timeout=60).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)

        cs = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True),
                                timeout=30)
        assert cs.status.state == pb.CONTAINER_RUNNING
        assert cs.status.started_at > 0
        pid = json.loads(cs.info["info"])["pid"]
        st = containerd.state("k8s.io", cid)
        assert (st["status"], st["pid"]) == ("running", pid)
        assert containerd.state("k8s.io", pod)["pid"] == pause_pid
        assert netns_ino(pid) == netns_ino(pause_pid), "container did not join the pod netns"
        mem_cg = proc_cgroup(pid, "memory")
        assert mem_cg == f"/{CG_PARENT}/pod-{name}/{cid}", mem_cg
        assert cgroup_file("memory", mem_cg, "memory.limit_in_bytes") == str(64 << 20)
        assert cgroup_file("cpu", proc_cgroup(pid, "cpu"), "cpu.cfs_quota_us") == "50000"

        # ExecSync: output, stderr, exit code; the exec sees the pod network.
        r = rt.ExecSync(pb.ExecSyncRequest(
            container_id=cid, cmd=["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"],
            timeout=30), timeout=60)
        assert (r.stdout, r.stderr, r.exit_code) == (b"hi-cri\n", b"oops\n", 3)
        r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["ip", "addr"], timeout=30),
                        timeout=60)
        assert r.exit_code == 0 and b"10.88.77.2" in r.stdout, r.stdout

        # Logs in the CRI format: "<RFC3339Nano> stdout F <line>".
        log = Path(cs.status.log_path)
        assert log == Path(scfg.log_directory) / "work.log"
        wait_for(lambda: "started" in log.read_text(), what="log line")
        first = log.read_text().splitlines()[0].split(" ", 3)
        assert first[1:] == ["stdout", "F", "started"], first

        rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(
                memory_limit_in_bytes=128 << 20, cpu_period=100000, cpu_quota=25000)),
            timeout=60)
        assert cgroup_file("memory", mem_cg, "memory.limit_in_bytes") == str(128 << 20)
        assert cgroup_file("cpu", proc_cgroup(pid, "cpu"), "cpu.cfs_quota_us") == "25000"

        broken = unmounted_v1_hierarchies()
        if broken:  # the shim cannot load the cgroup: see conftest
            print(f"ContainerStats unchecked: unmounted v1 hierarchies {broken}")
        else:
            stats = rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid),
                                      timeout=30).stats
            assert stats.attributes.id == cid
            assert stats.cpu.usage_core_nano_seconds.value > 0
            assert stats.memory.working_set_bytes.value > 0

        t = time.monotonic()
        rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=20), timeout=60)
        assert time.monotonic() - t < 10, "StopContainer waited for the grace period"
        cs = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=30).status
        assert cs.state == pb.CONTAINER_EXITED
        assert cs.exit_code == 0 and cs.reason == "Completed", cs
        wait_for(lambda: "got-term" in log.read_text(), what="TERM trap output")

        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
        assert not (Path("/sys/fs/cgroup/memory") / CG_PARENT / f"pod-{name}" / cid).exists()
    finally:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        remove_pod_cgroup(name)
    assert not Path(netns_path).exists(), "pod netns left behind"


def test_host_network_pod(cri, session):
    """A pod in the host's netns (no CNI): the kubelet's hostNetwork=true."""
    pb, rt = cri.pb, cri.rt
    name = new_name("hpod")
    scfg = sandbox_config(pb, session, name)
    scfg.linux.security_context.namespace_options.network = pb.NODE
    scfg.hostname = ""  # the host's UTS namespace too: no hostname to set
    pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=scfg, runtime_handler="brig"),
                           timeout=120).pod_sandbox_id
    try:
        ccfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="w"), image=pb.ImageSpec(image=CTR_IMAGE),
            command=["sleep", "1000"], log_path="w.log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))))
        cid = rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ccfg, sandbox_config=scfg), timeout=60).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        cs = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True),
                                timeout=30)
        pid = json.loads(cs.info["info"])["pid"]
        assert netns_ino(pid) == netns_ino(os.getpid())
        r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "exit 0"],
                                           timeout=30), timeout=60)
        assert r.exit_code == 0
        # StopContainer with timeout 0: SIGKILL right away.
        rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
        cs = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), timeout=30).status
        assert cs.exit_code == 137
        rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
    finally:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        remove_pod_cgroup(name)
