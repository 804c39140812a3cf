#!/usr/bin/env python3
"""Write the list of brig's functions that its common commands run, in the
order the linker should place them (contrib/bench/hot-functions.txt).

    python3 contrib/bench/layout.py [-o OUT] BRIG [BRIG...]   (root; ~10 min each)

The list in the tree comes from a Release build (build-bench/, -O3) and then
a RelWithDebInfo build (-O2, what quickstart and the tests build), whose
compiler-made clones (.isra, .constprop, .part) have other names:

    python3 contrib/bench/layout.py build-bench/brig build-rwd/brig

Why: the kernel maps a binary's text into a process a 64 KiB window (more
with large page-cache folios) around each page it touches, so a container
start that runs ~0.9 MiB of brig's code scattered over its 3.2 MiB of text
made nearly all of it resident. Linked in this order (CMakeLists.txt,
BRIG_LAYOUT), the code those commands run is contiguous.

How: one uprobe on the entry of every function in BRIG (from its symbol
table), a workload of the commands CRI and podman use most, and the probes'
hit counts from /sys/kernel/tracing/uprobe_profile. Exact, unlike sampling:
a function run once counts. Removing thousands of uprobes is slow (the
kernel waits for a grace period per probe); that is most of the run time.
The workload's containers live under the cgroup /brigprof, removed at the
end, with their state and bundles.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TRACING = "/sys/kernel/tracing"
GROUP = f"briglayout{os.getpid()}"  # an event name already in use would get our probe added to it
CGPARENT = "brigprof"


def functions(binary):
    """{address: [symbol names]} of the sized functions in the executable
    segments, and {address: file offset}."""
    segs = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in "".join(f[6:-1]):
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    names, offsets = {}, {}
    for line in subprocess.run(["nm", "--defined-only", "-S", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW" or int(f[1], 16) == 0:
            continue
        addr = int(f[0], 16)
        for off, vaddr, size in segs:
            if vaddr <= addr < vaddr + size:
                names.setdefault(addr, []).append(f[3])
                offsets[addr] = addr - vaddr + off
    return names, offsets


def bundle(brig, work, name, args, edit=None):
    d = os.path.join(work, name)
    os.makedirs(d)
    subprocess.run([brig, "spec", "--bundle", d], check=True)
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    c["root"] = {"path": os.path.join(work, "rootfs"), "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["linux"]["cgroupsPath"] = f"/{CGPARENT}/{name}"
    if edit:
        edit(c)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f)
    return d


def with_seccomp(c):
    # The shape of containerd's and podman's default profiles: a default
    # action, name lists, one rule with an argument condition.
    c["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["read", "write", "openat", "close", "fstat", "newfstatat", "mmap", "mprotect",
                       "munmap", "brk", "rt_sigaction", "rt_sigprocmask", "execve", "exit",
                       "exit_group", "arch_prctl", "set_tid_address", "getpid", "getuid", "prctl",
                       "nanosleep", "clock_nanosleep", "set_robust_list", "rseq", "prlimit64",
                       "getrandom", "futex", "capget", "capset", "setgroups", "setuid", "setgid",
                       "fcntl", "dup3", "close_range", "getppid", "ioctl", "wait4", "kill"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        ]}


def workload(brig, work, root):
    busybox = shutil.which("busybox")
    os.makedirs(os.path.join(work, "rootfs", "bin"))
    shutil.copy(busybox, os.path.join(work, "rootfs", "bin", "busybox"))
    for t in ("true", "sh", "sleep"):
        os.symlink("busybox", os.path.join(work, "rootfs", "bin", t))
    b = lambda *a: subprocess.run([brig, "--root", root, *a], check=True,
                                  stdout=subprocess.DEVNULL)
    for i in range(3):
        b("run", "--bundle", bundle(brig, work, f"run{i}", ["/bin/true"]), f"run{i}")
        b("run", "--bundle", bundle(brig, work, f"sec{i}", ["/bin/true"], with_seccomp), f"sec{i}")
        d = bundle(brig, work, f"life{i}", ["/bin/sleep", "60"])
        b("create", "--bundle", d, f"life{i}")
        b("start", f"life{i}")
        b("state", f"life{i}")
        b("exec", f"life{i}", "/bin/true")
        b("exec", "-d", "--pid-file", os.path.join(d, "exec.pid"), f"life{i}", "/bin/sleep", "60")
        b("list")
        b("ps", f"life{i}")
        b("pause", f"life{i}")
        b("resume", f"life{i}")
        b("kill", f"life{i}", "KILL")
        for _ in range(100):
            if json.loads(subprocess.run([brig, "--root", root, "state", f"life{i}"],
                                         capture_output=True, text=True).stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        b("delete", f"life{i}")


def profile(brig):
    """The names of BRIG's functions the workload runs, in address order."""
    names, offsets = functions(brig)
    addrs = sorted(names)
    work = tempfile.mkdtemp(prefix="briglayout.")
    root = os.path.join(work, "state")
    ctl = os.open(os.path.join(TRACING, "uprobe_events"), os.O_WRONLY | os.O_APPEND)
    enable = os.path.join(TRACING, "events", GROUP, "enable")
    added = 0
    hit = set()
    try:
        for i, a in enumerate(addrs):  # one write per probe: the parser wants whole lines
            os.write(ctl, f"p:{GROUP}/f{i} {brig}:0x{offsets[a]:x}\n".encode())
            added = i + 1
        with open(enable, "w") as f:
            f.write("1")
        workload(brig, work, root)
        with open(enable, "w") as f:
            f.write("0")
        with open(os.path.join(TRACING, "uprobe_profile")) as f:
            for line in f:
                g = line.split()
                # "PATH  EVENT  HITS  MISSES"
                if len(g) >= 3 and g[0] == brig and g[1].startswith("f") and int(g[2]) > 0:
                    hit.add(addrs[int(g[1][1:])])
    finally:
        if added:
            try:
                with open(enable, "w") as f:
                    f.write("0")
            except OSError:
                pass
            for i in range(added):
                os.write(ctl, f"-:{GROUP}/f{i}\n".encode())
        os.close(ctl)
        for name in os.listdir(root) if os.path.isdir(root) else []:
            subprocess.run([brig, "--root", root, "delete", "--force", name])
        for h in os.listdir("/sys/fs/cgroup"):
            p = os.path.join("/sys/fs/cgroup", h, CGPARENT)
            if os.path.isdir(p):
                for d, _, _ in os.walk(p, topdown=False):
                    os.rmdir(d)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{brig}: {len(hit)} of {len(addrs)} functions", file=sys.stderr)
    return [n for a in sorted(hit) for n in sorted(names[a])]


HOT_END = "brig_hot_text_end"  # never called, so never in a profile: appended


def main():
    args = sys.argv[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "hot-functions.txt")
    if args[:1] == ["-o"] and len(args) > 2:
        out, args = args[1], args[2:]
    if not args or os.geteuid() != 0:
        sys.exit(__doc__)
    if not os.path.isdir(os.path.join(TRACING, "events")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING], check=True)
    order, seen = [], set()
    for b in args:
        for n in profile(os.path.realpath(b)):
            if n not in seen:
                seen.add(n)
                order.append(n)
    with open(out, "w") as f:
        f.write("# brig's functions that its common commands call: run, create, start, state,\n"
                "# exec (also -d), list, ps, pause, resume, kill and delete, with and without\n"
                "# seccomp. ld.lld puts them first, in this order (CMakeLists.txt, BRIG_LAYOUT),\n"
                "# so the code those commands run is contiguous. Names a build lacks are\n"
                "# skipped; a function missing here only costs resident pages. Written by\n"
                f"# contrib/bench/layout.py from {len(args)} build(s), first one's names first.\n"
                "# Last, brig_hot_text_end marks where this code ends: brig maps the text up\n"
                "# to it in one call as it starts (cmd/main.cpp).\n")
        f.write("".join(n + "\n" for n in order if n != HOT_END) + HOT_END + "\n")
    print(f"{out}: {len(order)} names", file=sys.stderr)


if __name__ == "__main__":
    main()
