#!/usr/bin/env python3
"""Side-by-side start-up benchmark of OCI runtimes (brig, crun, runc).

Every measurement is interleaved: iteration i runs the same step with each
runtime in turn (the order rotates each iteration), so load from other users
of the machine hits all runtimes alike. Ratios between runtimes are the
result; absolute times on a shared machine are noise-prone.

Driven by contrib/bench/run.sh, which installs the runtimes and prepares the
host; this file only needs python3.
"""
import argparse
import ctypes
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def percentile(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Runtime:
    def __init__(self, name, binary, state_root):
        self.name = name
        self.binary = binary
        self.root = state_root

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]


class Bench:
    def __init__(self, runtimes, rootfs, base_config, cgroup_parent, workdir):
        self.rts = runtimes
        self.rootfs = rootfs
        self.base = base_config
        self.cg_parent = cgroup_parent
        self.work = workdir
        self.seq = 0
        self.devnull = os.open(os.devnull, os.O_RDWR)

    # One bundle per container: the config differs only in its cgroupsPath
    # (absolute, under the bench-owned parent) and args; the rootfs is shared
    # (root.readonly is true in runc's default config).
    def bundle(self, rt, args):
        self.seq += 1
        cid = f"bb-{rt.name}-{os.getpid()}-{self.seq}"
        d = os.path.join(self.work, cid)
        os.mkdir(d)
        cfg = json.loads(json.dumps(self.base))
        cfg["root"]["path"] = self.rootfs
        cfg["process"]["args"] = args
        cfg["linux"]["cgroupsPath"] = f"{self.cg_parent}/{cid}"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return cid, d

    def drop_bundle(self, d):
        shutil.rmtree(d, ignore_errors=True)

    def spawn(self, argv):
        return os.posix_spawn(argv[0], argv, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, self.devnull, 0),
                                            (os.POSIX_SPAWN_DUP2, self.devnull, 1)])

    def wait(self, pid, argv):
        _, status, ru = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed ({os.waitstatus_to_exitcode(status)})")
        return ru

    def timed(self, argv):
        """Runs argv, returns (seconds, max RSS in KiB of it and its reaped descendants)."""
        t0 = time.perf_counter()
        pid = self.spawn(argv)
        ru = self.wait(pid, argv)
        return time.perf_counter() - t0, ru.ru_maxrss

    def reap(self):
        # Container inits end up with us (subreaper): collect them.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def wait_container_exit(self, pid):
        # The container's init was reparented to us: wait for it.
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            # Not ours (e.g. a runtime that keeps it as a child): poll instead.
            while os.path.exists(f"/proc/{pid}") and not open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                time.sleep(0.0005)

    def rotate(self, i):
        k = i % len(self.rts)
        return self.rts[k:] + self.rts[:k]

    # ---- the steps ----

    def bench_run(self, n, res):
        for i in range(n):
            for rt in self.rotate(i):
                cid, d = self.bundle(rt, ["/bin/true"])
                t, _ = self.timed(rt.argv("run", "--bundle", d, cid))
                res.setdefault(("run", rt.name), []).append(t)
                self.drop_bundle(d)
                self.reap()

    def bench_rss(self, n, maxrss, res):
        # Through a small static launcher (maxrss.c): wait4's ru_maxrss of a
        # child we spawned directly would start at this Python's own RSS.
        for i in range(n):
            for rt in self.rotate(i):
                cid, d = self.bundle(rt, ["/bin/true"])
                r, w = os.pipe()
                argv = [maxrss, *rt.argv("run", "--bundle", d, cid)]
                pid = os.posix_spawn(argv[0], argv, os.environ,
                                     file_actions=[(os.POSIX_SPAWN_DUP2, self.devnull, 0),
                                                   (os.POSIX_SPAWN_DUP2, self.devnull, 1),
                                                   (os.POSIX_SPAWN_DUP2, w, 3)])
                os.close(w)
                self.wait(pid, argv)
                kib = int(os.read(r, 64).decode().strip())
                os.close(r)
                res.setdefault(("rss", rt.name), []).append(kib)
                self.drop_bundle(d)
                self.reap()

    def bench_lifecycle(self, n, res):
        for i in range(n):
            for rt in self.rotate(i):
                cid, d = self.bundle(rt, ["/bin/true"])
                pidfile = os.path.join(d, "pid")
                tc, _ = self.timed(rt.argv("create", "--bundle", d, "--pid-file", pidfile, cid))
                pid = int(open(pidfile).read())
                ts, _ = self.timed(rt.argv("start", cid))
                self.wait_container_exit(pid)
                td, _ = self.timed(rt.argv("delete", cid))
                res.setdefault(("create", rt.name), []).append(tc)
                res.setdefault(("start", rt.name), []).append(ts)
                res.setdefault(("delete", rt.name), []).append(td)
                res.setdefault(("create+start+delete", rt.name), []).append(tc + ts + td)
                self.drop_bundle(d)
                self.reap()

    def bench_exec(self, n, res):
        running = {}
        for rt in self.rts:
            cid, d = self.bundle(rt, ["/bin/sleep", "100000"])
            self.timed(rt.argv("run", "--detach", "--bundle", d, cid))
            running[rt.name] = (cid, d)
        try:
            for i in range(n):
                for rt in self.rotate(i):
                    cid, _ = running[rt.name]
                    t, _ = self.timed(rt.argv("exec", cid, "/bin/true"))
                    res.setdefault(("exec", rt.name), []).append(t)
        finally:
            for rt in self.rts:
                cid, d = running[rt.name]
                self.timed(rt.argv("delete", "--force", cid))
                self.drop_bundle(d)
            self.reap()

    def bench_batch(self, batches, count, parallel, res):
        """`count` runs of /bin/true one after another, or all at once."""
        label = f"{count} {'parallel' if parallel else 'sequential'}"
        for i in range(batches):
            for rt in self.rotate(i):
                jobs = [self.bundle(rt, ["/bin/true"]) for _ in range(count)]
                t0 = time.perf_counter()
                pending = []
                for cid, d in jobs:
                    argv = rt.argv("run", "--bundle", d, cid)
                    pending.append((self.spawn(argv), argv))
                    if not parallel:
                        self.wait(*pending.pop())
                for pid, argv in pending:
                    self.wait(pid, argv)
                res.setdefault((label, rt.name), []).append(time.perf_counter() - t0)
                for _, d in jobs:
                    self.drop_bundle(d)
                self.reap()


def phase_breakdown(b, rt, n):
    """brig's own --debug phase marks: median time from the previous mark."""
    import re
    mark = re.compile(r'phase (.+?) \+([0-9.]+) ms(?:, ([0-9]+) faults)?')
    per = {}
    faults = {}

    def collect(argv, log):
        if os.path.exists(log):
            os.unlink(log)
        b.wait(b.spawn(argv), argv)
        prev = 0.0
        prev_faults = {}  # per process: init's and the exec child's counts start at 0
        for line in open(log):
            m = mark.search(line)
            if not m:
                continue
            t = float(m.group(2))
            per.setdefault(m.group(1), []).append(t - prev)
            prev = t
            if m.group(3) is not None:
                who = m.group(1).split(":")[0]
                who = who if who in ("init", "exec child") else "brig"
                f = int(m.group(3))
                faults.setdefault(m.group(1), []).append(f - prev_faults.get(who, 0))
                prev_faults[who] = f

    log = os.path.join(b.work, "phases.log")
    dbg = [rt.binary, "--debug", "--log", log, "--root", rt.root]
    for _ in range(n):
        cid, d = b.bundle(rt, ["/bin/true"])
        collect(dbg + ["run", "--bundle", d, cid], log)
        b.drop_bundle(d)
        b.reap()
    cid, d = b.bundle(rt, ["/bin/sleep", "100000"])
    b.timed(rt.argv("run", "--detach", "--bundle", d, cid))
    try:
        for _ in range(n):
            collect(dbg + ["exec", cid, "/bin/true"], log)
    finally:
        b.timed(rt.argv("delete", "--force", cid))
        b.drop_bundle(d)
        b.reap()
    print(f"\nbrig --debug phase marks (n={n}): median ms since the previous mark "
          "(first mark of a command: since main() began), and median minor page faults "
          "of that process since its previous mark")
    for name, xs in per.items():
        fs = faults.get(name)
        f = f"{statistics.median(fs):6.0f}" if fs else "     -"
        print(f"  {statistics.median(xs):8.3f} {f}  {name}")


def fmt_time(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def report(res, rts, order, sizes, out):
    names = [r.name for r in rts]
    lines = []
    head = "| step | " + " | ".join(f"{n} median (p10–p90)" for n in names)
    ratios = [(a, b) for a in names if a.startswith("brig") for b in ("crun", "runc") if b in names]
    if "floor" in names:  # floor.c: the least work the container needs (run.sh --floor)
        ratios += [(a, "floor") for a in names if a.startswith("brig")]
        ratios += [("floor", "crun")] if "crun" in names else []
    if "floor-safe" in names:  # the floor with what the project's rules ask of any runtime
        ratios += [(a, "floor-safe") for a in names if a.startswith("brig")]
        ratios += [("floor-safe", "crun")] if "crun" in names else []
    head += "".join(f" | {a}/{b}" for a, b in ratios) + " |"
    lines.append(head)
    lines.append("|" + "---|" * (1 + len(names) + len(ratios)))
    for step in order:
        if (step, names[0]) not in res:
            continue
        cells, med = [], {}
        for n in names:
            xs = res[(step, n)]
            med[n] = statistics.median(xs)
            if step == "rss":
                cells.append(f"{med[n] / 1024:.1f} MiB ({percentile(xs, .1) / 1024:.1f}–{percentile(xs, .9) / 1024:.1f})")
            else:
                cells.append(f"{fmt_time(med[n])} ({fmt_time(percentile(xs, .1))}–{fmt_time(percentile(xs, .9))})")
        label = "peak RSS during run" if step == "rss" else step
        row = f"| {label} (n={len(res[(step, names[0])])}) | " + " | ".join(cells)
        row += "".join(f" | {med[a] / med[b]:.2f}" for a, b in ratios) + " |"
        lines.append(row)
    cells = [f"{sizes[n] / 1024:.0f} KiB" for n in names]
    lines.append("| binary size | " + " | ".join(cells) +
                 "".join(f" | {sizes[a] / sizes[b]:.2f}" for a, b in ratios) + " |")
    text = "\n".join(lines)
    print(text, file=out)
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", action="append", required=True, help="NAME=BINARY (repeatable)")
    ap.add_argument("--config", required=True, help="base config.json (runc spec)")
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--cgroup-parent", default="/brigbench")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--quick", action="store_true", help="few iterations: a smoke test, not a measurement")
    ap.add_argument("-n", type=int, default=30, help="iterations of run/lifecycle/exec")
    ap.add_argument("--batches", type=int, default=3, help="iterations of the 100-sequential / 20-parallel steps")
    ap.add_argument("--maxrss", required=True, help="the maxrss.c launcher, built")
    ap.add_argument("--phases", type=int, default=0, metavar="N",
                    help="only print brig's --debug phase breakdown of N runs and execs")
    ap.add_argument("--json", help="write raw samples here")
    a = ap.parse_args()

    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("bench: cannot become a child subreaper")
    rts = []
    for spec in a.runtime:
        name, _, binary = spec.partition("=")
        rts.append(Runtime(name, os.path.realpath(binary), os.path.join(a.state_dir, name)))
    base = json.load(open(a.config))
    work = tempfile.mkdtemp(prefix="bundles.", dir=a.state_dir)
    b = Bench(rts, os.path.realpath(a.rootfs), base, a.cgroup_parent, work)
    n, batches, seq, par = (3, 1, 10, 5) if a.quick else (a.n, a.batches, 100, 20)

    if a.phases:
        phase_breakdown(b, rts[0], a.phases)
        shutil.rmtree(work, ignore_errors=True)
        return

    res = {}
    # Warm the page cache and the runtimes' state dirs, not measured.
    b.bench_run(1, {})
    t0 = time.time()
    b.bench_run(n, res)
    b.bench_rss(n, a.maxrss, res)
    b.bench_lifecycle(n, res)
    b.bench_exec(n, res)
    b.bench_batch(batches, seq, False, res)
    b.bench_batch(batches, par, True, res)
    elapsed = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)

    sizes = {r.name: os.stat(r.binary).st_size for r in rts}
    order = ["run", "create", "start", "delete", "create+start+delete", "exec",
             f"{seq} sequential", f"{par} parallel", "rss"]
    print(f"\n{os.uname().release}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{elapsed:.0f} s; interleaved, medians with p10–p90.")
    print("Absolute times are noisy on a shared machine; compare the ratios (same run, same bundle).\n")
    report(res, rts, order, sizes, sys.stdout)
    print("\npeak RSS: ru_maxrss from wait4() of the runtime's `run` process (started by a small static "
          "launcher) = the largest peak of the runtime and its reaped descendants, i.e. its container init "
          "(the kernel keeps the pre-exec peak of the init's image).")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{k[0]}|{k[1]}": v for k, v in res.items()}, f)


if __name__ == "__main__":
    main()
