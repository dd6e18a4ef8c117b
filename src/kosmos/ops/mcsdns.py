"""``kosmos-coredns``: the clusterset.local DNS in every cluster where Kosmos runs ClusterTree.

One Deployment with two containers sharing an emptyDir: ``coredns`` (our CoreDNS image,
``file`` plugin with ``reload``) serves the zone ``zone-writer`` (``kosmos mcs-dns``, our
Kosmos image) renders from the cluster's ServiceImports and MCS EndpointSlices. Its Service
is the address the cluster's own DNS forwards ``clusterset.local`` to: a marked stanza in
``kube-system/coredns``'s Corefile (the kubeadm layout every conformant cluster has), and that
Deployment is restarted so the stanza applies now (its ``reload`` plugin would take up to the
kubelet's ConfigMap sync period, a minute or more). Without that ConfigMap the step warns,
naming the stanza to add by hand, and changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable

from kosmos.api import manifests as build
from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    SERVICEACCOUNTS,
    SERVICES,
    Resource,
)
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound
from kosmos.ops.progress import Progress

Planned = tuple[Resource, Obj]
Labels = Callable[[str], dict[str, str]]

NAME = "kosmos-coredns"
#: The CoreDNS release our image carries (``docker.io/kosmos/coredns:<this>``); the toolchain's
#: tools module (kosmos/local/gotools/coredns) pins the same one, a unit test checks it.
COREDNS_VERSION = "v1.14.2"
ZONE_DIR = "/var/lib/kosmos-coredns"
ZONE_FILE = f"{ZONE_DIR}/{names.MCS_ZONE}.db"
CONFIG_DIR = "/etc/coredns"
CLUSTER_DNS = ("kube-system", "coredns")  # the cluster DNS's ConfigMap and Deployment
BEGIN = "# BEGIN kosmos clusterset.local (managed by kosmosctl)"
END = "# END kosmos clusterset.local"
RESTARTED_AT = "kosmos.io/restartedAt"
#: How often CoreDNS's file plugin looks at the zone: a look with no new SOA serial stops
#: after the SOA line, so a short period costs little and bounds the import -> resolvable
#: latency (with the writer's 100 ms debounce).
RELOAD = "200ms"
RULES: tuple[Obj, ...] = (
    {
        "apiGroups": [names.MCS_GROUP],
        "resources": ["serviceimports"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["list", "watch"],
    },
)


def corefile() -> str:
    """kosmos-coredns's own Corefile: the zone file, looked at every :data:`RELOAD`."""
    zone = names.MCS_ZONE
    return (
        f"{zone}:53 {{\n"
        "    errors\n"
        "    health :8080\n"
        "    ready :8181\n"
        "    prometheus :9153\n"
        f"    file {ZONE_FILE} {zone} {{\n        reload {RELOAD}\n    }}\n"
        "}\n"
    )


def stanza(cluster_ip: str) -> str:
    """What the cluster DNS's Corefile gets: clusterset.local forwarded to kosmos-coredns
    (no cache: the zone's TTLs are short and kosmos-coredns answers from memory)."""
    return f"{BEGIN}\n{names.MCS_ZONE}:53 {{\n    errors\n    forward . {cluster_ip}\n}}\n{END}\n"


def with_stanza(text: str, cluster_ip: str) -> str:
    """``text`` with our stanza (replacing an older one of ours), nothing else changed."""
    return without_stanza(text).rstrip("\n") + "\n" + stanza(cluster_ip)


def without_stanza(text: str) -> str:
    """``text`` without our marked stanza (unchanged when it has none)."""
    start = text.find(BEGIN)
    if start < 0:
        return text
    end = text.find(END, start)
    end = len(text) if end < 0 else end + len(END)
    return (text[:start].rstrip("\n") + "\n" + text[end:].lstrip("\n")).lstrip("\n")


def objects(
    namespace: str,
    image: str,
    coredns_image: str,
    labels: Labels,
    placement: Obj | None = None,
) -> list[Planned]:
    """ServiceAccount, RBAC, Corefile, Deployment and Service of kosmos-coredns."""
    own = labels(NAME)
    subjects = [build.service_account_subject(NAME, namespace)]
    return [
        (SERVICEACCOUNTS, build.service_account(NAME, namespace, own)),
        (CLUSTERROLES, build.cluster_role(NAME, RULES, own)),
        (CLUSTERROLEBINDINGS, build.cluster_role_binding(NAME, NAME, subjects, own)),
        (
            CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": build.metadata(NAME, own, namespace),
                "data": {"Corefile": corefile()},
            },
        ),
        (DEPLOYMENTS, deployment(namespace, image, coredns_image, own, placement or {})),
        (SERVICES, service(namespace, own)),
    ]


def deployment(
    namespace: str, image: str, coredns_image: str, own: dict[str, str], placement: Obj
) -> Obj:
    selector = {"app.kubernetes.io/name": NAME}
    zone = {"name": "zone", "mountPath": ZONE_DIR}
    hardened = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    coredns = {
        "name": "coredns",
        "image": coredns_image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["-conf", f"{CONFIG_DIR}/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
        ],
        "volumeMounts": [zone, {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"memory": "170Mi"}},
        "securityContext": {
            **hardened,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        },
    }
    writer = {
        "name": "zone-writer",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["mcs-dns", "--zone-file", ZONE_FILE],
        "ports": [{"name": "health", "containerPort": 8095, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}},
        "securityContext": {**hardened, "runAsNonRoot": True, "runAsUser": 65532},
        "volumeMounts": [zone, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = {
        "serviceAccountName": NAME,
        "securityContext": {"fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [coredns, writer],
        "volumes": [
            {"name": "zone", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "config", "configMap": {"name": NAME}},
        ],
        **placement,
    }
    return build.deployment(
        build.metadata(NAME, own, namespace),
        selector={**selector, "app.kubernetes.io/part-of": own["app.kubernetes.io/part-of"]},
        pod_labels=own,
        pod_spec=pod,
    )


def service(namespace: str, own: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": build.metadata(NAME, own, namespace),
        "spec": {
            "selector": {
                "app.kubernetes.io/name": NAME,
                "app.kubernetes.io/part-of": own["app.kubernetes.io/part-of"],
            },
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    }


async def wire(client: Client, namespace: str, cluster: str, progress: Progress) -> bool:
    """Add the forwarding stanza to the cluster DNS and restart it; False (warned) if absent."""
    svc = await client.get(SERVICES, NAME, namespace)
    cluster_ip = svc["spec"]["clusterIP"]
    cm_ns, cm_name = CLUSTER_DNS
    try:
        current = await client.get(CONFIGMAPS, cm_name, cm_ns)
    except NotFound:
        progress(
            f"{cluster}: WARNING no ConfigMap {cm_ns}/{cm_name} (the cluster DNS): pods will not "
            f"resolve {names.MCS_ZONE}; add to your cluster DNS a server block forwarding "
            f"{names.MCS_ZONE} to {cluster_ip} (Service {namespace}/{NAME}):\n" + stanza(cluster_ip)
        )
        return False
    data = current.get("data") or {}
    wanted = with_stanza(data.get("Corefile", ""), cluster_ip)
    if wanted != data.get("Corefile"):
        await client.patch(CONFIGMAPS, cm_name, {"data": {"Corefile": wanted}}, namespace=cm_ns)
        await restart(client, progress, cluster)
    progress(f"{cluster}: {cm_ns}/{cm_name} forwards {names.MCS_ZONE} to {NAME} ({cluster_ip})")
    return True


async def unwire(client: Client, cluster: str, progress: Progress) -> None:
    """Remove our stanza from the cluster DNS (if any) and restart it."""
    cm_ns, cm_name = CLUSTER_DNS
    with contextlib.suppress(NotFound):
        current = await client.get(CONFIGMAPS, cm_name, cm_ns)
        text = (current.get("data") or {}).get("Corefile", "")
        if BEGIN in text:
            await client.patch(
                CONFIGMAPS, cm_name, {"data": {"Corefile": without_stanza(text)}}, namespace=cm_ns
            )
            await restart(client, progress, cluster)
            progress(f"{cluster}: {names.MCS_ZONE} stanza removed from {cm_ns}/{cm_name}")


async def restart(client: Client, progress: Progress, cluster: str) -> None:
    """Roll the cluster DNS's pods (as ``kubectl rollout restart``), if it is a Deployment."""
    ns, name = CLUSTER_DNS
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    try:
        await client.patch(DEPLOYMENTS, name, patch, namespace=ns)
    except NotFound:
        progress(f"{cluster}: no Deployment {ns}/{name} to restart; its reload plugin applies it")
