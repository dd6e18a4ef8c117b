"""The in-cluster provider's objects for one tenant (pure: the VirtualCluster, its PKI and
what the host decided in, manifests out).

In the VirtualCluster's namespace: Services ``apiserver`` (NodePort: how users, the operator
and joined nodes reach the tenant), ``etcd`` (ClusterIP) and ``coredns`` (NodePort, UDP and
TCP on one port: the tenant's cluster DNS for pods of its real nodes, :mod:`kosmos.kubenest.dns`);
Secret ``<vc>-control-plane`` with the components' kubeconfigs, kwok's stages and the
Corefile; StatefulSet ``etcd`` and Deployments ``apiserver``, ``kcm``, ``scheduler``,
``kwok`` and ``coredns``; a PodDisruptionBudget ``control-plane``. Everything is labelled
``kosmos.io/virtual-cluster=<ns>.<name>`` and owned by the VirtualCluster (a deleted one
takes them along).

Commands are :mod:`kosmos.kubenest.components`' builders with in-pod paths: each pod has an
emptyDir at ``/etc/kubenest`` (etcd's data is its ``etcd/``: lost with the pod, so the
PodDisruptionBudget refuses evictions of a running control plane), the tenant's PKI Secret
``<vc>-cert`` at ``/etc/kubenest/pki`` with only the files its command names, and the files
of ``<vc>-control-plane`` it names, one by one. The apiserver listens on its Service's
NodePort, so the address it publishes as the tenant's ``kubernetes`` endpoint (``advertise``:
a node's address) and that port reach it from the tenant's nodes too. The pod template's
``kosmos.io/config-hash`` follows the PKI and files, so a changed certificate rolls the pods.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kosmos.api import manifests, names
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.kubenest import components, kwokstages, phases, pki
from kosmos.kubenest.components import Layout
from kosmos.kubenest.kubeconfig import component_kubeconfig
from kosmos.kubenest.settings import DEFAULT_IMAGE_REPOSITORY

#: the pinned versions our images carry (kosmos.local.images builds them; a unit test checks)
K8S_VERSION = "v1.36.3"
ETCD_VERSION = "3.6.16-0"
KWOK_VERSION = "v0.8.0"
COREDNS_IMAGE = "docker.io/kosmos/coredns:v1.14.2"

ANNOTATION_CONFIG_HASH = "kosmos.io/config-hash"
ROOT = Path("/etc/kubenest")
LAYOUT = Layout(ROOT)
APISERVER_SERVICE_PORT = 6443
#: fixed in-pod ports; the apiserver's is its NodePort (``Plan.apiserver_port``)
POD_PORTS = {
    components.ETCD: 2379,
    components.ETCD_PEER: 2380,
    components.CONTROLLER_MANAGER: 10257,
    components.SCHEDULER: 10259,
    components.KWOK: 10247,
    components.COREDNS: 53,
}
#: component -> workload name (StatefulSet for etcd, Deployments for the rest)
WORKLOADS = {
    components.ETCD: "etcd",
    components.APISERVER: "apiserver",
    components.CONTROLLER_MANAGER: "kcm",
    components.SCHEDULER: "scheduler",
    components.KWOK: "kwok",
    components.COREDNS: "coredns",
}
SERVICES = ("apiserver", "etcd", "coredns")
PDB = "control-plane"
#: component -> the client pair its kubeconfig carries (as the local provider's)
KUBECONFIG_USERS = {
    components.CONTROLLER_MANAGER: pki.CONTROLLER_MANAGER,
    components.SCHEDULER: pki.SCHEDULER,
    components.KWOK: pki.ADMIN,
    components.COREDNS: pki.ADMIN,
}
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
#: nodes that run nothing for real (kwok's) or are ClusterTree's leaf nodes
NOT_RUNNABLE = (names.LABEL_KWOK_NODE, names.LABEL_NODE)


def images(repository: str = DEFAULT_IMAGE_REPOSITORY) -> dict[str, str]:
    """component -> image: upstream's references under ``repository``; CoreDNS is ours."""
    repo = repository.rstrip("/")
    return {
        components.ETCD: f"{repo}/etcd:{ETCD_VERSION}",
        components.APISERVER: f"{repo}/kube-apiserver:{K8S_VERSION}",
        components.CONTROLLER_MANAGER: f"{repo}/kube-controller-manager:{K8S_VERSION}",
        components.SCHEDULER: f"{repo}/kube-scheduler:{K8S_VERSION}",
        components.KWOK: f"{repo}/kwok/kwok:{KWOK_VERSION}",
        components.COREDNS: COREDNS_IMAGE,
    }


@dataclass(frozen=True)
class Plan:
    """What the host decided: the Services' ClusterIPs, the apiserver's NodePort (also its
    port in the pod), the address it advertises, and where its pods may run."""

    apiserver_ip: str
    etcd_ip: str
    apiserver_port: int
    advertise: str
    images: Mapping[str, str] = field(default_factory=images)
    node_selector: Mapping[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return {**POD_PORTS, components.APISERVER: self.apiserver_port}

    @property
    def server(self) -> str:
        """How the components reach the apiserver: its Service, no DNS needed."""
        return f"https://{self.apiserver_ip}:{APISERVER_SERVICE_PORT}"


def labels(vc: Mapping[str, Any], component: str | None = None) -> dict[str, str]:
    out = {names.LABEL_VIRTUAL_CLUSTER: phases.label_value(vc)}
    if component:
        out[names.LABEL_TENANT_COMPONENT] = component
    return out


def selector(vc: Mapping[str, Any]) -> str:
    """The label selector of every object this module makes for ``vc``."""
    return f"{names.LABEL_VIRTUAL_CLUSTER}={phases.label_value(vc)},{names.LABEL_TENANT_COMPONENT}"


def files_secret(vc: Mapping[str, Any]) -> str:
    return f"{name_of(vc)}-control-plane"


def _meta(vc: Mapping[str, Any], name: str, component: str) -> Obj:
    meta = manifests.metadata(name, labels(vc, component), namespace_of(vc))
    meta["ownerReferences"] = phases.owner_references(vc)
    return meta


def services(vc: Mapping[str, Any]) -> list[Obj]:
    """The three Services; NodePorts are the host's choice (read back by the provider)."""
    apiserver = {"name": "https", "port": APISERVER_SERVICE_PORT, "targetPort": "https"}
    etcd = {"name": "client", "port": POD_PORTS[components.ETCD], "targetPort": "client"}
    dns = {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}
    specs = {
        "apiserver": {"type": "NodePort", "ports": [apiserver]},
        "etcd": {"type": "ClusterIP", "ports": [etcd]},
        "coredns": {"type": "NodePort", "ports": [dns]},
    }
    component = {"apiserver": components.APISERVER, "etcd": components.ETCD}
    out = []
    for name, spec in specs.items():
        comp = component.get(name, components.COREDNS)
        body = {"selector": labels(vc, comp), **spec}
        out.append(
            {"apiVersion": "v1", "kind": "Service", "metadata": _meta(vc, name, comp), "spec": body}
        )
    return out


def dns_tcp(node_port: int) -> list[Obj]:
    """The coredns Service's ports once its UDP NodePort is known: TCP on the same one
    (:mod:`kosmos.kubenest.dns` publishes one port for both)."""
    return [
        {"name": n, "port": 53, "protocol": p, "targetPort": t, "nodePort": node_port}
        for n, p, t in (("dns", "UDP", "dns"), ("dns-tcp", "TCP", "dns-tcp"))
    ]


def files(
    vc: Mapping[str, Any], plan: Plan, tenant: pki.TenantPKI, stages: bytes
) -> dict[str, str]:
    """``<vc>-control-plane``'s entries: file name under :data:`ROOT` -> content."""
    cluster = f"{namespace_of(vc)}-{name_of(vc)}"
    out = {
        LAYOUT.kubeconfig(c).name: component_kubeconfig(plan.server, tenant, base, cluster)
        for c, base in KUBECONFIG_USERS.items()
    }
    out[LAYOUT.kwok_config.name] = stages.decode()
    out[LAYOUT.corefile.name] = components.corefile(LAYOUT, plan.ports)
    return out


def command(component: str, plan: Plan) -> list[str]:
    """The container's command: the components' own flags, with in-pod paths and addresses."""
    ports = plan.ports
    if component == components.ETCD:
        binary = Path("/usr/local/bin/etcd")
        return components.etcd(LAYOUT, binary, ports, "0.0.0.0", plan.etcd_ip)
    if component == components.APISERVER:
        binary = Path("/usr/local/bin/kube-apiserver")
        return components.apiserver(
            LAYOUT, binary, ports, plan.advertise, bind="0.0.0.0", etcd_host=plan.etcd_ip
        )
    bin_dir = Path("/") if component == components.COREDNS else Path("/usr/local/bin")
    return components.argv(component, LAYOUT, bin_dir, ports, plan.advertise)


def _named(texts: Sequence[str], prefix: Path, keys: Sequence[str]) -> list[str]:
    joined = "\n".join(texts)
    return [key for key in keys if f"{prefix / key}" in joined]


def pod_spec(component: str, vc: Mapping[str, Any], plan: Plan, entries: Mapping[str, str]) -> Obj:
    """One container running ``component``, with only the PKI files and entries it names."""
    argv = command(component, plan)
    texts = list(argv)
    if component == components.COREDNS:  # its Corefile names its kubeconfig
        texts.append(entries[LAYOUT.corefile.name])
    mounts: list[Obj] = [{"name": "state", "mountPath": str(ROOT)}]
    volumes: list[Obj] = [{"name": "state", "emptyDir": {}}]
    pki_files = _named(texts, ROOT / "pki", list(pki.FILES))
    if pki_files:  # an empty ``items`` would project every key
        items = [{"key": f, "path": f} for f in pki_files]
        source = {"secretName": phases.cert_secret(vc), "items": items, "defaultMode": 0o400}
        volumes.append({"name": "pki", "secret": source})
        mounts.append({"name": "pki", "mountPath": str(ROOT / "pki"), "readOnly": True})
    own = _named(texts, ROOT, list(entries))
    if own:
        volumes.append(
            {"name": "files", "secret": {"secretName": files_secret(vc), "defaultMode": 0o400}}
        )
        mounts += [
            {"name": "files", "mountPath": str(ROOT / k), "subPath": k, "readOnly": True}
            for k in own
        ]
    container: Obj = {
        "name": component,
        "image": plan.images[component],
        "imagePullPolicy": "IfNotPresent",
        "command": argv,
        "ports": _ports(component, plan),
        "volumeMounts": mounts,
    }
    if component == components.APISERVER:
        container["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
            "periodSeconds": 2,
            "failureThreshold": 3,
        }
    return {
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": dict(plan.node_selector),
        "affinity": placement(),
        "tolerations": [
            {"key": t, "operator": "Exists", "effect": "NoSchedule"} for t in CONTROL_PLANE_TAINTS
        ],
    }


def _ports(component: str, plan: Plan) -> list[Obj]:
    if component == components.APISERVER:
        return [{"name": "https", "containerPort": plan.apiserver_port}]
    if component == components.ETCD:
        return [{"name": "client", "containerPort": POD_PORTS[components.ETCD]}]
    if component == components.COREDNS:
        return [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
        ]
    return []


def placement() -> Obj:
    """Never on a node that runs nothing (kwok's, a leaf node); rather on control-plane
    nodes, which no VirtualCluster borrows (the pool keeps them ``reserved``)."""
    absent = [{"key": k, "operator": "DoesNotExist"} for k in NOT_RUNNABLE]
    preferred = [
        {"weight": 100, "preference": {"matchExpressions": [{"key": t, "operator": "Exists"}]}}
        for t in CONTROL_PLANE_TAINTS
    ]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": absent}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": preferred,
        }
    }


def config_hash(tenant: pki.TenantPKI, entries: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tenant.files):
        digest.update(name.encode() + b"\0" + tenant.files[name] + b"\0")
    for name in sorted(entries):
        digest.update(name.encode() + b"\0" + entries[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def workloads(
    vc: Mapping[str, Any], plan: Plan, tenant: pki.TenantPKI, entries: Mapping[str, str]
) -> list[Obj]:
    """etcd's StatefulSet, then the Deployments in :data:`components.PROCESSES` order."""
    checksum = config_hash(tenant, entries)
    out = []
    for component in components.PROCESSES:
        name = WORKLOADS[component]
        meta = _meta(vc, name, component)
        spec = pod_spec(component, vc, plan, entries)
        pod_labels = labels(vc, component)
        if component == components.ETCD:
            body = manifests.statefulset(
                meta, service="etcd", selector=pod_labels, pod_labels=pod_labels, pod_spec=spec
            )
        else:
            body = manifests.deployment(
                meta, selector=pod_labels, pod_labels=pod_labels, pod_spec=spec
            )
            body["spec"]["strategy"] = {
                "type": "Recreate"
            }  # one at a time: no two schedulers, kwoks
        body["spec"]["template"]["metadata"]["annotations"] = {ANNOTATION_CONFIG_HASH: checksum}
        out.append(body)
    return out


def secret(vc: Mapping[str, Any], entries: Mapping[str, str]) -> Obj:
    """``data``, not ``stringData``: a write-only field is a poor thing to server-side apply."""
    meta = _meta(vc, files_secret(vc), "files")
    data = {k: base64.b64encode(v.encode()).decode() for k, v in entries.items()}
    return manifests.secret(meta, secret_type="Opaque", data=data)


def budget(vc: Mapping[str, Any]) -> Obj:
    """No voluntary eviction of a tenant's control-plane pods (etcd's data is an emptyDir):
    draining their node waits, naming the budget, until someone moves them on purpose."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(vc, PDB, "budget"),
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": labels(vc)}},
    }


def stages() -> bytes:
    """kwok's stages (the same as a local tenant's kwok gets)."""
    return kwokstages.documents()
