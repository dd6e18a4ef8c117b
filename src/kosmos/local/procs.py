"""Find the processes of the local environment and the TCP ports they listen on (Linux /proc).

kwokctl's binary runtime forks detached processes; ``down`` must prove none survive and no port
stays bound. Every process the environment starts has the environment's work directory in its
command line (kubeconfig, data dir, pid file paths), which is how we find them without trusting
pid files that a crash may have left stale.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Process:
    pid: int
    name: str
    cmdline: str


def processes_under(directory: Path) -> list[Process]:
    """Processes whose command line mentions ``directory`` (our own process excluded)."""
    needle = str(directory).rstrip("/") + "/"  # so ~/.kosmos/local never matches local2
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if needle in cmdline and not _is_zombie(entry):
            found.append(Process(int(entry.name), Path(cmdline.split(" ", 1)[0]).name, cmdline))
    return found


def _is_zombie(entry: Path) -> bool:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def listening_ports(pids: list[int] | None = None) -> dict[int, int]:
    """Map listening TCP port -> owning pid (pid 0 if the owner is unknown), v4 and v6.

    With ``pids`` given, only sockets owned by those processes are returned. Without, only
    sockets that would stop the environment from binding 127.0.0.1 count: those on a loopback
    or wildcard address. A listener on another address (the real nodes' apiserver relay
    listens on cluster-network addresses at the apiservers' ports) takes nothing from us.
    """
    inodes: dict[int, int] = {}
    for pid in pids if pids is not None else []:
        fd_dir = PROC / str(pid) / "fd"
        try:
            for fd in fd_dir.iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes[int(target[8:-1])] = pid
        except OSError:
            continue
    ports: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != TCP_LISTEN:
                continue
            address, port_hex = fields[1].rsplit(":", 1)
            port = int(port_hex, 16)
            inode = int(fields[9])
            if pids is None:
                if _local_or_any(address):
                    ports[port] = 0
            elif inode in inodes:
                ports[port] = inodes[inode]
    return ports


def _local_or_any(hex_address: str) -> bool:
    """Whether a /proc/net/tcp{,6} local address is loopback or the wildcard.

    The kernel prints the address as 32-bit words in host (little-endian) byte order.
    """
    raw = b"".join(
        int(hex_address[i : i + 8], 16).to_bytes(4, "little") for i in range(0, len(hex_address), 8)
    )
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def rss_bytes(pids: list[int]) -> int:
    """Sum of resident set sizes, from /proc/<pid>/status VmRSS."""
    total = 0
    for pid in pids:
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def wait_exit(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to exit; return those still alive."""
    deadline = time.monotonic() + timeout
    living = [p for p in pids if alive(p)]
    while living and time.monotonic() < deadline:
        time.sleep(0.1)
        living = [p for p in living if alive(p)]
    return living


def terminate(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    for pid in wait_exit(pids, grace):
        _signal(pid, signal.SIGKILL)
    wait_exit(pids, 5.0)


def wait_ports_free(ports: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``ports`` to stop listening; return those still bound."""
    deadline = time.monotonic() + timeout
    bound = [p for p in ports if p in listening_ports()]
    while bound and time.monotonic() < deadline:
        time.sleep(0.1)
        bound = [p for p in bound if p in listening_ports()]
    return bound


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    entry = PROC / str(pid)
    return entry.exists() and not _is_zombie(entry)
