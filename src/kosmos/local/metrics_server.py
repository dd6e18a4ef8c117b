"""metrics-server for the local host cluster: what ``kubectl top`` needs, as pure data.

With real nodes the host can run metrics-server for real (kwok only simulates pods), and
``kubectl top`` then works through the aggregation layer: the host apiserver proxies
``metrics.k8s.io`` to metrics-server (:func:`kosmos.local.kwokctl.aggregation_flags`), which
scrapes ``/metrics/resource`` of every kubelet it selects, the leaf nodes' included.

The objects are the ones metrics-server's own release manifest declares — its RBAC, Service,
Deployment and APIService — written here with our builders, with the local differences:

* the Deployment runs on the host's real nodes (their label) and scrapes only nodes that are
  not simulated by kwok (``--node-selector``): a kwok node's address is 127.0.0.1, which from
  a pod is the pod itself, so scraping one would only fill the log with errors;
* ``--kubelet-insecure-tls``: the local kubelets serve self-signed certificates (no CA signs
  kubelet serving certificates here), so metrics-server cannot verify them. It still sends
  its ServiceAccount token, which the kubelet authorizes;
* the image is ours (:mod:`kosmos.local.images`), under upstream's reference, imported into
  every real node's containerd, so it is never pulled.
"""

from __future__ import annotations

from kosmos.api import manifests as build
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    APISERVICES,
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    DEPLOYMENTS,
    ROLEBINDINGS,
    SERVICEACCOUNTS,
    SERVICES,
    Resource,
)
from kosmos.local.images import METRICS_SERVER_REF
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.local.topology import KWOK_NODE_KEY, KWOK_NODE_VALUE

__all__ = [
    "API_SERVICE",
    "ARGS",
    "NAME",
    "NAMESPACE",
    "objects",
]

NAME = "metrics-server"
NAMESPACE = "kube-system"
#: The aggregated API that ``kubectl top`` reads.
API_GROUP = "metrics.k8s.io"
API_SERVICE = f"v1beta1.{API_GROUP}"
SECURE_PORT = 10250
LABELS = {"k8s-app": NAME, "app.kubernetes.io/managed-by": "kosmosctl-local"}
SELECTOR = {"k8s-app": NAME}
#: The pod's own UID (upstream's manifest sets 1000; any non-root id will do).
RUN_AS = 1000
ARGS = (
    "--cert-dir=/tmp",
    f"--secure-port={SECURE_PORT}",
    "--kubelet-preferred-address-types=InternalIP",
    "--kubelet-use-node-status-port",
    "--kubelet-insecure-tls",
    "--metric-resolution=15s",
    f"--node-selector={KWOK_NODE_KEY}!={KWOK_NODE_VALUE}",
)

Planned = tuple[Resource, Obj]


def objects() -> list[Planned]:
    """Everything metrics-server needs in the host, in apply order (the APIService last)."""
    return [
        (SERVICEACCOUNTS, build.service_account(NAME, NAMESPACE, LABELS)),
        *_rbac(),
        (SERVICES, service()),
        (DEPLOYMENTS, deployment()),
        (APISERVICES, api_service()),
    ]


def _rbac() -> list[Planned]:
    """Reading metrics for ``kubectl top`` (aggregated into view/edit/admin), and what
    metrics-server itself needs: scrape kubelets, list pods and nodes, delegate authn/authz."""
    reader_labels = LABELS | {
        f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"
        for role in ("admin", "edit", "view")
    }
    read = ["get", "list", "watch"]
    reader = build.cluster_role(
        "system:aggregated-metrics-reader",
        [{"apiGroups": [API_GROUP], "resources": ["pods", "nodes"], "verbs": read}],
        reader_labels,
    )
    own = build.cluster_role(
        f"system:{NAME}",
        [
            {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": read},
        ],
        LABELS,
    )
    subject = [build.service_account_subject(NAME, NAMESPACE)]
    return [
        (CLUSTERROLES, reader),
        (CLUSTERROLES, own),
        (
            ROLEBINDINGS,
            build.role_binding(
                f"{NAME}-auth-reader",
                NAMESPACE,
                "extension-apiserver-authentication-reader",
                subject,
                LABELS,
            ),
        ),
        (
            CLUSTERROLEBINDINGS,
            build.cluster_role_binding(
                f"{NAME}:system:auth-delegator", "system:auth-delegator", subject, LABELS
            ),
        ),
        (
            CLUSTERROLEBINDINGS,
            build.cluster_role_binding(f"system:{NAME}", f"system:{NAME}", subject, LABELS),
        ),
    ]


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": build.metadata(NAME, LABELS, NAMESPACE),
        "spec": {
            "selector": dict(SELECTOR),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
        },
    }


def deployment() -> Obj:
    probe = {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"}}
    container: Obj = {
        "name": NAME,
        "image": METRICS_SERVER_REF,
        "imagePullPolicy": "IfNotPresent",
        "args": list(ARGS),
        "ports": [{"name": "https", "containerPort": SECURE_PORT, "protocol": "TCP"}],
        "livenessProbe": probe | {"periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "securityContext": build.HARDENED_CONTAINER
        | {"runAsUser": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec: Obj = {
        "serviceAccountName": NAME,
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux", REAL_NODE_KEY: "true"},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    meta = build.metadata(NAME, LABELS, NAMESPACE)
    return build.deployment(meta, selector=SELECTOR, pod_labels=LABELS, pod_spec=pod_spec)


def api_service() -> Obj:
    """Registers metrics-server for ``metrics.k8s.io``; its serving certificate is
    self-signed, so the apiserver cannot verify it (as in upstream's manifest)."""
    return {
        "apiVersion": APISERVICES.api_version,
        "kind": "APIService",
        "metadata": build.metadata(API_SERVICE, LABELS),
        "spec": {
            "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
            "group": API_GROUP,
            "version": "v1beta1",
            "insecureSkipTLSVerify": True,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
