"""A cluster's network for its real nodes, the relay to its apiserver, flannel's ConfigMap.

Every cluster with real nodes gets a bridge in a namespace of its own, joined by the host
(:mod:`kosmos.net.wiring`); the networks made are recorded in ``nodes/networks.json`` so
``down`` removes them even without the environment's options. The relay
(:mod:`kosmos.local.nodes.relay`) listens on each network's host address.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes import configs
from kosmos.local.nodes.layout import root
from kosmos.local.nodes.plan import BRIDGE, HOST_PEER, NetworkPlan, RealNodePlan
from kosmos.net import wiring

FLANNEL_CONFIGMAP = "kube-flannel-cfg"
FLANNEL_NAMESPACE = "kube-system"


def bridge(net: NetworkPlan) -> wiring.Bridge:
    return wiring.Bridge(
        net.netns, BRIDGE, net.host_link, HOST_PEER, f"{net.host_address}/{net.prefix}"
    )


def bridge_of(node: RealNodePlan) -> wiring.Bridge:
    return bridge(node.network)


def _record() -> dict[str, NetworkPlan]:
    try:
        raw = json.loads((root() / "networks.json").read_text())
        return {name: NetworkPlan(**body) for name, body in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}


def _save(networks: dict[str, NetworkPlan]) -> None:
    root().mkdir(parents=True, exist_ok=True)
    body = {name: asdict(net) for name, net in sorted(networks.items())}
    (root() / "networks.json").write_text(json.dumps(body, indent=2))


def ensure(net: NetworkPlan) -> None:
    networks = _record()
    if net.netns not in networks:  # recorded first: a half-made network is still removed
        networks[net.netns] = net
        _save(networks)
    wiring.ensure_bridge(bridge(net))


def recorded() -> list[NetworkPlan]:
    return list(_record().values())


def remove(net: NetworkPlan) -> None:
    wiring.remove_bridge(bridge(net))
    networks = _record()
    networks.pop(net.netns, None)
    if networks:
        _save(networks)
    else:
        (root() / "networks.json").unlink(missing_ok=True)


def relay_route(net: NetworkPlan) -> str:
    """The relay's route for a network: its host address to the loopback apiserver."""
    port = net.apiserver_port
    return f"{net.host_address}:{port}=127.0.0.1:{port}"


def flannel_configmap(pod_cidr: str) -> dict[str, object]:
    """The ConfigMap a flannel installation keeps its ``net-conf.json`` in: ClusterLink's
    CIDR discovery reads it (any namespace, this name), and it says what every flanneld of
    the cluster reads from its own copy."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": FLANNEL_CONFIGMAP,
            "namespace": FLANNEL_NAMESPACE,
            "labels": {"app": "flannel", "tier": "node"},
        },
        "data": {"net-conf.json": configs.dump_json(configs.flannel_net_conf(pod_cidr))},
    }


def ensure_flannel_config(kubectl: Kubectl, pod_cidr: str) -> None:
    body = json.dumps(flannel_configmap(pod_cidr))
    kubectl.run("apply", "--server-side", "--field-manager=kosmos-local", "-f", "-", stdin=body)
