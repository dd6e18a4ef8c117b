"""The objects an import makes in one cluster, as pure data: derived Service and EndpointSlices.

Names are hashes, never ``<svc>-<cluster>``: a Service name is one DNS label (63 characters)
whatever the exported name's length. The derived Service is the mcs-api reference
controller's (``derived-`` + 10 base32hex characters of sha256("<ns>/<name>")); each
EndpointSlice is one (source cluster, address family, chunk of at most 100 endpoints), named
``<derived>-<8 hex of sha256(cluster id)>-<4|6>[-<n>]``. Slices carry
``kubernetes.io/service-name=<derived>`` so kube-proxy programs the derived Service and
never mixes remote endpoints into the local Service of the same name.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kosmos.api import names
from kosmos.api.link import seen
from kosmos.api.objects import Obj, labels_of
from kosmos.mcs.planner import ImportSpec

DERIVED_PREFIX = "derived-"
#: endpoints per slice, as the EndpointSlice controller's default maximum
MAX_ENDPOINTS = 100
#: on derived Services: the import they serve (``<ns>/<name>``)
ANNOTATION_SERVICE_IMPORT = "kosmos.io/service-import"
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGED_BY_KOSMOS}


def derived_name(namespace: str, name: str) -> str:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return DERIVED_PREFIX + base64.b32hexencode(digest).decode().lower().rstrip("=")[:10]


def cluster_hash(cluster: str) -> str:
    return hashlib.sha256(cluster.encode()).hexdigest()[:8]


def slice_name(derived: str, cluster: str, family: int, index: int) -> str:
    base = f"{derived}-{cluster_hash(cluster)}-{family}"
    return f"{base}-{index}" if index else base


def derived_service(namespace: str, name: str, ports: list[Obj], spec: ImportSpec) -> Obj:
    """The selector-less Service kube-proxy programs from the MCS slices."""
    body: Obj = {
        # empty names and appProtocols are left out: the apiserver omits them, and a body
        # that always differs from what is stored would be re-applied on every pass
        "ports": [
            {
                k: v
                for k, v in port.items()
                if k in {"name", "protocol", "port", "appProtocol"} and v not in ("", None)
            }
            for port in ports
        ],
        "sessionAffinity": spec.session_affinity,
    }
    if spec.type == "Headless":
        body["clusterIP"] = "None"
    else:
        body["type"] = "ClusterIP"
        body["ipFamilies"] = list(spec.ip_families)
        body["ipFamilyPolicy"] = "PreferDualStack" if len(spec.ip_families) > 1 else "SingleStack"
    if spec.session_affinity_config:
        body["sessionAffinityConfig"] = spec.session_affinity_config
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": derived_name(namespace, name),
            "namespace": namespace,
            "labels": dict(MANAGED),
            "annotations": {ANNOTATION_SERVICE_IMPORT: f"{namespace}/{name}"},
        },
        "spec": body,
    }


# -- endpoints ---------------------------------------------------------------------------------

#: (source cluster, endpoint) -> the addresses the importing cluster reaches it at
Translate = Callable[[str, Obj], list[str]]


def global_translator(
    importer: str,
    global_maps: Mapping[str, Mapping[str, str]],
    owner_of_node: Callable[[str, str], str | None],
) -> Translate:
    """Endpoint addresses as ``importer`` reaches them.

    The cluster owning a pod IP is the source cluster, or for a host endpoint on a leaf node
    the member behind that node (``owner_of_node(source, nodeName)``). When the owner maps
    the address's CIDR in its ClusterLink ``globalCIDRsMap`` and is not the importer, the
    address becomes its global one (``kosmos.api.link.seen``, ClusterLink's rule).
    """

    def translate(source: str, endpoint: Obj) -> list[str]:
        node = endpoint.get("nodeName") or ""
        owner = (owner_of_node(source, node) if node else None) or source
        mapping = global_maps.get(owner) or {}
        out = []
        for address in endpoint.get("addresses") or []:
            if owner == importer or not mapping:
                out.append(address)
                continue
            try:
                host = ipaddress.ip_network(address)
            except ValueError:
                out.append(address)
                continue
            out.append(str(seen(host, mapping).network_address))
        return out

    return translate


@dataclass(frozen=True)
class Source:
    """One exporting cluster's EndpointSlices of the service, and the port names it exports."""

    cluster: str
    slices: list[Obj]
    #: source Service port name -> import port name (ports not here are not carried)
    port_names: Mapping[str, str]


def candidate_addresses(sources: Iterable[Source], translate: Translate) -> list[str]:
    """Every ready endpoint address as the importing cluster reaches it (sorted, unique)."""
    found: set[str] = set()
    for source in sources:
        for item in source.slices:
            for endpoint in _ready(item):
                found.update(translate(source.cluster, endpoint))
    return sorted(found, key=_ip_sort)


def endpoint_slices(
    namespace: str,
    import_name: str,
    sources: Iterable[Source],
    translate: Translate,
    disconnected: frozenset[str] = frozenset(),
) -> list[Obj]:
    """The importing cluster's slices: ready endpoints only, ``disconnected`` addresses out."""
    derived = derived_name(namespace, import_name)
    out: list[Obj] = []
    for source in sorted(sources, key=lambda s: s.cluster):
        groups: dict[tuple[int, tuple[tuple[str, str, int, str], ...]], list[Obj]] = {}
        taken: set[tuple[str, ...]] = set()
        for item in source.slices:
            family = 6 if item.get("addressType") == "IPv6" else 4
            if item.get("addressType") not in {"IPv4", "IPv6"}:
                continue  # FQDN slices have no address kube-proxy can program
            ports = _ports(item, source.port_names)
            if not ports:
                continue
            for endpoint in _ready(item):
                addresses = [
                    a for a in translate(source.cluster, endpoint) if a not in disconnected
                ]
                if not addresses or tuple(addresses) in taken:
                    continue
                taken.add(tuple(addresses))
                groups.setdefault((family, ports), []).append(_endpoint(endpoint, addresses))
        index = dict.fromkeys((4, 6), 0)
        for (family, ports), endpoints in sorted(groups.items()):
            endpoints.sort(key=lambda e: _ip_sort(e["addresses"][0]))
            for start in range(0, len(endpoints), MAX_ENDPOINTS):
                name = slice_name(derived, source.cluster, family, index[family])
                index[family] += 1
                chunk = endpoints[start : start + MAX_ENDPOINTS]
                out.append(
                    _slice(
                        namespace, name, import_name, derived, source.cluster, family, ports, chunk
                    )
                )
    return out


def _ready(item: Obj) -> list[Obj]:
    return [
        e
        for e in item.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") is not False and e.get("addresses")
    ]


def _ports(item: Obj, port_names: Mapping[str, str]) -> tuple[tuple[str, str, int, str], ...]:
    out = []
    for port in item.get("ports") or []:
        name = str(port.get("name") or "")
        number = port.get("port")
        if name not in port_names or not isinstance(number, int):
            continue
        out.append(
            (
                port_names[name],
                str(port.get("protocol") or "TCP"),
                number,
                str(port.get("appProtocol") or ""),
            )
        )
    return tuple(sorted(out))


def _endpoint(endpoint: Obj, addresses: list[str]) -> Obj:
    conditions = endpoint.get("conditions") or {}
    out: Obj = {
        "addresses": addresses,
        "conditions": {
            "ready": True,
            "serving": conditions.get("serving", True) is not False,
            "terminating": bool(conditions.get("terminating", False)),
        },
    }
    if endpoint.get("hostname"):
        out["hostname"] = endpoint["hostname"]
    if endpoint.get("zone"):
        out["zone"] = endpoint["zone"]
    return out


def _slice(  # noqa: PLR0917 - one slice's coordinates
    namespace: str,
    name: str,
    import_name: str,
    derived: str,
    cluster: str,
    family: int,
    ports: tuple[tuple[str, str, int, str], ...],
    endpoints: list[Obj],
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": slice_labels(import_name, derived, cluster),
        },
        "addressType": f"IPv{family}",
        "endpoints": endpoints,
        "ports": [
            {
                "name": port_name,
                "protocol": protocol,
                "port": number,
                **({"appProtocol": app} if app else {}),
            }
            for port_name, protocol, number, app in ports
        ],
    }


def slice_labels(import_name: str, derived: str, cluster: str) -> dict[str, str]:
    return {
        names.LABEL_MCS_SERVICE_NAME: import_name,
        names.LABEL_MCS_SOURCE_CLUSTER: cluster,
        names.LABEL_SLICE_MANAGED_BY: names.MCS_CONTROLLER,
        names.LABEL_SLICE_SERVICE_NAME: derived,
    }


def is_mcs_slice(item: Obj) -> bool:
    return labels_of(item).get(names.LABEL_SLICE_MANAGED_BY) == names.MCS_CONTROLLER


def _ip_sort(address: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)
