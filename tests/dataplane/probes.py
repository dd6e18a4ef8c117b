"""What the dataplane tests measure a testbed with: traffic, captures and namespace state.

Everything takes namespace names (``Topology.node_ns``/``pod_ns``), so it serves the
ClusterLink testbeds and the tunnel tests alike; ``bench/network.py`` uses :func:`iperf3`.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.dataplane.testbed import ip, processes, run


def received(ns: str, address: str, count: int) -> int:
    """How many of ``count`` pings, 0.2 s apart, were answered (no resending)."""
    argv = ["ping", "-c", str(count), "-i", "0.2", "-W", "1", address]
    out = run("ip", "netns", "exec", ns, *argv, check=False)
    match = re.search(r"(\d+) received", out)
    return int(match.group(1)) if match else 0


_ONE_SHOT_ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(10)
print("ready", flush=True)
c, _ = s.accept(); c.sendall(c.recv(64)[::-1]); c.close()
"""


def tcp_echo(client_ns: str, server_ns: str, server_ip: str, port: int = 7777) -> bytes:
    """Open a TCP connection from one pod to another; returns the reversed echo."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-c", _ONE_SHOT_ECHO, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = (
            "import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])),"
            " timeout=5); c.sendall(b'kosmos'); sys.stdout.write(c.recv(64).decode())"
        )
        argv = (sys.executable, "-c", client, server_ip, str(port))
        return run("ip", "netns", "exec", client_ns, *argv).encode()
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
    client = ["iperf3", "-c", server_ip, "-p", "5211", "-t", str(seconds), "-J"]
    try:
        for _ in range(50):
            out = subprocess.run(
                ["ip", "netns", "exec", client_ns, *client],
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
    """tcpdump on the interfaces of a namespace, counted afterwards with BPF filters.

    ``interface`` "any" sees every packet on every device it crosses; a bridge device with
    ``promiscuous=False`` sees only what is routed through it, not what it switches.
    """

    def __init__(
        self, ns: str, file: Path, *, interface: str = "any", promiscuous: bool = True
    ) -> None:
        self.file = file
        argv = ["tcpdump", "-Z", "root", "-i", interface, "-nn", "-U", "-w", str(file)]
        if not promiscuous:
            argv.insert(1, "-p")
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
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

    def lines(self, bpf: str = "") -> list[str]:
        return run("tcpdump", "-nn", "-r", str(self.file), *([bpf] if bpf else [])).splitlines()

    def count(self, bpf: str) -> int:
        return len(self.lines(bpf))


def is_ike_or_esp(line: str) -> bool:
    """A ``tcpdump -nn`` line of an IPsec tunnel: ESP, NAT-T (UDP 4500) or IKE (UDP 500)."""
    return "ESP" in line or ".4500" in line or ".500 " in line or ".500:" in line


class ContinuousPing:
    """``ping -D`` at 20 packets/s from a pod; the longest silence between replies is the gap."""

    def __init__(self, ns: str, dst: str, interval: float = 0.05) -> None:
        self.interval = interval
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "ping", "-D", "-n", "-i", str(interval), "-W", "1", dst],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def stop(self) -> list[float]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return [
            float(line[1 : line.index("]")])
            for line in out.splitlines()
            if line.startswith("[") and "bytes from" in line
        ]

    def gap(self, replies: list[float]) -> float:
        """The longest time without a reply, minus the send interval (0 when none was lost)."""
        if len(replies) < 2:
            return float("inf")
        return max(0.0, max(b - a for a, b in itertools.pairwise(replies)) - self.interval)


def snapshot(ns: str) -> dict[str, str]:
    """What a tunnel backend may change in a node namespace, to compare before and after."""
    return {
        "links": " ".join(sorted(link["ifname"] for link in json.loads(ip(ns, "-j", "link")))),
        "rules4": ip(ns, "-4", "rule"),
        "rules6": ip(ns, "-6", "rule"),
        "routes4": ip(ns, "-4", "route", "show", "table", "all"),
        "routes6": ip(ns, "-6", "route", "show", "table", "all"),
        "xfrm": ip(ns, "xfrm", "policy") + ip(ns, "xfrm", "state"),
        "processes": " ".join(map(str, processes(ns))),
    }


def command_lines(namespaces: list[str]) -> list[bytes]:
    """The command line of every process in these namespaces (keys must not be on one)."""
    return [Path(f"/proc/{pid}/cmdline").read_bytes() for ns in namespaces for pid in processes(ns)]
