"""The pure part of joining: parse flags, flatten kubeconfigs, build the Cluster and Secret.

Everything here is deterministic and unit-tested; :mod:`kosmos.ops.join` does the I/O in an
order that checks everything before it creates anything.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from kosmos.api import manifests as build
from kosmos.api import names
from kosmos.api.cluster import (
    Cluster,
    ClusterLinkOptions,
    ClusterSpec,
    ClusterTreeOptions,
    LeafModel,
    NodeSelector,
    SecretRef,
)
from kosmos.api.schema import is_dns1123_label, manifest
from kosmos.ops.manifests import MANAGED_BY

SECRET_PREFIX = "kosmos-kubeconfig-"

#: What Kosmos must be allowed to do in a member: (group, resource, verb).
REQUIRED_RIGHTS: tuple[tuple[str, str, str], ...] = (
    ("", "nodes", "list"),
    ("", "nodes", "watch"),
    ("", "namespaces", "create"),
    ("", "pods", "create"),
    ("", "pods", "delete"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "configmaps", "create"),
    ("", "secrets", "create"),
    ("", "serviceaccounts", "create"),
    ("", "persistentvolumeclaims", "create"),
    # Multi-cluster services: the MCS CRDs are created in the member when missing, imports,
    # derived Services and EndpointSlices written there, exports and namespaces watched.
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("multicluster.x-k8s.io", "serviceimports", "create"),
    ("multicluster.x-k8s.io", "serviceexports", "watch"),
    ("", "services", "create"),
    ("discovery.k8s.io", "endpointslices", "create"),
    ("", "namespaces", "watch"),
)


#: What ``--enable-link`` also needs in the member: the agents' namespace, kubeconfig Secret
#: and DaemonSet are server-side applied (create + patch) and removed again by unjoin.
LINK_RIGHTS: tuple[tuple[str, str, str], ...] = (
    ("", "namespaces", "delete"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
    ("apps", "daemonsets", "create"),
    ("apps", "daemonsets", "patch"),
    ("apps", "daemonsets", "delete"),
)


def required_rights(enable_link: bool) -> tuple[tuple[str, str, str], ...]:
    return REQUIRED_RIGHTS + (LINK_RIGHTS if enable_link else ())


class MembershipError(ValueError):
    """A flag or a kubeconfig that cannot make a valid join; the message says which."""


@dataclass(frozen=True)
class JoinOptions:
    name: str
    namespace: str = names.SYSTEM_NAMESPACE
    cni: str = "calico"
    default_nic: str = "*"
    network_type: Literal["p2p", "gateway"] = "p2p"
    direct_routing: bool = False
    ip_family: Literal["all", "ipv4", "ipv6"] = "all"
    enable_link: bool = True
    enable_tree: bool = True
    leaf_model: str = "whole"
    node_elastic_ips: str = ""
    cluster_pod_cidrs: str = ""
    use_external_apiserver: bool = False
    image_repository: str | None = None
    #: the host apiserver as the member's nodes reach it (the agents' kubeconfig);
    #: None: the address this kosmosctl uses
    link_apiserver: str | None = None
    #: The agents' image tag (``--version``); None: this kosmosctl's release tag.
    version: str | None = None
    #: kosmos-coredns (clusterset.local) in the member when ClusterTree is enabled.
    mcs_dns: bool = True
    #: Kosmos runs in-cluster: with ClusterTree, the member gets its endpoint prober and
    #: kosmos-coredns (False: the local environment's components are processes, kwok pods fake)
    in_cluster: bool = True
    #: Where the member's Kosmos pods run (``--node-selector``) and what they tolerate.
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[dict[str, str], ...] = ()
    #: Annotations of the member's Kosmos pod templates (a change rolls the pods).
    pod_annotations: tuple[tuple[str, str], ...] = ()
    #: The member's Kosmos components' ``--log-format`` (agents, endpoint prober, zone
    #: writer), as install's is the host's; text adds no flag.
    log_format: Literal["text", "json"] = "text"

    def placement(self) -> dict[str, Any]:
        """What the member's Kosmos pods get to land where the options say."""
        out: dict[str, Any] = {}
        if self.node_selector:
            out["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            out["tolerations"] = [dict(t) for t in self.tolerations]
        return out


def secret_name(cluster: str) -> str:
    return SECRET_PREFIX + cluster


def check_name(name: str) -> None:
    if not is_dns1123_label(name):
        raise MembershipError(
            f"--name {name!r}: must be a DNS label (lower-case letters, digits, '-', max 63)"
        )


def parse_leaf_model(value: str) -> list[LeafModel] | None:
    """``whole`` (one leaf node), ``one-to-one`` (marker: per member node) or ``selector=...``."""
    if value == "whole":
        return None
    if value == "one-to-one":
        return []  # filled with the member's nodes by the caller
    if value.startswith("selector="):
        labels = _pairs(value.removeprefix("selector="), "--leaf-model selector")
        return [LeafModel(node_selector=NodeSelector(label_selector={"matchLabels": labels}))]
    raise MembershipError(
        f"--leaf-model {value!r}: use whole, one-to-one or selector=<key=value,...>"
    )


def _pairs(text: str, flag: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MembershipError(f"{flag}: {item!r} is not key=value")
        out[key] = value
    if not out:
        raise MembershipError(f"{flag}: needs at least one key=value")
    return out


def parse_elastic_ips(text: str) -> dict[str, str]:
    if not text:
        return {}
    pairs = _pairs(text, "--node-elastic-ip")
    for node, ip in pairs.items():
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise MembershipError(f"--node-elastic-ip {node}={ip}: not an IP address") from None
    return pairs


def leaf_models_one_to_one(nodes: list[str]) -> list[LeafModel]:
    return [
        LeafModel(
            leaf_node_name=node,
            taints=[dict(names.TAINT_LEAF)],
            node_selector=NodeSelector(node_name=node),
        )
        for node in nodes
    ]


def cluster_object(options: JoinOptions, leaf_models: list[LeafModel] | None) -> Any:
    """The Cluster for the host, credentials by reference to the join Secret."""
    pod_cidrs = [c.strip() for c in options.cluster_pod_cidrs.split(",") if c.strip()]
    link = ClusterLinkOptions(
        enable=options.enable_link,
        cni=options.cni,
        default_nic_name=options.default_nic,
        network_type=options.network_type,
        direct_routing=options.direct_routing,
        ip_family=options.ip_family,
        use_external_apiserver=options.use_external_apiserver,
    )
    elastic_ips = parse_elastic_ips(options.node_elastic_ips)
    if elastic_ips:
        link.node_elastic_ip_map = elastic_ips
    if pod_cidrs:
        link.cluster_pod_cidrs = pod_cidrs
    tree = ClusterTreeOptions(enable=options.enable_tree)
    if leaf_models:
        tree.leaf_models = leaf_models
    spec = ClusterSpec(
        kubeconfig_secret_ref=SecretRef(name=secret_name(options.name)),
        namespace=options.namespace,
        cluster_link_options=link,
        cluster_tree_options=tree,
    )
    if options.image_repository:
        spec.image_repository = options.image_repository
    return manifest(Cluster, options.name, spec=spec)


def secret_object(cluster: str, kubeconfig: str) -> dict[str, Any]:
    """The member's credentials in the host, where the Cluster's kubeconfigSecretRef points."""
    labels = {names.LABEL_CLUSTER: cluster, "app.kubernetes.io/managed-by": MANAGED_BY}
    return build.secret(
        build.metadata(secret_name(cluster), labels, names.SYSTEM_NAMESPACE),
        secret_type="Opaque",
        data={names.KUBECONFIG_SECRET_KEY: base64.b64encode(kubeconfig.encode()).decode()},
    )


def flatten_kubeconfig(path: Path, context: str | None) -> str:
    """One context, its cluster and user, with every file reference inlined.

    The result is stored in the host and used from inside a pod, where the joiner's local
    files do not exist.
    """
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise MembershipError(f"--kubeconfig {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise MembershipError(f"--kubeconfig {path}: not valid YAML{where}: {problem}") from exc
    if not isinstance(config, dict):
        raise MembershipError(f"--kubeconfig {path}: not a kubeconfig")
    wanted = context or config.get("current-context")
    ctx = _named(config, "contexts", wanted, path, "context")["context"]
    cluster = _named(config, "clusters", ctx.get("cluster"), path, "cluster")
    user = _named(config, "users", ctx.get("user"), path, "user")
    base = path.parent
    for section, fields in (
        (cluster["cluster"], ("certificate-authority",)),
        (user["user"], ("client-certificate", "client-key")),
    ):
        for name in fields:
            if name in section:
                data = (base / section.pop(name)).expanduser().read_bytes()
                section[name + "-data"] = base64.b64encode(data).decode()
    flat = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [user],
        "contexts": [{"name": wanted, "context": {**ctx}}],
        "current-context": wanted,
    }
    return yaml.safe_dump(flat, sort_keys=True)


def _named(
    config: dict[str, Any], section: str, name: object, path: Path, what: str
) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    known = ", ".join(str(e.get("name")) for e in config.get(section) or []) or "none"
    raise MembershipError(f"--kubeconfig {path}: no {what} {name!r} (has: {known})")


def same_credentials(a: str, b: str) -> bool:
    """Two flattened kubeconfigs reach the same cluster as the same user."""
    return _identity(a) == _identity(b)


def _identity(text: str) -> tuple[Any, ...]:
    config = yaml.safe_load(text)
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    return (cluster.get("server"), sorted(user.items()))
