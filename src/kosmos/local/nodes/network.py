"""A cluster's network for its real nodes, the relay to its apiserver, flannel's ConfigMap.

Every cluster with real nodes gets a bridge in a namespace of its own, joined by the host
(:mod:`kosmos.net.wiring`); the networks made are recorded in ``nodes/networks.json`` so
``down`` removes them even without the environment's options. The relay
(:mod:`kosmos.local.nodes.relay`) listens on each network's host address.

The **underlay** joins the cluster networks, as a data centre's routed network joins racks:
a router namespace ``kosmos-<lowest port>-wan`` with a veth into every cluster network's
bridge (holding that network's ``.254``), forwarding on in it alone; every node routes the
other networks' /24s through its own network's ``.254``. Without it a node's only way out is
the host's ``.1``, and the host does not forward (nor may we make it): ClusterLink's tunnels
between nodes of two clusters need this path.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict

from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes import configs, layout
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
        raw = json.loads((layout.root() / "networks.json").read_text())
        return {name: NetworkPlan(**body) for name, body in raw.items()}
    except (OSError, ValueError, TypeError):
        return {}


def _save(networks: dict[str, NetworkPlan]) -> None:
    layout.root().mkdir(parents=True, exist_ok=True)
    body = {name: asdict(net) for name, net in sorted(networks.items())}
    (layout.root() / "networks.json").write_text(json.dumps(body, indent=2))


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
        (layout.root() / "networks.json").unlink(missing_ok=True)


# -- the underlay -----------------------------------------------------------------------------

ROUTER_ADDRESS_INDEX = 254  # nodes are .11 onwards, the host .1
BRIDGE_UPLINK = "wan"  # the router veth's end on each bridge


def router_netns(networks: list[NetworkPlan]) -> str:
    """Named after the environment's lowest apiserver port (its host's, which has real nodes
    whenever any cluster has), so every ``up`` and ``down`` of the environment agrees."""
    return f"kosmos-{min(n.apiserver_port for n in networks)}-wan"


def router_address(net: NetworkPlan) -> str:
    return str(ipaddress.ip_network(net.subnet)[ROUTER_ADDRESS_INDEX])


def uplink(net: NetworkPlan) -> wiring.Uplink:
    address = f"{router_address(net)}/{net.prefix}"
    return wiring.Uplink(bridge(net), f"n{net.apiserver_port}", BRIDGE_UPLINK, address)


def underlay_routes(own: NetworkPlan, networks: list[NetworkPlan]) -> dict[str, str]:
    """A node's routes: every other cluster network through its own network's router port."""
    return {n.subnet: router_address(own) for n in networks if n.subnet != own.subnet}


def ensure_underlay() -> None:
    """The router into every recorded network, and the routes of every node there is."""
    networks = recorded()
    if len(networks) < 2:
        return
    wiring.ensure_router(router_netns(networks), [uplink(n) for n in networks])
    for name in layout.recorded():
        node = layout.load(name)
        if node is not None and wiring.netns_exists(node.netns):
            ensure_node_routes(node)


def ensure_node_routes(node: RealNodePlan) -> None:
    routes = underlay_routes(node.network, recorded())
    if routes:
        wiring.ensure_routes(node.netns, routes)


def remove_underlay(networks: list[NetworkPlan]) -> None:
    """The router (its veths go with it); the networks' ends go with their bridges."""
    if networks:
        wiring.delete_netns(router_netns(networks))


def underlay_problems() -> list[str] | None:
    """What is missing of the underlay (``[]``: complete); None when there is none to have."""
    networks = recorded()
    if len(networks) < 2:
        return None
    router = router_netns(networks)
    up = wiring.router_links(router)
    missing = [f"{router}: link {uplink(n).link}" for n in networks if uplink(n).link not in up]
    for name in layout.recorded():
        node = layout.load(name)
        if node is None or not wiring.netns_exists(node.netns):
            continue
        have = wiring.routes_via(node.netns)
        for dst, via in underlay_routes(node.network, networks).items():
            if have.get(dst) != via:
                missing.append(f"{node.name}: route {dst} via {via}")
    return missing


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
