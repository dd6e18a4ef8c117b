"""Ports of local tenants: each component of each tenant gets its own from the operator's
``--port-range``, recorded in the tenant's ``ports.json``.

A port is never given to two tenants: allocation reads every tenant's ``ports.json`` under
the state directory while holding ``<state dir>/.ports.lock``, so two tenants reconciled at
once do not pick the same ports, and skips ports something else on the machine already
listens on. A tenant keeps its ports across operator restarts (its kubeconfig names the
apiserver's).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PORTS_FILE = "ports.json"
LOCK_FILE = ".ports.lock"


class PortsExhausted(RuntimeError):
    """Not enough free ports in the range; the message says how many are wanted and taken."""


def read_ports(tenant_dir: Path) -> dict[str, int]:
    """The tenant's recorded ports; empty when none (or the file is unreadable)."""
    try:
        data = json.loads((tenant_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


def taken_ports(state_dir: Path, but: Path | None = None) -> set[int]:
    """Ports recorded by every tenant under ``state_dir`` except ``but``."""
    taken: set[int] = set()
    if not state_dir.is_dir():
        return taken
    for tenant in state_dir.iterdir():
        if tenant.is_dir() and tenant != but:
            taken.update(read_ports(tenant).values())
    return taken


def bindable(port: int, hosts: Sequence[str] = ("127.0.0.1",)) -> bool:
    """Nothing listens on ``port`` at ``hosts`` (we can bind it, briefly)."""
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def choose(
    components: Sequence[str],
    port_range: tuple[int, int],
    taken: set[int],
    free: Callable[[int], bool] | None = None,
) -> dict[str, int]:
    """The lowest ports of ``port_range`` (inclusive) not in ``taken`` and accepted by
    ``free`` (a ``port -> bool``; default: :func:`bindable` on loopback), one per component."""
    check = free or bindable
    chosen: dict[str, int] = {}
    candidates = iter(range(port_range[0], port_range[1] + 1))
    for component in components:
        for port in candidates:
            if port not in taken and check(port):
                chosen[component] = port
                break
        else:
            low, high = port_range
            raise PortsExhausted(
                f"port range {low}-{high} has no free port left for {component}: "
                f"{len(components)} wanted per tenant, {len(taken)} held by other tenants"
            )
    return chosen


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def allocate(
    state_dir: Path,
    tenant_dir: Path,
    components: Sequence[str],
    port_range: tuple[int, int],
    hosts: Sequence[str] = ("127.0.0.1",),
) -> dict[str, int]:
    """The tenant's ports: the recorded ones if they cover ``components``, else fresh ones
    written to ``ports.json`` (the tenant directory is created)."""
    with _locked(state_dir):
        current = read_ports(tenant_dir)
        if all(component in current for component in components):
            return current
        taken = taken_ports(state_dir, but=tenant_dir) | set(current.values())
        missing = [c for c in components if c not in current]
        fresh = choose(missing, port_range, taken, lambda port: bindable(port, hosts))
        ports = {**current, **fresh}
        tenant_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (tenant_dir / PORTS_FILE).write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
        return ports
