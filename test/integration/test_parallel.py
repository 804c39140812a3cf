"""Parallel use of one --root: distinct ids all work; the same id is taken once."""

from concurrent.futures import ThreadPoolExecutor

from conftest import runc_bug

RACE = ("runc 1.1.5 checks for an existing state dir and then creates it "
        "(stat + MkdirAll, not atomic): two creates of one id can both succeed, "
        "or fail with 'exec fifo ... already exists' / 'file exists'")


def test_parallel_distinct_ids(runtime, make_bundle):
    bundles = [make_bundle() for _ in range(10)]
    for b in bundles:
        b.config(args=["sleep", "60"])
    with ThreadPoolExecutor(10) as ex:
        results = list(ex.map(
            lambda b: runtime.run("create", "--bundle", b, b.id, timeout=60), bundles))
    for r in results:
        assert r.returncode == 0, r
    for b in bundles:
        runtime._record(b.id)  # pids/cgroups for the leak check
    listed = runtime.run("list", "-q", check=True).stdout.split()
    assert sorted(listed) == sorted(b.id for b in bundles)
    pids = {runtime.state(b.id)["pid"] for b in bundles}
    assert len(pids) == 10 and 0 not in pids
    with ThreadPoolExecutor(10) as ex:
        starts = list(ex.map(lambda b: runtime.run("start", b.id), bundles))
    assert all(r.returncode == 0 for r in starts), [str(r) for r in starts]
    assert all(runtime.status(b.id) == "running" for b in bundles)
    with ThreadPoolExecutor(10) as ex:
        dels = list(ex.map(lambda b: runtime.run("delete", "-f", b.id), bundles))
    assert all(r.returncode == 0 for r in dels), [str(r) for r in dels]
    assert runtime.run("list", "-q", check=True).stdout == ""


@runc_bug(RACE)
def test_parallel_same_id(runtime, bundle):
    bundle.config(args=["sleep", "60"])
    with ThreadPoolExecutor(5) as ex:
        results = list(ex.map(
            lambda _: runtime.run("create", "--bundle", bundle, bundle.id, timeout=60),
            range(5)))
    ok = [r for r in results if r.returncode == 0]
    bad = [r for r in results if r.returncode != 0]
    assert len(ok) == 1, "\n".join(map(str, results))
    for r in bad:
        assert r.returncode == 1, r
        assert r.error.endswith("container with given ID already exists"), r
    runtime._record(bundle.id)
    st = runtime.state(bundle.id)
    assert st["status"] == "created"
    runtime.run("start", bundle.id, check=True)
    assert runtime.status(bundle.id) == "running"


@runc_bug(RACE)
def test_parallel_same_id_run_detached(runtime, bundle):
    bundle.config(args=["sleep", "60"])
    with ThreadPoolExecutor(5) as ex:
        results = list(ex.map(
            lambda _: runtime.run("run", "-d", "--bundle", bundle, bundle.id, timeout=60),
            range(5)))
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 1, "\n".join(map(str, results))
    runtime._record(bundle.id)
    assert runtime.status(bundle.id) == "running"


def test_parallel_state_and_kill(runtime, bundle):
    # many readers while the container changes state must never see broken state
    bundle.config(args=["sleep", "60"])
    runtime.run("run", "-d", "--bundle", bundle, bundle.id, check=True)

    def reader(_):
        return runtime.run("state", bundle.id)

    with ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(reader, i) for i in range(16)]
        runtime.run("kill", bundle.id, "KILL", check=True)
        results = [f.result() for f in futs]
    import json
    for r in results:
        assert r.returncode == 0, r
        assert json.loads(r.stdout)["status"] in ("running", "stopped"), r
