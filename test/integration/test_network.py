"""brig's bridge networking (netns/): veth pairs on a bridge, leases, routes,
published ports, netDevices, teardown.

Every test runs brig inside a network namespace it creates (`ip netns add`
with a random name, entered with nsenter), with its own config and network
state dirs, so no bridge or veth ever appears in the host's namespace,
concurrent runs never collide and no packet leaves the machine.  The test
netns plays "the host"."""

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import IS_RUNC, wait_for

pytestmark = pytest.mark.skipif(IS_RUNC, reason="brig networking is brig-specific")

NFT = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
need_nft = pytest.mark.skipif(NFT is None, reason="nft (Debian package nftables) not installed")

SERVER = ["sh", "-c", "nc -ll -p 80 -e echo hello"]


def fnv1a(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


class NetEnv:
    """A throwaway network namespace plus brig's config/state dirs for it."""

    def __init__(self, tmp_path):
        self.name = f"brigt-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=15)
        self.path = f"/run/netns/{self.name}"
        self.config = tmp_path / "brig-config"
        self.state = tmp_path / "brig-netstate"
        (self.config / "networks").mkdir(parents=True)
        self.sh("ip", "link", "set", "lo", "up")

    def sh(self, *args, check=True, timeout=20):
        """Run a command inside the test netns."""
        p = subprocess.run(["nsenter", f"--net={self.path}", *map(str, args)], capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, f"{args} failed: {p.stdout}{p.stderr}"
        return p

    def define(self, name, **kw):
        (self.config / "networks" / f"{name}.json").write_text(json.dumps(kw))

    def veths(self):
        out = self.sh("ip", "-o", "link", "show", "type", "veth").stdout
        return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if l.strip()]

    def links(self):
        out = self.sh("ip", "-o", "link", "show").stdout
        return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if l.strip()]

    def leases(self):
        found = []
        for f in self.state.glob("*/leases.json"):
            found += json.loads(f.read_text())["leases"]
        return found

    def nft_elements(self, only=None):
        """Elements of brig's port maps and masquerade sets (ip and ip6) and
        of its anti-spoofing sets (bridge); `only`: that family's."""
        els = []
        tables = {"ip": (("map", "ports"), ("set", "masq")), "ip6": (("map", "ports"), ("set", "masq")),
                  "bridge": (("set", "ports"), ("set", "macs"), ("set", "v4"), ("set", "v6"), ("set", "na6"))}
        for fam, sets in tables.items():
            if only and fam != only:
                continue
            if not NFT or self.sh(NFT, "list", "table", fam, "brig", check=False).returncode != 0:
                continue
            for kind, name in sets:
                j = json.loads(self.sh(NFT, "-j", "list", kind, fam, "brig", name).stdout)
                for o in j["nftables"]:
                    els += o.get(kind, {}).get("elem", [])
        return els

    def assert_clean(self, rt):
        """Nothing a container held is left: veths, leases, nft elements,
        network records, addresses/routes other than the bridges'."""
        assert self.veths() == []
        assert self.leases() == []
        assert self.nft_elements() == []
        assert list(Path(rt.root).glob("*/network.json")) == []
        routes = self.sh("ip", "-o", "route", "show").stdout
        for line in routes.splitlines():
            assert " dev brig" in line or " dev br" in line, f"stray route {line}"

    def leftovers(self):
        """What containers left in the netns (checked after the runtime
        fixture force-deleted every container of the test)."""
        problems = []
        if self.veths():
            problems.append(f"veths left: {self.veths()}")
        if self.leases():
            problems.append(f"leases left: {self.leases()}")
        if self.nft_elements():
            problems.append(f"nft elements left: {self.nft_elements()}")
        return problems

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], timeout=15)


@pytest.fixture
def net(tmp_path):
    # Set up before `runtime` (see nrt), so torn down after its leak check
    # has deleted every container: then nothing of theirs may be left here.
    n = NetEnv(tmp_path)
    yield n
    try:
        problems = n.leftovers()
    finally:
        n.close()
    assert not problems, "network leftovers after the test:\n  " + "\n  ".join(problems)


@pytest.fixture
def nrt(net, runtime):
    """The runtime, running every command inside the test netns."""
    runtime.prefix = ["nsenter", f"--net={net.path}"]
    runtime.extra_env = {"BRIG_CONFIG_DIR": str(net.config), "BRIG_NETWORK_STATE_DIR": str(net.state)}
    return runtime


def net_bundle(make_bundle, network="brig", ports=None, args=SERVER, caps=(), fn=None):
    b = make_bundle()
    ann = {"io.brig.network": network}
    if ports:
        ann["io.brig.network.ports"] = ports

    def edit(cfg):
        for k in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][k] += list(caps)
        if fn:
            fn(cfg)
    b.config(args=args, annotations=ann, fn=edit)
    return b


def record(rt, cid):
    return json.loads((Path(rt.root) / cid / "network.json").read_text())


def ip_of(rt, cid, key="ip"):
    return record(rt, cid)[key].split("/")[0]


def start(rt, b):
    rt.run("run", "-d", "--bundle", b, b.id, check=True)
    return b.id


def nc(net, addr, port=80, tries=50):
    """Connect from the test netns; retries until the server listens."""
    for _ in range(tries):
        p = net.sh("busybox", "nc", "-w", "2", addr, port, check=False)
        if "hello" in p.stdout:
            return p.stdout
        time.sleep(0.1)
    return p.stdout + p.stderr


def test_two_containers_and_the_host(nrt, net, make_bundle):
    a = start(nrt, net_bundle(make_bundle))  # the default network: no file
    b = start(nrt, net_bundle(make_bundle, args=["sleep", "60"], caps=["CAP_NET_RAW"]))
    ipa, ipb = ip_of(nrt, a), ip_of(nrt, b)
    assert ipa != ipb and ipa.startswith("10.87.") and ipb.startswith("10.87.")
    assert record(nrt, a)["bridge"] == "brig0"
    assert "brig0" in net.links()
    assert len(net.veths()) == 2
    # host -> container over TCP
    assert "hello" in nc(net, ipa)
    # container -> container: TCP and ICMP
    r = nrt.run("exec", b, "sh", "-c", f"nc -w 3 {ipa} 80", check=True)
    assert "hello" in r.stdout
    r = nrt.run("exec", "--cap", "CAP_NET_RAW", b, "/bin/busybox", "ping", "-c", "1", "-W", "3", ipa, check=True)
    assert "1 packets received" in r.stdout
    # inside: lo up, eth0 with the address, default route via the gateway
    r = nrt.run("exec", b, "cat", "/proc/net/route", check=True)
    assert any(l.split()[0] == "eth0" and l.split()[1] == "00000000" for l in r.stdout.splitlines()[1:])
    r = nrt.run("exec", b, "/bin/busybox", "ip", "-o", "addr", "show", check=True)
    assert f"{ipb}/16" in r.stdout and "eth0" in r.stdout
    assert "127.0.0.1/8" in r.stdout
    for cid in (a, b):
        nrt.run("delete", "-f", cid, check=True)
    net.assert_clean(nrt)


@need_nft
def test_published_port_and_masquerade(nrt, net, make_bundle):
    net.define("pub", bridge="brpub0", subnet="10.66.0.0/24", masquerade=True)
    a = start(nrt, net_bundle(make_bundle, network="pub", ports="8080:80/tcp,5353:53/udp"))
    ip = ip_of(nrt, a)
    assert ip.startswith("10.66.0.")
    # the host side: the bridge's address (a local one) answers on 8080
    assert "hello" in nc(net, "10.66.0.1", 8080)
    els = json.dumps(net.nft_elements())
    assert ip in els and "8080" in els
    # a second container cannot take the same host port; its create rolls back
    b = net_bundle(make_bundle, network="pub", ports="8080:81")
    r = nrt.run("create", "--bundle", b, b.id, check=False)
    assert r.returncode != 0
    assert "8080" in r.stderr and "nftables" in r.stderr
    assert not (Path(nrt.root) / b.id).exists()
    assert len(net.veths()) == 1 and len(net.leases()) == 1
    nrt.run("delete", "-f", a, check=True)
    net.assert_clean(nrt)


@need_nft
def test_reload_puts_the_rules_back_after_a_flush(nrt, net, make_bundle):
    """`nft flush ruleset` (a firewall service's reload) takes brig's tables
    along; `brig network reload` puts back every running container's guard,
    published ports and masquerade, and running it again changes nothing."""
    net.define("rl", bridge="brrl0", subnet="10.70.0.0/24", subnet6="fd00:70::/64", masquerade=True)
    a = start(nrt, net_bundle(make_bundle, network="rl", ports="8090:80/tcp"))
    b = start(nrt, net_bundle(make_bundle, network="rl", args=["sleep", "60"],
                              caps=["CAP_NET_ADMIN", "CAP_NET_RAW"]))
    before = sorted(json.dumps(e, sort_keys=True) for e in net.nft_elements())

    def spoofed_ping():  # b speaking as an address not its own
        return nrt.run("exec", b, "sh", "-c", f"ping -c 2 -W 2 -I 10.70.0.200 {ip_of(nrt, a)}").stdout
    nrt.run("exec", b, "sh", "-c", "ip addr add 10.70.0.200/24 dev eth0", check=True)
    assert "0 packets received" in spoofed_ping()
    guard_rules = net.sh(NFT, "list", "chain", "bridge", "brig", "guard").stdout
    assert "hello" in nc(net, "10.70.0.1", 8090)
    net.sh(NFT, "flush", "ruleset")
    assert net.nft_elements() == []
    assert "hello" not in nc(net, "10.70.0.1", 8090, tries=3)
    assert "2 packets received" in spoofed_ping()  # no guard now
    for _ in range(2):  # (masquerade: both containers have NAT)
        r = nrt.run("network", "reload", check=True)
        assert r.stdout == "network rl: 2 port(s) guarded, NAT of 2 container(s) restored\n", r
        assert sorted(json.dumps(e, sort_keys=True) for e in net.nft_elements()) == before
        assert net.sh(NFT, "list", "chain", "bridge", "brig", "guard").stdout == guard_rules
        assert "hello" in nc(net, "10.70.0.1", 8090)
    assert "0 packets received" in spoofed_ping()  # the guard is back
    # a flush of one chain, the table left standing: its rules come back too
    net.sh(NFT, "flush", "chain", "ip", "brig", "output")  # (the host side connects from here)
    assert "hello" not in nc(net, "10.70.0.1", 8090, tries=3)
    nrt.run("network", "reload", check=True)
    assert "hello" in nc(net, "10.70.0.1", 8090)
    assert sorted(json.dumps(e, sort_keys=True) for e in net.nft_elements()) == before
    for cid in (a, b):
        nrt.run("delete", "-f", cid, check=True)
    net.assert_clean(nrt)


def test_ipv6(nrt, net, make_bundle):
    net.define("six", bridge="brsix0", subnet="10.67.0.0/24", subnet6="fd00:67::/64")
    a = start(nrt, net_bundle(make_bundle, network="six", ports="8081:80" if NFT else None))
    b = start(nrt, net_bundle(make_bundle, network="six", args=["sleep", "60"]))
    ip6 = ip_of(nrt, a, "ip6")
    assert ip6.startswith("fd00:67::")
    # host -> container and container -> container over IPv6
    assert "hello" in nc(net, ip6)
    if NFT:  # the published port answers on the gateway's IPv6 address too
        assert "hello" in nc(net, "fd00:67::1", 8081)
    r = nrt.run("exec", b, "sh", "-c", f"nc -w 3 {ip6} 80", check=True)
    assert "hello" in r.stdout
    r = nrt.run("exec", b, "cat", "/proc/net/ipv6_route", check=True)
    assert any(l.split()[0] == "0" * 32 and l.split()[-1] == "eth0" for l in r.stdout.splitlines())
    for cid in (a, b):
        nrt.run("delete", cid, "-f", check=True)
    net.assert_clean(nrt)


@need_nft
def test_spoofing_is_dropped_at_the_bridge_port(nrt, net, make_bundle):
    """A container with CAP_NET_ADMIN and CAP_NET_RAW can give itself another
    address or MAC; the bridge drops what it sends from them (nft `bridge
    brig`: its port may send only its own MAC, ARP, IPv4 and IPv6 addresses),
    while its own traffic flows."""
    net.define("guard", bridge="brgd0", subnet="10.68.0.0/24", subnet6="fd00:68::/64")
    a = start(nrt, net_bundle(make_bundle, network="guard"))
    b = start(nrt, net_bundle(make_bundle, network="guard", args=["sleep", "60"],
                              caps=["CAP_NET_ADMIN", "CAP_NET_RAW"]))
    ipa, ipa6 = ip_of(nrt, a), ip_of(nrt, a, "ip6")
    owner = str(Path(nrt.root).resolve() / b)
    h = f"{fnv1a(owner):08x}"
    mac = "52:54:" + ":".join(h[i:i + 2] for i in range(0, 8, 2))

    def sh(script, check=None):
        return nrt.run("exec", b, "sh", "-c", script, timeout=30, check=check)

    assert sh("cat /sys/class/net/eth0/address").stdout.strip() == mac

    def link_local(m):  # EUI-64, the kernel's default: what the guard allows
        b = [int(x, 16) for x in m.split(":")]
        b = [b[0] ^ 2, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]]
        return "fe80::" + ":".join(f"{b[i] << 8 | b[i + 1]:x}" for i in range(0, 8, 2))
    assert f"{link_local(mac)}/64" in sh("ip -6 addr show dev eth0").stdout
    owner_a = str(Path(nrt.root).resolve() / a)
    ha = f"{fnv1a(owner_a):08x}"
    lla = link_local("52:54:" + ":".join(ha[i:i + 2] for i in range(0, 8, 2)))
    # neighbour discovery and traffic between link-local addresses work
    assert "1 packets received" in sh(f"ping -c 1 -W 3 -I eth0 {lla}").stdout
    els = json.dumps(net.nft_elements("bridge"))
    assert mac in els and ip_of(nrt, b) in els and ip_of(nrt, b, "ip6") in els
    # its own addresses: TCP over IPv4 and IPv6, ICMP
    assert "hello" in sh(f"nc -w 3 {ipa} 80").stdout
    assert "hello" in sh(f"nc -w 3 {ipa6} 80").stdout
    assert "1 packets received" in sh(f"ping -c 1 -W 3 {ipa}").stdout
    # an address of its own choosing: nothing gets through (TCP, ICMP, IPv6)
    # (busybox ip has no nodad: the IPv6 address is usable once its DAD is done)
    sh("ip addr add 10.68.0.200/24 dev eth0 && ip -6 addr add fd00:68::200/64 dev eth0 && sleep 3", check=True)
    assert "tentative" not in sh("ip -6 addr show dev eth0").stdout
    # (ping -I picks the source: busybox nc cannot)
    assert "1 packets received" in sh(f"ping -c 1 -W 3 -I {ip_of(nrt, b)} {ipa}").stdout
    assert "1 packets received" in sh(f"ping -c 1 -W 3 -I {ip_of(nrt, b, 'ip6')} {ipa6}").stdout
    assert "0 packets received" in sh(f"ping -c 2 -W 2 -I 10.68.0.200 {ipa}").stdout
    assert "0 packets received" in sh(f"ping -c 2 -W 2 -I fd00:68::200 {ipa6}").stdout
    sh("ip addr del 10.68.0.200/24 dev eth0 && ip -6 addr del fd00:68::200/64 dev eth0", check=True)
    # another MAC: nothing gets through either (its ARP is dropped first)
    sh("ip link set eth0 address 52:54:de:ad:be:ef && ip neigh flush dev eth0", check=True)
    assert "hello" not in sh(f"nc -w 3 {ipa} 80").stdout
    # its own MAC back: it works again
    sh(f"ip link set eth0 address {mac} && ip neigh flush dev eth0", check=True)
    assert "hello" in sh(f"nc -w 3 {ipa} 80").stdout
    for cid in (a, b):
        nrt.run("delete", "-f", cid, check=True)
    net.assert_clean(nrt)


def test_twenty_parallel_creates_get_distinct_addresses(nrt, net, make_bundle):
    bundles = [net_bundle(make_bundle, args=["sleep", "60"]) for _ in range(20)]
    results = [None] * 20

    def go(i):
        results[i] = nrt.run("create", "--bundle", bundles[i], bundles[i].id, timeout=60)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, str(r)
    ips = {ip_of(nrt, b.id) for b in bundles}
    assert len(ips) == 20
    assert len(net.leases()) == 20 and len(net.veths()) == 20
    for b in bundles:
        nrt.run("delete", b.id, check=True)
    net.assert_clean(nrt)


def test_many_cycles_leave_nothing(nrt, net, make_bundle):
    n = int(os.environ.get("BRIG_NET_CYCLES", "200"))
    b = net_bundle(make_bundle, args=["true"])
    t0 = time.monotonic()
    for i in range(n):
        # run = create + start + wait + delete: setup and teardown each time
        r = nrt.run("run", "--bundle", b, b.id)
        assert r.returncode == 0, str(r)
    print(f"{n} network run cycles in {time.monotonic() - t0:.1f} s")
    net.assert_clean(nrt)


def test_failed_creates_roll_back(nrt, net, make_bundle):
    # init fails after the network was set up (no such executable)
    b = net_bundle(make_bundle, args=["/nonexistent"])
    r = nrt.run("create", "--bundle", b, b.id, check=False)
    assert "/nonexistent" in r.stderr
    net.assert_clean(nrt)
    # an unknown network: refused before anything is made
    b2 = net_bundle(make_bundle, network="nope")
    r = nrt.run("create", "--bundle", b2, b2.id, check=False)
    assert r.error.startswith("network \"nope\" not found") or "network \"nope\" not found" in r.error
    # the veth name is taken: the netlink error names the operation and device
    b3 = net_bundle(make_bundle)
    dev = f"vb{fnv1a(os.path.join(nrt.root, b3.id)):08x}"
    net.sh("ip", "link", "add", dev, "type", "bridge")  # (no dummy module on every kernel)
    r = nrt.run("create", "--bundle", b3, b3.id, check=False)
    assert f"netlink: add veth {dev}: file exists" in r.error
    net.sh("ip", "link", "del", dev)
    assert not (Path(nrt.root) / b3.id).exists()
    net.assert_clean(nrt)


@pytest.mark.parametrize("ports", [None, "8080:80"])
def test_no_nft_fails_create_with_one_error_and_leaves_nothing(nrt, net, make_bundle, ports):
    """Without nft the guard (and a published port) cannot be made: create
    fails with that one error, and the rollback, which finds no table to
    clean up, adds no warning of its own."""
    b = net_bundle(make_bundle, args=["true"], ports=ports)
    r = nrt.run("create", "--bundle", b, b.id, env={"BRIG_NFT": "/nonexistent/nft"})
    assert r.returncode == 1, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r
    assert "exec /nonexistent/nft: no such file or directory" in lines[0], r
    assert not (Path(nrt.root) / b.id).exists()
    net.assert_clean(nrt)


def test_kill9_mid_setup_then_delete_force(nrt, net, make_bundle, tmp_path):
    flag = tmp_path / "in-hook"
    # createRuntime runs after the network is wired: kill brig while it waits there.
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"touch {flag}; exec sleep 3"]}
    b = net_bundle(make_bundle, args=["sleep", "60"],
                   fn=lambda cfg: cfg.setdefault("hooks", {}).update(createRuntime=[hook]))
    p = nrt.popen("create", "--bundle", b, b.id)
    assert wait_for(flag.exists, 20)
    assert len(net.veths()) == 1 and len(net.leases()) == 1
    p.kill()
    p.wait(10)
    # init notices its parent went away; its netns (and the veth) go with it
    assert wait_for(lambda: net.veths() == [], 10)
    nrt.run("delete", "--force", b.id, check=True)
    net.assert_clean(nrt)
    wait_for(lambda: not any(str(flag) in Path(f"/proc/{d}/cmdline").read_text(errors="ignore")
                             for d in os.listdir("/proc") if d.isdigit() and os.path.exists(f"/proc/{d}/cmdline")),
             6)


def test_dead_leases_are_reclaimed(nrt, net, make_bundle):
    net.define("tiny", bridge="brtiny0", subnet="10.68.0.0/29")  # room for 5
    ports = (lambda p: p) if NFT else (lambda p: None)
    bs = [net_bundle(make_bundle, network="tiny", args=["sleep", "60"], ports=ports(f"{7000 + i}:80"))
          for i in range(6)]
    for b in bs[:5]:
        nrt.run("create", "--bundle", b, b.id, check=True)
    r = nrt.run("create", "--bundle", bs[5], bs[5].id, check=False)
    assert "no free address left in 10.68.0.0/29" in r.error
    # a container whose init died (kill -9) frees its address for the next one
    victim = nrt.state(bs[0].id)["pid"]
    os.kill(victim, 9)
    wait_for(lambda: nrt.status(bs[0].id) == "stopped", 10)
    nrt.run("create", "--bundle", bs[5], bs[5].id, check=True)
    assert ip_of(nrt, bs[5].id) == ip_of(nrt, bs[0].id)
    if NFT:
        # the dead one's published port went with its lease; deleting it later
        # leaves the new holder's port alone
        els = json.dumps(net.nft_elements())
        assert "7000" not in els and "7005" in els
        nrt.run("delete", "-f", bs[0].id, check=True)
        assert "7005" in json.dumps(net.nft_elements())
    for b in bs:
        nrt.run("delete", "-f", b.id, check=True)
    net.assert_clean(nrt)


def test_netns_path_is_never_touched(nrt, net, make_bundle):
    other = f"brigt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", other], check=True, timeout=15)
    try:
        b = net_bundle(make_bundle, args=["sleep", "60"],
                       fn=lambda cfg: cfg["linux"]["namespaces"].__setitem__(
                           slice(None), [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
                           + [{"type": "network", "path": f"/run/netns/{other}"}]))
        nrt.run("run", "-d", "--bundle", b, b.id, check=True)
        assert not (Path(nrt.root) / b.id / "network.json").exists()
        assert net.links() == ["lo"]
        links = subprocess.run(["ip", "-n", other, "-o", "link"], capture_output=True, text=True).stdout
        assert len(links.splitlines()) == 1 and "lo" in links
        nrt.run("delete", "-f", b.id, check=True)
    finally:
        subprocess.run(["ip", "netns", "del", other], timeout=15)
    assert net.leases() == []


def test_net_devices(nrt, net, make_bundle):
    dev = f"dm{uuid.uuid4().hex[:6]}"
    # one end of a veth pair stands in for a host NIC (no dummy module on every kernel)
    net.sh("ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p")
    net.sh("ip", "addr", "add", "192.0.2.5/24", "dev", dev)
    net.sh("ip", "addr", "add", "2001:db8::5/64", "dev", dev, "nodad")
    b = make_bundle()
    b.config(args=["sleep", "60"], fn=lambda cfg: cfg["linux"].update(netDevices={dev: {"name": "net0"}}))
    nrt.run("run", "-d", "--bundle", b, b.id, check=True)
    assert dev not in net.links()
    r = nrt.run("exec", b.id, "/bin/busybox", "ip", "addr", "show", "net0", check=True)
    assert "192.0.2.5/24" in r.stdout and "2001:db8::5/64" in r.stdout
    assert "UP" in r.stdout
    # a name taken inside is an error, and nothing is left of the create
    b2 = make_bundle()
    b2.config(args=["true"], fn=lambda cfg: cfg["linux"].update(netDevices={"nosuchdev0": {}}))
    r = nrt.run("create", "--bundle", b2, b2.id, check=False)
    assert "linux.netDevices: device nosuchdev0 not found" in r.error
    # Per the spec the device is not moved back: a virtual one dies with the netns.
    nrt.run("delete", "-f", b.id, check=True)
    assert wait_for(lambda: dev + "p" not in net.links(), 5)


def test_network_commands(nrt, net, make_bundle):
    net.define("lab", bridge="brlab0", subnet="10.69.0.0/24", subnet6="fd00:69::/64", mtu=1400)
    r = nrt.run("network", "ls", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "BRIDGE", "SUBNET", "SUBNET6", "GATEWAY", "CONTAINERS"]
    assert lines[1].split() == ["brig", "brig0", "10.87.0.0/16", "-", "10.87.0.1", "0"]
    assert lines[2].split() == ["lab", "brlab0", "10.69.0.0/24", "fd00:69::/64", "10.69.0.1", "0"]
    assert nrt.run("network", "ls", "-q", check=True).stdout == "brig\nlab\n"
    a = start(nrt, net_bundle(make_bundle, network="lab"))
    j = json.loads(nrt.run("network", "inspect", "lab", check=True).stdout)
    assert j[0]["bridge"] == "brlab0" and j[0]["mtu"] == 1400 and j[0]["bridgeExists"]
    assert j[0]["leases"][0]["ip"] == record(nrt, a)["ip"]
    assert j[0]["leases"][0]["alive"]
    assert "mtu 1400" in net.sh("ip", "link", "show", "brlab0").stdout
    # prune keeps what is in use
    nrt.run("network", "prune", check=True)
    assert "brlab0" in net.links()
    nrt.run("delete", "-f", a, check=True)
    r = nrt.run("network", "prune", check=True)
    assert "bridge brlab0" in r.stdout
    assert "brlab0" not in net.links()
    r = nrt.run("network", "inspect", "nope", check=False)
    assert r.error.startswith("network \"nope\" not found")
    for args in (["network", "--help"], ["network", "ls", "--help"], ["network", "prune", "-h"]):
        assert "USAGE" in nrt.run(*args, check=True).stdout
    r = nrt.run("network", "frob", check=False)
    assert r.error == "unknown network command \"frob\""
    net.assert_clean(nrt)


# ---- fault injection in network setup/teardown (issue #10) -------------------------

def _fault_steps():
    from test_faults import ALL_STEPS
    return ALL_STEPS


@pytest.mark.skipif(not _fault_steps(), reason="brig built without -DBRIG_FAULT_INJECTION=ON")
def test_brig_network_brings_lo_up_with_eth0(nrt, net, make_bundle):
    """The network's set-up brings lo up with eth0: the parent's separate lo
    step (create.before-lo-up) is not reached, so failing it changes nothing."""
    b = net_bundle(make_bundle, args=["cat", "/sys/class/net/lo/flags"])
    res = nrt.run("run", "--bundle", b, b.id, env={"BRIG_FAULT": "create.before-lo-up:fail"})
    assert res.returncode == 0, res
    assert int(res.stdout.strip(), 16) & 0x1, res


def _network_steps():
    return [s for s in _fault_steps() if s.startswith("network.")]


NET_STEPS = _network_steps()


@pytest.mark.skipif(not NET_STEPS, reason="brig built without -DBRIG_FAULT_INJECTION=ON")
@pytest.mark.parametrize("action", ["kill", "fail"])
@pytest.mark.parametrize("step", NET_STEPS or ["none"])
def test_network_fault_at_every_step(nrt, net, make_bundle, tmp_path, step, action):
    """brig dies (SIGKILL) or fails at each network step of create or delete;
    `state` stays truthful, and `delete --force` then leaves no veth, lease,
    nft element, route, network record, state dir, cgroup, process or mount."""
    from test_faults import _traces
    if step == "network.after-nft" and NFT is None:
        pytest.skip("needs nft")
    ports = "8090:80" if NFT else None
    devs = {}
    if step == "network.after-device-move":
        dev = f"dm{uuid.uuid4().hex[:6]}"
        net.sh("ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p")
        devs = {dev: {"name": "net0"}}
    b = net_bundle(make_bundle, args=["sleep", "100"], ports=ports,
                   fn=lambda cfg: cfg["linux"].update(netDevices=devs) if devs else None)
    if step.startswith("network.teardown-"):
        nrt.run("run", "-d", "--bundle", b, b.id, check=True)
        assert len(net.veths()) == 1 and len(net.leases()) == 1
        cmd = ("delete", "--force", b.id)
    else:
        cmd = ("create", "--bundle", b, b.id)
    res = nrt.run(*cmd, env={"BRIG_FAULT": f"{step}:{action}"}, timeout=60)
    if action == "kill":
        assert res.returncode == -9, res
    else:
        assert res.returncode == 1, res
        assert res.error.endswith(f"fault injected at {step}"), res
        if cmd[0] == "create":
            # a failed create undoes itself, network included
            assert wait_for(lambda: not net.leftovers() and not _traces(nrt, b.id, tmp_path), 10), \
                (net.leftovers(), _traces(nrt, b.id, tmp_path))
    st = nrt.run("state", b.id)
    if st.returncode == 0:
        s = json.loads(st.stdout)
        assert s["status"] != "creating", st
        if s["status"] in ("created", "running"):
            assert s["pid"] > 0 and os.path.exists(f"/proc/{s['pid']}"), st
    else:
        assert st.error == "container does not exist", st
    nrt.run("delete", "--force", b.id, check=True)

    def clean():
        return not net.leftovers() and not _traces(nrt, b.id, tmp_path) and \
            not list(Path(nrt.root).glob("*/network.json")) and \
            (not devs or dev + "p" not in net.links())
    assert wait_for(clean, 10), (net.leftovers(), _traces(nrt, b.id, tmp_path))
    net.assert_clean(nrt)


def test_state_dir_not_utf8_is_refused_before_anything_is_made(nrt, net, make_bundle, tmp_path):
    """A network's records and lease name the container by its state dir, in
    JSON, which holds only UTF-8: with such a --root, brig aborted on the JSON
    writer's exception after init was cloned, leaving its state and cgroups."""
    b = net_bundle(make_bundle, args=["true"])
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/state-\xff")
    kept, nrt.root = nrt.root, bad
    try:
        r = nrt.run("create", "--bundle", b, b.id)
    finally:
        nrt.root = kept
    assert r.returncode == 1, r
    shown = bad.replace("\udcff", "\ufffd")
    assert r.error.endswith(f"network: the state directory {shown}/{b.id} is not valid UTF-8"), r
    assert not os.path.lexists(os.path.join(bad, b.id))
    net.assert_clean(nrt)
