"""What the operator's flags decide, handed to every kubenest part that needs them.

One frozen dataclass, so the VirtualCluster controllers and the tenant control-plane providers
read the same values the command parsed, and tests build one without click.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROVIDERS = ("local", "in-cluster")
DEFAULT_STATE_DIR = Path("/var/lib/kosmos/kubenest")
DEFAULT_BINARIES_DIR = Path("~/.cache/kosmos/bin")
DEFAULT_PORT_RANGE = (20000, 20999)
DEFAULT_ADVERTISE_ADDRESS = "127.0.0.1"
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"


@dataclass(frozen=True)
class Settings:
    """``provider``: who runs tenant control planes (``local``: processes on this machine);
    ``state_dir``: the local provider's per-tenant directories; ``binaries_dir``: etcd,
    kube-apiserver, kube-controller-manager, kube-scheduler, kwok and coredns;
    ``port_range``: inclusive ports tenants' components may listen on;
    ``advertise_address``: the IP tenants' kubeconfigs and certificates name;
    ``in-cluster`` only: ``node_selector`` (where control-plane pods may run, beyond
    kosmos.kubenest.workloads' placement) and ``image_repository`` (of etcd, kube-apiserver,
    kube-controller-manager, kube-scheduler and kwok, upstream's layout)."""

    provider: str
    state_dir: Path
    binaries_dir: Path
    port_range: tuple[int, int]
    advertise_address: str
    node_selector: tuple[tuple[str, str], ...] = ()
    image_repository: str = DEFAULT_IMAGE_REPOSITORY


def parse_labels(pairs: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``("a=b", "c=")`` -> ``(("a", "b"), ("c", ""))``; ValueError naming a pair without ``=``."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"node selector {pair!r} is not KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def parse_port_range(text: str) -> tuple[int, int]:
    """``"20000-20999"`` -> ``(20000, 20999)``; ValueError naming the problem otherwise."""
    low, sep, high = text.strip().partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise ValueError(f"port range {text!r} is not LOW-HIGH (e.g. 20000-20999)") from None
    if not sep or not 1 <= first <= last <= 65535:
        raise ValueError(f"port range {text!r} must be LOW-HIGH with 1 <= LOW <= HIGH <= 65535")
    return first, last
