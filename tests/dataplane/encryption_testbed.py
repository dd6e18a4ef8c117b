"""Two nodes behind 1:1 NAT with a pod each, and the tools the encryption tests measure with.

Layout (every name starts with a unique ``ke-<hex>-`` prefix)::

    pod-a 10.11.1.10                                              pod-b  10.12.1.10
        |                                                         pod-b2 10.12.2.10
    node-a 192.168.10.11 --- router (1:1 NAT, forwards EIPs) --- node-b 192.168.20.11
        EIP 203.0.113.11                                          EIP 203.0.113.21

The router forwards only flows addressed to an elastic IP (DNAT) and their replies, so the
nodes reach each other through the EIPs only, as on a cloud. ``bench/network.py`` can reuse
:func:`iperf3` and :func:`handbuilt_strongswan` (the "hand-built strongSwan" baseline: charon
from a hand-written swanctl.conf) on its own testbed, or :func:`build` and :func:`destroy`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kosmos.net.tunnels import TunnelSpec

CHARON = "/usr/lib/ipsec/charon"


@dataclass(frozen=True)
class Node:
    ns: str
    address: str  # private underlay address
    eip: str  # elastic IP the router maps 1:1 onto it
    pods: tuple[tuple[str, str, str], ...]  # (pod namespace, pod IP, pod subnet)

    @property
    def subnets(self) -> tuple[str, ...]:
        return tuple(subnet for _, _, subnet in self.pods)


@dataclass(frozen=True)
class Testbed:
    prefix: str
    router: str
    a: Node
    b: Node

    @property
    def namespaces(self) -> list[str]:
        pods = [pod for node in (self.a, self.b) for pod, _, _ in node.pods]
        return [self.router, self.a.ns, self.b.ns, *pods]


def spec(me: Node, peer: Node, psk: bytes, **changes: object) -> TunnelSpec:
    """The tunnel from ``me`` to ``peer`` as the agent would build it (ids = elastic IPs)."""
    fields: dict[str, object] = {
        "name": f"to-{peer.ns.rsplit('-', 1)[-1]}",
        "local_address": me.address,
        "remote_address": peer.eip,
        "local_subnets": me.subnets[:1],
        "remote_subnets": peer.subnets[:1],
        "psk": psk,
        "local_id": me.eip,
        "remote_id": peer.eip,
    }
    fields.update(changes)
    return TunnelSpec(**fields)


def run(ns: str | None, *argv: str, check: bool = True, timeout: float = 30) -> str:
    full = [*(["ip", "netns", "exec", ns] if ns else []), *argv]
    out = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"`{' '.join(full)}` failed: {out.stdout}{out.stderr}")
    return out.stdout


def build(prefix: str | None = None) -> Testbed:
    """Create the namespaces, links, NAT and routes; :func:`destroy` undoes it all."""
    prefix = prefix or f"ke-{uuid.uuid4().hex[:6]}-"
    tb = Testbed(
        prefix,
        f"{prefix}r",
        Node(
            f"{prefix}a",
            "192.168.10.11",
            "203.0.113.11",
            ((f"{prefix}pa", "10.11.1.10", "10.11.1.0/24"),),
        ),
        Node(
            f"{prefix}b",
            "192.168.20.11",
            "203.0.113.21",
            (
                (f"{prefix}pb", "10.12.1.10", "10.12.1.0/24"),
                (f"{prefix}pb2", "10.12.2.10", "10.12.2.0/24"),
            ),
        ),
    )
    try:
        _wire(tb)
    except BaseException:
        destroy(tb)
        raise
    return tb


def _wire(tb: Testbed) -> None:
    for ns in tb.namespaces:
        run(None, "ip", "netns", "add", ns)
        run(None, "ip", "-n", ns, "link", "set", "lo", "up")
        # No duplicate address detection: link-local addresses (and their local routes) are
        # there at once, so a snapshot taken now equals one taken seconds later.
        run(ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    r = tb.router
    run(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for link, node, gateway in (("ra", tb.a, "192.168.10.1"), ("rb", tb.b, "192.168.20.1")):
        _veth(r, link, f"{gateway}/24", node.ns, "ul0", f"{node.address}/24")
        run(None, "ip", "-n", node.ns, "route", "add", "default", "via", gateway)
        run(
            r,
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            node.eip,
            "-j",
            "DNAT",
            "--to-destination",
            node.address,
        )
        run(
            r,
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            node.address,
            "-j",
            "SNAT",
            "--to-source",
            node.eip,
        )
        run(node.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for index, (pod, pod_ip, subnet) in enumerate(node.pods):
            gw = subnet.replace(".0/24", ".1")
            _veth(node.ns, f"pod{index}", f"{gw}/24", pod, "eth0", f"{pod_ip}/24")
            run(None, "ip", "-n", pod, "route", "add", "default", "via", gw)
    run(r, "iptables", "-P", "FORWARD", "DROP")
    run(r, "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
    run(
        r,
        "iptables",
        "-A",
        "FORWARD",
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    )


def _veth(ns1: str, dev1: str, addr1: str, ns2: str, dev2: str, addr2: str) -> None:
    run(
        None,
        "ip",
        "link",
        "add",
        dev1,
        "netns",
        ns1,
        "type",
        "veth",
        "peer",
        "name",
        dev2,
        "netns",
        ns2,
    )
    for ns, dev, addr in ((ns1, dev1, addr1), (ns2, dev2, addr2)):
        run(None, "ip", "-n", ns, "addr", "add", addr, "dev", dev)
        run(None, "ip", "-n", ns, "link", "set", dev, "up")


def processes(ns: str) -> list[int]:
    out = run(None, "ip", "netns", "pids", ns, check=False)
    return [int(pid) for pid in out.split()]


def destroy(tb: Testbed) -> None:
    """Kill every process still inside the testbed (by pid), then delete its namespaces."""
    for ns in tb.namespaces:
        for pid in processes(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for ns in tb.namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def snapshot(ns: str) -> dict[str, str]:
    """What a backend may change in a node namespace, to compare before and after."""
    return {
        "links": " ".join(
            sorted(link["ifname"] for link in json.loads(run(None, "ip", "-n", ns, "-j", "link")))
        ),
        "rules4": run(None, "ip", "-n", ns, "-4", "rule"),
        "rules6": run(None, "ip", "-n", ns, "-6", "rule"),
        "routes4": run(None, "ip", "-n", ns, "-4", "route", "show", "table", "all"),
        "routes6": run(None, "ip", "-n", ns, "-6", "route", "show", "table", "all"),
        "xfrm": run(None, "ip", "-n", ns, "xfrm", "policy")
        + run(None, "ip", "-n", ns, "xfrm", "state"),
        "processes": " ".join(map(str, processes(ns))),
    }


def ping(ns: str, address: str, count: int = 2, deadline: int = 5) -> bool:
    """``count`` echo replies within ``deadline`` s (pings are resent until then)."""
    argv = ["ping", "-c", str(count), "-i", "0.2", "-W", "1", "-w", str(deadline), address]
    out = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, check=False)
    return out.returncode == 0


def received(ns: str, address: str, count: int) -> int:
    """How many of ``count`` pings, 0.2 s apart, were answered (no resending)."""
    argv = ["ping", "-c", str(count), "-i", "0.2", "-W", "1", address]
    out = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False
    )
    match = re.search(r"(\d+) received", out.stdout)
    return int(match.group(1)) if match else 0


def add_ipv6(tb: Testbed) -> tuple[tuple[str, str], tuple[str, str]]:
    """Dual stack for the first pod of each node: (pod IPv6, pod /64) for a and for b."""
    found = []
    for node, prefix in ((tb.a, "fd11:1::"), (tb.b, "fd12:1::")):
        pod = node.pods[0][0]
        run(node.ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        run(None, "ip", "-n", node.ns, "addr", "add", f"{prefix}1/64", "dev", "pod0", "nodad")
        run(None, "ip", "-n", pod, "addr", "add", f"{prefix}10/64", "dev", "eth0", "nodad")
        run(None, "ip", "-n", pod, "route", "add", "default", "via", f"{prefix}1")
        found.append((f"{prefix}10", f"{prefix}/64"))
    return found[0], found[1]


_ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(10)
print("ready", flush=True)
c, _ = s.accept(); c.sendall(c.recv(64)[::-1]); c.close()
"""


def tcp_echo(client_ns: str, server_ns: str, server_ip: str, port: int = 7777) -> bytes:
    """Open a TCP connection from one pod to another; returns the reversed echo."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-c", _ECHO_SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = (
            "import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])),"
            " timeout=5); c.sendall(b'kosmos'); sys.stdout.write(c.recv(64).decode())"
        )
        return run(client_ns, sys.executable, "-c", client, server_ip, str(port)).encode()
    finally:
        server.kill()
        server.wait()


def iperf3(client_ns: str, server_ns: str, server_ip: str, seconds: float = 2) -> float:
    """TCP throughput from one pod to another in Mbit/s (iperf3, one stream)."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", "5211"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            out = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    client_ns,
                    "iperf3",
                    "-c",
                    server_ip,
                    "-p",
                    "5211",
                    "-t",
                    str(seconds),
                    "-J",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            result = json.loads(out.stdout or "{}")
            if out.returncode == 0 and "sum_received" in result.get("end", {}):
                return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6
            if "connect" not in result.get("error", "connect"):
                raise AssertionError(f"iperf3: {result['error']}")
            time.sleep(0.1)  # the server was not listening yet
        raise AssertionError(f"iperf3 failed: {out.stdout[-500:]}{out.stderr}")
    finally:
        server.kill()
        server.wait()


class Capture:
    """tcpdump on every interface of a namespace, counted afterwards with BPF filters."""

    def __init__(self, ns: str, directory: Path) -> None:
        self.file = directory / f"{ns}.pcap"
        self._process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-Z",
                "root",
                "-i",
                "any",
                "-nn",
                "-U",
                "-w",
                str(self.file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stderr is not None
        lines = [self._process.stderr.readline()]
        while lines[-1] and "listening" not in lines[-1]:  # printed once it captures
            lines.append(self._process.stderr.readline())
        assert "listening" in lines[-1], lines

    def stop(self) -> None:
        self._process.send_signal(signal.SIGINT)
        self._process.wait(timeout=10)

    def count(self, bpf: str) -> int:
        out = subprocess.run(
            ["tcpdump", "-nn", "-r", str(self.file), bpf],
            capture_output=True,
            text=True,
            check=True,
        )
        return len(out.stdout.splitlines())


_HAND_CONF = """charon {{
    load_modular = no
    load = random nonce openssl kdf kernel-libipsec kernel-netlink socket-default vici
    filelog {{ hand {{
        path = {dir}/charon.log
        default = 1
    }} }}
    plugins {{ vici {{ socket = unix://{dir}/charon.vici }} }}
}}
"""
_HAND_SWANCTL = """connections {{
    baseline {{
        version = 2
        local_addrs = {local_address}
        remote_addrs = {remote_address}
        proposals = aes256gcm16-prfsha256-ecp256
        local {{
            auth = psk
            id = {local_id}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{
            baseline {{
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = aes256gcm16-ecp256
                start_action = {start_action}
            }}
        }}
    }}
}}
secrets {{
    ike-baseline {{
        id-1 = {local_id}
        id-2 = {remote_id}
        secret = 0x{secret}
    }}
}}
"""


@contextlib.contextmanager
def handbuilt_strongswan(
    initiator: Node, responder: Node, psk: bytes, work: Path
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """The baseline: one charon per node from hand-written configs, loaded with swanctl.

    Same proposals, NAT handling and libipsec as ``kosmos.net.ipsec``, between the first pod
    subnets of the two nodes (any layout: build a :class:`Node` for each end). Yields the two
    charon processes once the CHILD SA is up; kills them on exit.
    """
    work = Path(tempfile.mkdtemp(prefix="hand-", dir=work))
    charons: list[subprocess.Popen[bytes]] = []
    try:
        for me, peer in ((responder, initiator), (initiator, responder)):  # responder first
            directory = work / me.ns
            uri = f"unix://{directory}/charon.vici"
            charons.append(_handbuilt_charon(me, peer, psk, directory, me is initiator))
            _until(lambda d=directory: (d / "charon.vici").exists(), "charon's vici socket")
            run(
                None,
                "swanctl",
                "--load-all",
                "--noprompt",
                "--file",
                str(directory / "swanctl.conf"),
                "--uri",
                uri,
            )
        _until(lambda: "INSTALLED" in run(None, "swanctl", "--list-sas", "--uri", uri), "CHILD SA")
        yield charons[1], charons[0]
    finally:
        for charon in charons:
            charon.terminate()
        for charon in charons:
            try:
                charon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                charon.kill()
                charon.wait()


def _handbuilt_charon(
    me: Node, peer: Node, psk: bytes, directory: Path, initiator: bool
) -> subprocess.Popen[bytes]:
    (directory / "run").mkdir(parents=True)
    (directory / "strongswan.conf").write_text(_HAND_CONF.format(dir=directory))
    (directory / "swanctl.conf").write_text(
        _HAND_SWANCTL.format(
            local_address=me.address,
            remote_address=peer.eip,
            local_id=me.eip,
            remote_id=peer.eip,
            local_ts=me.subnets[0],
            remote_ts=peer.subnets[0],
            start_action="start" if initiator else "none",
            secret=psk.hex(),
        )
    )
    env = {**os.environ, "STRONGSWAN_CONF": str(directory / "strongswan.conf")}
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            me.ns,
            "unshare",
            "--mount",
            "--",
            "sh",
            "-c",
            'mount --bind "$0" /run && exec "$1"',
            str(directory / "run"),
            CHARON,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def command_lines(namespaces: list[str]) -> list[bytes]:
    """The command line of every process in these namespaces (keys must not be on one)."""
    return [Path(f"/proc/{pid}/cmdline").read_bytes() for ns in namespaces for pid in processes(ns)]


def _until(condition: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
