"""Container environment of a member pod: what only the host knows becomes literal values.

References to ConfigMaps and Secrets (``configMapKeyRef``, ``secretKeyRef``, ``envFrom``) stay
references: the cluster-manager copies the referenced objects into the member before it
creates the pod, and the member kubelet resolves them there. Resolving them here into literal
``value``\\ s would write Secret data into the pod spec, readable by anyone who may read pods,
and freeze it against later updates.

What the member cannot know is resolved: the host pod's uid (``metadata.uid``) and the node it
was bound to (``spec.nodeName``, the host leaf node). Every other downward-API field either
holds the same value in the member (name, namespace, labels, annotations, service account)
or is only true there (pod and host IPs), so it stays a reference. Finally the host's Service
links are written out, the way the host kubelet would have, because the member kubelet can
only see member Services.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from kosmos.api.addresses import join_host_port
from kosmos.api.objects import Obj

#: the kubelet always links these from ``default``; in the member the pod's token talks to the
#: member apiserver, so the member's own ``kubernetes`` Service must be the one it sees
MASTER_SERVICES = frozenset({("default", "kubernetes")})

#: downward-API fields whose member value would differ from the host's, resolved to literals
HOST_FIELDS = ("metadata.uid", "spec.nodeName")

_CONTAINER_LISTS = ("initContainers", "containers")


def _env_name(name: str) -> str:
    """The kubelet's ``makeEnvVariableName``."""
    return name.replace("-", "_").upper()


def _linkable(service: Mapping[str, Any], namespace: str) -> bool:
    """The kubelet's filter: a ClusterIP is set (not headless, not ExternalName), in the pod's
    namespace; ``default/kubernetes`` is left to the member (see ``MASTER_SERVICES``)."""
    meta = service.get("metadata") or {}
    service_namespace = meta.get("namespace") or namespace
    if service_namespace != namespace or (service_namespace, meta.get("name")) in MASTER_SERVICES:
        return False
    spec = service.get("spec") or {}
    return spec.get("clusterIP") not in (None, "", "None") and bool(spec.get("ports"))


def service_env(services: Sequence[Mapping[str, Any]], namespace: str) -> list[Obj]:
    """The Service-link variables the kubelet (``envvars.FromServices``) would give a pod in
    ``namespace``, sorted by Service name so that the result is deterministic."""
    linked = [s for s in services if _linkable(s, namespace)]
    env: list[Obj] = []
    for service in sorted(linked, key=lambda s: str(s["metadata"]["name"])):
        env.extend(_service_vars(service))
    return env


def _service_vars(service: Mapping[str, Any]) -> list[Obj]:
    prefix = _env_name(str(service["metadata"]["name"]))
    spec = service["spec"]
    ip = str(spec["clusterIP"])
    ports = spec["ports"]
    env = [
        {"name": f"{prefix}_SERVICE_HOST", "value": ip},
        {"name": f"{prefix}_SERVICE_PORT", "value": str(ports[0]["port"])},
    ]
    env.extend(
        {"name": f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}", "value": str(p["port"])}
        for p in ports
        if p.get("name")
    )
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{join_host_port(ip, port['port'])}"
        if index == 0:  # Docker-link compatibility special-cases the first port
            env.append({"name": f"{prefix}_PORT", "value": url})
        port_prefix = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        env.extend(
            [
                {"name": port_prefix, "value": url},
                {"name": f"{port_prefix}_PROTO", "value": protocol.lower()},
                {"name": f"{port_prefix}_PORT", "value": str(port["port"])},
                {"name": f"{port_prefix}_ADDR", "value": ip},
            ]
        )
    return env


def _resolve(var: Obj, host_values: Mapping[str, str]) -> Obj:
    path = ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if isinstance(path, str) and path in host_values:
        return {"name": var.get("name"), "value": host_values[path]}
    return var


def _container_env(container: Obj, links: list[Obj], host_values: Mapping[str, str]) -> None:
    """Service links go first so that ``$(VAR)`` expansion in the container's own variables
    still finds them; a name the container defines itself wins (as with the kubelet)."""
    env = [_resolve(var, host_values) for var in container.get("env") or []]
    own = {var.get("name") for var in env}
    env = [var for var in links if var["name"] not in own] + env
    if env:
        container["env"] = env
    else:
        container.pop("env", None)


def member_env(
    spec: Obj,
    *,
    pod_uid: str,
    host_node: str,
    services: Sequence[Mapping[str, Any]],
    namespace: str,
) -> Obj:
    """A copy of ``spec`` whose containers and init containers carry the host-only values.

    Unless the pod disabled them, the host's Service links are added and
    ``enableServiceLinks`` is turned off, so the member kubelet does not add member Services
    under the same names (its own ``KUBERNETES_*`` variables it adds regardless).
    """
    spec = copy.deepcopy(spec)
    host_values = dict(zip(HOST_FIELDS, (pod_uid, host_node), strict=True))
    links = service_env(services, namespace) if spec.get("enableServiceLinks") is not False else []
    for key in _CONTAINER_LISTS:
        for container in spec.get(key) or []:
            _container_env(container, links, host_values)
    spec["enableServiceLinks"] = False
    return spec
