"""The cluster DNS of a local cluster with real nodes: ``kube-system/coredns`` as kubeadm has it.

A real cluster always has one (kubeadm's CoreDNS addon); the kubelets of our real nodes
already point pods at ``clusterDNS`` (``.10`` of the service CIDR), so the Service
``kube-dns`` takes that address and a CoreDNS Deployment (our image of the toolchain's
CoreDNS) answers behind it with kubeadm's Corefile: the kubernetes plugin for
``cluster.local`` and the reverse zones, forward for the rest, cache, reload, ready, health.
Kosmos's install later adds its own ``clusterset.local`` stanza to this Corefile, exactly as
it does on a user's cluster.

The pods take ``dnsPolicy: None`` with the machine's own nameservers: the kubelets run with
an empty ``resolvConf`` (nothing of the machine leaks into pods), which would leave CoreDNS's
``forward . /etc/resolv.conf`` without an upstream.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from kosmos.local.images import COREDNS_REF
from kosmos.local.kubectl import Kubectl
from kosmos.local.nodes.plan import REAL_NODE_KEY, REAL_NODE_TAINT

__all__ = ["NAME", "NAMESPACE", "SERVICE", "corefile", "ensure", "objects", "upstreams"]

NAMESPACE = "kube-system"
NAME = "coredns"
SERVICE = "kube-dns"
LABELS = {"k8s-app": "kube-dns"}
RESOLV_CONF = Path("/etc/resolv.conf")


def upstreams(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The machine's nameservers a pod can use: loopback ones would answer from the pod."""
    found = []
    for line in resolv_conf.read_text().splitlines() if resolv_conf.exists() else []:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1])
            except ValueError:
                continue
            if not address.is_loopback:
                found.append(str(address))
    return found[:3]


def corefile(forward: bool) -> str:
    """kubeadm's Corefile (forward only when the pod has an upstream to forward to)."""
    upstream = "    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n"
    return (
        ".:53 {\n"
        "    errors\n"
        "    health {\n       lameduck 5s\n    }\n"
        "    ready\n"
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n"
        "       pods insecure\n"
        "       fallthrough in-addr.arpa ip6.arpa\n"
        "       ttl 30\n"
        "    }\n"
        "    prometheus :9153\n"
        f"{upstream if forward else ''}"
        "    cache 30 {\n"
        "       disable success cluster.local\n"
        "       disable denial cluster.local\n"
        "    }\n"
        "    loop\n"
        "    reload\n"
        "    loadbalance\n"
        "}\n"
    )


def objects(service_cidr: str, nameservers: list[str]) -> list[dict[str, Any]]:
    """RBAC, the ConfigMap, the Deployment and the Service at ``.10`` of ``service_cidr``."""
    cluster_ip = str(ipaddress.ip_network(service_cidr)[10])
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}
    role = "system:coredns"
    rules = [
        {
            "apiGroups": [""],
            "resources": ["endpoints", "services", "pods", "namespaces"],
            "verbs": ["list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        },
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "data": {"Corefile": corefile(bool(nameservers))},
        },
        _deployment(meta, nameservers),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": LABELS},
            "spec": {
                "selector": LABELS,
                "clusterIP": cluster_ip,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
    ]


def _deployment(meta: dict[str, Any], nameservers: list[str]) -> dict[str, Any]:
    dns: dict[str, Any] = {"dnsPolicy": "Default"}
    if nameservers:
        dns = {"dnsPolicy": "None", "dnsConfig": {"nameservers": nameservers}}
    container = {
        "name": "coredns",
        "image": COREDNS_REF,
        "imagePullPolicy": "IfNotPresent",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
        ],
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"memory": "170Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }
    template = {
        "metadata": {"labels": LABELS},
        "spec": {
            "serviceAccountName": NAME,
            "priorityClassName": "system-cluster-critical",
            "nodeSelector": {REAL_NODE_KEY: "true"},
            "tolerations": [
                {"key": REAL_NODE_TAINT["key"], "operator": "Exists"},
                {"key": "CriticalAddonsOnly", "operator": "Exists"},
            ],
            **dns,
            "containers": [container],
            "volumes": [{"name": "config-volume", "configMap": {"name": NAME}}],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": template},
    }


def ensure(kubectl: Kubectl, service_cidr: str) -> None:
    """Apply the cluster DNS; the Corefile is only created, never overwritten, because
    Kosmos's install edits it (its clusterset.local stanza) as it would a user's."""
    found = objects(service_cidr, upstreams())
    existing = kubectl.run(
        "-n", NAMESPACE, "get", "configmap", NAME, "--ignore-not-found", "-o", "name"
    ).strip()
    body = [o for o in found if not (existing and o["kind"] == "ConfigMap")]
    stdin = json.dumps({"apiVersion": "v1", "kind": "List", "items": body})
    kubectl.run("apply", "--server-side", "--field-manager=kosmos-local", "-f", "-", stdin=stdin)
