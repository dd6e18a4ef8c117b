"""The node-agent's wire format: the few fixed operations the kubenest operator asks a node.

A node that kubenest lends to a tenant must point its kubelet (and kube-proxy) at another
apiserver and later back; only a process on the node can do that. The agent that does it
is reachable over the network, so it does as little as possible: three operations, each
with a fixed effect, no command or path taken from the request. Every request carries the
bearer token of the ``kube-system/kosmos-node-agent`` Secret over TLS whose client certificate is
signed by the agents' CA (the same Secret's ``ca.crt``); the agent's serving certificate is
signed by that CA too, so each side checks the other.

* ``GET /v1/state`` -> :class:`State`;
* ``POST /v1/join`` with a :class:`Join` body: serve the tenant; -> :class:`State`;
* ``POST /v1/leave``: serve the node's own cluster again; -> :class:`State`.

Errors: 400 (a body :func:`parse_join` refuses), 401 (no or wrong token), 409 (joined to
another tenant: leave first), 500 (the node could not do it); each with ``{"error": "..."}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

#: the port agents listen on, on the node's address
PORT = 10270
SECRET_NAME = "kosmos-node-agent"
#: kube-system, beside the nodes' other credentials: the agents come with the nodes, not
#: with a Kosmos install, so uninstalling Kosmos (its namespace) leaves them reachable
SECRET_NAMESPACE = "kube-system"
#: keys of the Secret: the agents' CA, the operator's client pair, the bearer token
SECRET_CA = "ca.crt"
SECRET_CERT = "tls.crt"
SECRET_KEY = "tls.key"
SECRET_TOKEN = "token"
STATE_PATH = "/v1/state"
JOIN_PATH = "/v1/join"
LEAVE_PATH = "/v1/leave"
#: State.cluster values
OWN_CLUSTER = "own"
TENANT = "tenant"

_PEM = "-----BEGIN"


@dataclass(frozen=True)
class Credentials:
    """A client certificate and its key (PEM), issued by the tenant's CA."""

    certData: str  # noqa: N815 - the wire name
    keyData: str  # noqa: N815


@dataclass(frozen=True)
class Join:
    """What a node needs to serve a tenant: the tenant (``<namespace>/<name>``), its
    apiserver and CA, the kubelet's credentials (``system:node:<node>``), kube-proxy's
    (``system:kube-proxy``), and the tenant's cluster DNS."""

    tenant: str
    server: str
    caData: str  # noqa: N815
    kubelet: Credentials
    proxy: Credentials
    clusterDNS: list[str] = field(default_factory=list)  # noqa: N815
    clusterDomain: str = "cluster.local"  # noqa: N815

    def to_body(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class State:
    """Where the node's kubelet points: its ``own`` cluster or a ``tenant`` (then
    ``tenant`` and ``server`` say which); ``kubelet``: ``running`` or ``stopped``."""

    node: str
    cluster: str = OWN_CLUSTER
    tenant: str = ""
    server: str = ""
    kubelet: str = "running"

    def to_body(self) -> dict[str, Any]:
        return asdict(self)


class BadRequest(ValueError):
    """A request the agent refuses before doing anything; the message says which field."""


class Refused(RuntimeError):
    """The node serves another tenant (409): it leaves that one first."""


class Failed(RuntimeError):
    """The node could not do what was asked (500); the message says which step and why."""


class NodeBackend(Protocol):
    """What the agent drives on its node (the local environment's real nodes implement it
    in ``kosmos.local.nodes.agent``). Blocking calls, one at a time (the server serialises
    them). ``join`` with the tenant already served converges (rewrites what changed, restarts
    only then); with another tenant it raises :class:`Refused`. ``leave`` of a node serving
    its own cluster returns its state unchanged. A step that fails raises :class:`Failed`."""

    def state(self) -> State: ...

    def join(self, join: Join) -> State: ...

    def leave(self) -> State: ...


def parse_join(body: object) -> Join:
    """A :class:`Join` from a request body, or :class:`BadRequest` naming the first bad field."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    tenant = _text(body, "tenant")
    if tenant.count("/") != 1 or not all(tenant.split("/")):
        raise BadRequest(f"tenant must be <namespace>/<name>, got {tenant!r}")
    server = _text(body, "server")
    if not server.startswith("https://"):
        raise BadRequest(f"server must be an https:// URL, got {server!r}")
    dns = body.get("clusterDNS", [])
    if not isinstance(dns, list) or not all(isinstance(d, str) and d for d in dns):
        raise BadRequest("clusterDNS must be a list of addresses")
    domain = body.get("clusterDomain", "cluster.local")
    if not isinstance(domain, str) or not domain:
        raise BadRequest("clusterDomain must be a non-empty string")
    return Join(
        tenant=tenant,
        server=server,
        caData=_pem(body, "caData"),
        kubelet=_credentials(body, "kubelet"),
        proxy=_credentials(body, "proxy"),
        clusterDNS=list(dns),
        clusterDomain=domain,
    )


def parse_state(body: object) -> State:
    """A :class:`State` from a response body (the operator's side)."""
    if not isinstance(body, dict):
        raise BadRequest("the state must be a JSON object")
    known = {k: str(v) for k, v in body.items() if k in State.__dataclass_fields__}
    if not known.get("node"):
        raise BadRequest("the state names no node")
    return State(**known)


def _text(body: dict[str, Any], key: str, where: str = "") -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{where}{key} must be a non-empty string")
    return value.strip()


def _pem(body: dict[str, Any], key: str, where: str = "") -> str:
    value = _text(body, key, where)
    if not value.startswith(_PEM):
        raise BadRequest(f"{where}{key} must be PEM")
    return value


def _credentials(body: dict[str, Any], key: str) -> Credentials:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be an object with certData and keyData")
    where = f"{key}."
    return Credentials(_pem(value, "certData", where), _pem(value, "keyData", where))
