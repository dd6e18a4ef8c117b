"""The node-agent of every real node: its credentials, its command line, the cluster's Secret.

Per cluster, next to kwokctl's pki (``<cluster pki>/node-agent/``), made once and kept across
``up``: the agents' CA (``ca.crt``, ``ca.key``), the bearer token, and the operator's client
pair (``operator.crt``/``.key``, CN ``kosmos-kubenest-operator``). Per node, in its ``etc/``:
a serving certificate signed by that CA naming the node's address and name, and copies of the
CA (the agent checks client certificates against it) and of the token, so a node directory
is complete. The Secret ``kube-system/kosmos-node-agent`` hands the operator the CA, its
pair and the token; the CA's key never leaves its file.

The agent runs in the node's network namespace (it listens on the node's address) and cgroups,
but in the machine's mount namespace: it starts kubelet, kube-proxy and flanneld through the
same wrapper ``up`` uses, whose ``nsenter`` needs the host's view of the namespace pins (the
node's own mount namespace drops them and has its own ``/run``).
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from kosmos.api import manifests, nodeagent
from kosmos.api.kubeconfig import b64
from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes import pki
from kosmos.local.nodes.launch import Command
from kosmos.local.nodes.layout import NodeDirs, put
from kosmos.local.nodes.plan import RealNodePlan

NAME = "node-agent"
CA_NAME = "kosmos-node-agent-ca"
OPERATOR_NAME = "kosmos-kubenest-operator"
FIELD_MANAGER = "kosmos-local"


def authority_dir(cluster_pki: Path) -> Path:
    return cluster_pki / NAME


@dataclass(frozen=True)
class AgentFiles:
    """A node's copies of what its agent reads (host paths under the node's ``etc/``)."""

    cert: Path
    key: Path
    client_ca: Path
    token: Path

    @classmethod
    def of(cls, dirs: NodeDirs) -> AgentFiles:
        etc = dirs.etc
        return cls(
            etc / f"{NAME}.crt", etc / f"{NAME}.key", etc / f"{NAME}-ca.crt", etc / f"{NAME}.token"
        )


def ensure_authority(cluster_pki: Path) -> Path:
    """The cluster's agents' CA, token and operator pair (made once); their directory."""
    directory = authority_dir(cluster_pki)
    made = pki.create_authority(directory, CA_NAME)
    token = directory / "token"
    if made or not _text(token):
        put(token, secrets.token_urlsafe(32))
    _ensure_pair(directory, directory / "operator.crt", directory / "operator.key", OPERATOR_NAME)
    return directory


def ensure_node(cluster_pki: Path, dirs: NodeDirs, node: RealNodePlan) -> bool:
    """The node's serving certificate and copies of the CA and token; True if any changed
    (the running agent keeps what it read at its start, so it is restarted)."""
    directory = ensure_authority(cluster_pki)
    files = AgentFiles.of(dirs)
    changed = put(files.client_ca, _text(directory / "ca.crt"), 0o644)
    changed = put(files.token, _text(directory / "token")) or changed
    sans = [node.address, node.name]
    return _ensure_pair(directory, files.cert, files.key, node.name, sans) or changed


def command(dirs: NodeDirs, node: RealNodePlan) -> Command:
    """``python -m kosmos.launcher node-agent ...`` with the local backend on ``dirs``."""
    files = AgentFiles.of(dirs)
    argv = (
        *(sys.executable, "-m", "kosmos.launcher", NAME),
        *("--listen", f"{node.address}:{nodeagent.PORT}"),
        *("--tls-cert", str(files.cert), "--tls-key", str(files.key)),
        *("--client-ca", str(files.client_ca), "--token-file", str(files.token)),
        *("--backend", "local", "--node-dir", str(dirs.base)),
    )
    return Command(NAME, argv)


def enter(netns: str) -> list[str]:
    """The argv prefix that runs the agent in the node's network namespace only."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--"]


def secret(cluster_pki: Path) -> dict[str, Any]:
    """``kube-system/kosmos-node-agent``: the agents' CA, the operator's pair, the token."""
    directory = ensure_authority(cluster_pki)
    files = {
        nodeagent.SECRET_CA: "ca.crt",
        nodeagent.SECRET_CERT: "operator.crt",
        nodeagent.SECRET_KEY: "operator.key",
        nodeagent.SECRET_TOKEN: "token",
    }
    data = {key: b64((directory / name).read_bytes()) for key, name in files.items()}
    meta = manifests.metadata(nodeagent.SECRET_NAME, namespace=nodeagent.SECRET_NAMESPACE)
    return manifests.secret(meta, data=data)


def ensure_secret(kubectl: Kubectl, cluster_pki: Path) -> None:
    """Apply the Secret in the cluster of ``kubectl`` (``kube-system`` always exists)."""
    body = {"apiVersion": "v1", "kind": "List", "items": [secret(cluster_pki)]}
    kubectl.run(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        stdin=json.dumps(body),
    )


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _ensure_pair(
    directory: Path, cert: Path, key: Path, common_name: str, sans: list[str] | None = None
) -> bool:
    """Issue ``cert``/``key`` unless the present pair is this CA's, not near expiry and
    names ``sans``; True if issued."""
    ca_pem = (directory / "ca.crt").read_bytes()
    current = _text(cert).encode()
    if current and _text(key) and pki.still_valid(current, ca_pem) and _sans(current) == sans:
        return False
    cert_pem, key_pem = pki.issue(directory, common_name, server_sans=sans or ())
    put(key, key_pem.decode())
    put(cert, cert_pem.decode(), 0o644)
    return True


def _sans(cert_pem: bytes) -> list[str] | None:
    """The subject alternative names of a certificate (None when it has none)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    return [str(name.value) for name in ext.value]
