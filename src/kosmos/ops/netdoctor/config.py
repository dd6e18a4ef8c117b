"""netdoctor's config.json: the keys of netctl's file, checked before anything is created.

The file keeps netctl's JSON names (``podWaitTime``, ``srcKubeConfig``...) so an existing
config.json works unchanged; a typo in a key or a value is an error naming it, never a
silently ignored setting. ``protocol`` adds ``icmp`` (a ping) to netctl's three: ``udp``
checks UDP for real (a datagram echoed by the floater).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kosmos.api import names, release
from kosmos.ops.errors import OperationError

MODES = ("pod", "node", "node-to-pod", "pod-to-node")
PROTOCOLS = ("tcp", "udp", "dns", "icmp")
DEFAULT_REPOSITORY = "docker.io/kosmos"
DEFAULT_DNS_SERVER = "coredns"
DEFAULT_LOOKUP = "kubernetes.default.svc.cluster.local"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def default_version() -> str:
    """Our release without its ``v`` (netctl writes ``0.3.0``); ``latest`` from a bare tree."""
    tag = release.installed_tag()
    return tag[1:] if tag else "latest"


@dataclass(frozen=True)
class Config:
    """One check's settings; attribute names are the JSON keys in snake case (see ``KEYS``)."""

    namespace: str = names.SYSTEM_NAMESPACE
    version: str = field(default_factory=default_version)
    mode: str = "pod"
    protocol: str = "tcp"
    pod_wait_time: int = 30
    port: int = names.FLOATER_PORT
    max_num: int = 3
    cmd_timeout: int = 10
    src_kubeconfig: str | None = None  # None: the kubeconfig kosmosctl runs with
    src_image_repository: str = DEFAULT_REPOSITORY
    dst_kubeconfig: str | None = None  # None: check within the source cluster
    dst_image_repository: str | None = None  # None: the source's
    auto_clean: bool = False
    target_dns_server: str = DEFAULT_DNS_SERVER
    target_host_to_lookup: str = DEFAULT_LOOKUP

    @property
    def tag(self) -> str:
        """The image tag: ``0.1.0`` and ``v0.1.0`` both mean ``v0.1.0``."""
        return self.version if self.version == "latest" else "v" + self.version.removeprefix("v")

    def image(self, side: str) -> str:
        repository = self.src_image_repository
        if side == "dst" and self.dst_image_repository:
            repository = self.dst_image_repository
        return f"{repository.rstrip('/')}/kosmos:{self.tag}"

    @property
    def two_clusters(self) -> bool:
        return bool(self.dst_kubeconfig)

    def to_json(self) -> dict[str, Any]:
        """netctl's keys; the optional ones only when set (like ``netctl init`` writes)."""
        values = asdict(self)
        out: dict[str, Any] = {}
        for attr, key in KEYS.items():
            value = values[attr]
            if attr in _OPTIONAL and value in (None, getattr(Config(), attr)):
                continue
            out[key] = str(value) if attr == "port" else value
        return out


#: attribute -> JSON key, in netctl's order
KEYS = {
    "namespace": "namespace",
    "version": "version",
    "mode": "mode",
    "protocol": "protocol",
    "pod_wait_time": "podWaitTime",
    "port": "port",
    "max_num": "maxNum",
    "cmd_timeout": "cmdTimeout",
    "src_kubeconfig": "srcKubeConfig",
    "src_image_repository": "srcImageRepository",
    "dst_kubeconfig": "dstKubeConfig",
    "dst_image_repository": "dstImageRepository",
    "auto_clean": "autoClean",
    "target_dns_server": "targetDNSServer",
    "target_host_to_lookup": "targetHostToLookup",
}
_OPTIONAL = frozenset(
    {
        "dst_kubeconfig",
        "dst_image_repository",
        "auto_clean",
        "target_dns_server",
        "target_host_to_lookup",
    }
)
_ATTRS = {key: attr for attr, key in KEYS.items()}


def expand(path: str | None) -> str | None:
    """A kubeconfig path as used: ``~`` expanded (the file keeps it as written)."""
    return str(Path(path).expanduser()) if path else None


def load(path: str | Path) -> Config:
    """Read and check config.json; every problem is an ``OperationError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise OperationError(
            f"{path}: no such file (write one with `kosmosctl netdoctor init`)"
        ) from None
    except OSError as exc:
        raise OperationError(f"{path}: {exc.strerror or exc}") from exc
    return parse(text, str(path))


def parse(text: str, origin: str = "config.json") -> Config:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperationError(f"{origin}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise OperationError(f"{origin}: expected a JSON object of settings")
    unknown = sorted(set(data) - set(_ATTRS))
    if unknown:
        raise OperationError(
            f"{origin}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS.values())})"
        )
    values = {_ATTRS[key]: _check(key, value, origin) for key, value in data.items()}
    return Config(**values)


def _check(key: str, value: Any, origin: str) -> Any:
    where = f"{origin}: {key}"
    attr = _ATTRS[key]
    if attr in {"mode", "protocol"}:
        allowed = MODES if attr == "mode" else PROTOCOLS
        if value not in allowed:
            raise OperationError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
        return value
    if attr == "port":
        return _port(value, where)
    if attr in ("pod_wait_time", "max_num", "cmd_timeout"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OperationError(f"{where}: expected a whole number >= 1, got {value!r}")
        return value
    if attr == "auto_clean":
        if not isinstance(value, bool):
            raise OperationError(f"{where}: expected true or false, got {value!r}")
        return value
    if value is None and attr in ("src_kubeconfig", "dst_kubeconfig", "dst_image_repository"):
        return None
    if not isinstance(value, str) or not value.strip():
        raise OperationError(f"{where}: expected a non-empty string, got {value!r}")
    if attr == "namespace" and not _DNS_LABEL.match(value):
        raise OperationError(f"{where}: {value!r} is not a valid namespace name")
    return value.strip()


def _port(value: Any, where: str) -> int:
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
        raise OperationError(f"{where}: expected a port number 1-65535, got {value!r}")
    return number


def field_names() -> list[str]:
    """The JSON keys, for help texts."""
    return [KEYS[f.name] for f in fields(Config)]


def initial(src_kubeconfig: str) -> Config:
    """What ``init`` writes: the defaults, this kosmosctl's version and kubeconfig."""
    return Config(src_kubeconfig=src_kubeconfig)


def write(config: Config, path: str | Path, *, force: bool = False) -> None:
    path = Path(path)
    if path.exists() and not force:
        raise OperationError(f"{path} exists: not overwritten (--force to replace it)")
    try:
        path.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    except OSError as exc:
        raise OperationError(f"{path}: {exc.strerror or exc}") from exc
