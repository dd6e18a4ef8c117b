"""What ``kosmosctl install`` puts into the host for kosmos-scheduler, as pure data.

One Deployment, one pod per replica: the real kube-scheduler (upstream image, the
kosmos-scheduler profile from a ConfigMap, leader-elected on Lease ``kosmos-scheduler``) and
``kosmos scheduler-extender`` as a native sidecar (an init container with ``restartPolicy:
Always``). Pairing them in one pod means each kube-scheduler calls the extender next to it
over loopback, and the extender's reservations describe exactly the scheduler that uses them;
only the leading scheduler calls at all. The sidecar starts first and writes its
self-signed serving certificate into a shared ``emptyDir``; its startup probe holds the
kube-scheduler back until the extender's caches are synced, and the kube-scheduler trusts
exactly that certificate (``tlsConfig.caFile``).

RBAC: kube-scheduler gets the built-in ``system:kube-scheduler`` and
``system:volume-scheduler`` roles (what upstream's own scheduler runs with), the
``extension-apiserver-authentication-reader`` Role in kube-system (to authenticate metrics
scrapers) and its own Lease. The extender reads what its decisions need, reads member
kubeconfig Secrets in the install namespace (get only, no watch on Secrets), patches pods
(only ``controller.kubernetes.io/pod-deletion-cost``; RBAC cannot restrict a patch to a field,
the code writes nothing else) and records events. No create, no binding, no delete.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import yaml

from kosmos.api import manifests as build
from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    MUTATING_ADMISSION_POLICIES,
    MUTATING_ADMISSION_POLICY_BINDINGS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    Resource,
)
from kosmos.ops import rbac
from kosmos.scheduler import admission, profile

Planned = tuple[Resource, Obj]
Labels = Callable[[str], dict[str, str]]

NAME = names.SCHEDULER_NAME  # Deployment, ServiceAccount, ConfigMap prefix, Lease
EXTENDER_LEASE = "kosmos-scheduler-extender"
#: The kube-scheduler release the profile was verified with (the toolchain's).
KUBE_SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler:v1.36.3"
SCHEDULER_PORT = 10259
EXTENDER_PORT = 10260
CONFIG_DIR = "/etc/kosmos-scheduler"
CERT_DIR = "/var/run/kosmos/scheduler-extender"
READ = rbac.READ

EXTENDER_RULES: tuple[Obj, ...] = (
    # Where pods may go: nodes, pods (placement counts, room on host nodes), their workloads'
    # replica counts, their claims and volumes.
    rbac.rule("", ("nodes", "pods", "persistentvolumeclaims", "persistentvolumes"), READ),
    rbac.rule("apps", ("replicasets", "statefulsets"), READ),
    rbac.rule("storage.k8s.io", ("storageclasses",), READ),
    # Policies, and the Clusters whose members are watched for true capacity.
    rbac.rule(
        names.GROUP, ("distributionpolicies", "clusterdistributionpolicies", "clusters"), READ
    ),
    # Scale-down keeps the split: controller.kubernetes.io/pod-deletion-cost on placed pods.
    rbac.rule("", ("pods",), ("patch",)),
    rbac.rule("", ("events",), ("create", "patch")),
)
#: In the install namespace: member kubeconfigs (read one by one) and the two Leases.
NAMESPACE_RULES: tuple[Obj, ...] = (
    rbac.rule("", ("secrets",), ("get",)),
    rbac.rule("coordination.k8s.io", ("leases",), ("create",)),
    rbac.rule("coordination.k8s.io", ("leases",), ("get", "update", "patch"), NAME, EXTENDER_LEASE),
)
#: Built-in ClusterRoles bound to kube-scheduler, as upstream binds its own scheduler.
BUILTIN_ROLES = ("system:kube-scheduler", "system:volume-scheduler")


class Builder:
    """The objects of one install: its namespace and how it labels what it creates."""

    def __init__(self, namespace: str, labels: Labels) -> None:
        self.namespace = namespace
        self.labels = labels

    def meta(self, name: str, namespace: str | None = None) -> Obj:
        return build.metadata(name, self.labels(NAME), namespace)

    def rbac(self) -> list[Planned]:
        ns, extender, own = self.namespace, f"{NAME}-extender", self.labels(NAME)
        subjects = [build.service_account_subject(NAME, ns)]
        out: list[Planned] = [
            (CLUSTERROLES, build.cluster_role(extender, EXTENDER_RULES, own)),
            (CLUSTERROLEBINDINGS, build.cluster_role_binding(extender, extender, subjects, own)),
        ]
        for role in BUILTIN_ROLES:
            name = f"{NAME}-{role.removeprefix('system:')}"
            out.append((CLUSTERROLEBINDINGS, build.cluster_role_binding(name, role, subjects, own)))
        reader = "extension-apiserver-authentication-reader"
        binding = build.role_binding(f"{NAME}-{reader}", "kube-system", reader, subjects, own)
        out.append((ROLEBINDINGS, binding))
        out.append((ROLES, build.role(NAME, ns, NAMESPACE_RULES, own)))
        out.append((ROLEBINDINGS, build.role_binding(NAME, ns, NAME, subjects, own)))
        return out

    def config_map(self) -> Planned:
        config = profile.configuration(
            extender_url=f"https://127.0.0.1:{EXTENDER_PORT}",
            ca_file=f"{CERT_DIR}/tls.crt",
            lease_namespace=self.namespace,
        )
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(f"{NAME}-config", self.namespace),
            "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False)},
        }
        return CONFIGMAPS, body


def admission_objects(labels: dict[str, str]) -> list[Planned]:
    """The policy adding the leaf toleration to kosmos-scheduler pods, and its binding."""
    policy, binding = admission.toleration_policy(labels)
    return [(MUTATING_ADMISSION_POLICIES, policy), (MUTATING_ADMISSION_POLICY_BINDINGS, binding)]


def _probe(path: str, port: str, **extra: Any) -> Obj:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTPS"},
        "periodSeconds": 10,
        **extra,
    }


def _extender(image: str, env: list[Obj]) -> Obj:
    return {
        "name": "scheduler-extender",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",  # a native sidecar: started, and probed, first
        # args only: the image's entrypoint (tini -- kosmos) stays PID 1
        "args": [
            "scheduler-extender",
            "--leader-elect",
            "--bind-address=0.0.0.0",
            f"--secure-port={EXTENDER_PORT}",
            f"--cert-dir={CERT_DIR}",
        ],
        "env": env,
        "ports": [{"name": "extender", "containerPort": EXTENDER_PORT, "protocol": "TCP"}],
        "startupProbe": _probe("/readyz", "extender", periodSeconds=2, failureThreshold=90),
        "livenessProbe": _probe("/healthz", "extender", failureThreshold=3),
        "readinessProbe": _probe("/readyz", "extender"),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": copy.deepcopy(build.HARDENED_CONTAINER),
        "volumeMounts": [
            {"name": "extender-tls", "mountPath": CERT_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _scheduler() -> Obj:
    flags = profile.flags(
        f"{CONFIG_DIR}/config.yaml", secure_port=SCHEDULER_PORT, bind_address="0.0.0.0"
    )
    return {
        "name": "kube-scheduler",
        "image": KUBE_SCHEDULER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kube-scheduler", *flags],
        "ports": [{"name": "scheduler", "containerPort": SCHEDULER_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", "scheduler", initialDelaySeconds=15),
        "readinessProbe": _probe("/readyz", "scheduler"),
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}},
        "securityContext": copy.deepcopy(build.HARDENED_CONTAINER),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "extender-tls", "mountPath": CERT_DIR, "readOnly": True},
        ],
    }


def deployment(
    builder: Builder, image: str, pod_security: Obj, tolerations: list[Obj], placement: Obj
) -> Planned:
    env = [
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    pod = {
        "serviceAccountName": NAME,
        "securityContext": pod_security,
        "initContainers": [_extender(image, env)],
        "containers": [_scheduler()],
        "tolerations": tolerations,
        "volumes": [
            {"name": "config", "configMap": {"name": f"{NAME}-config"}},
            {"name": "extender-tls", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
        **placement,
    }
    body = build.deployment(
        builder.meta(NAME, builder.namespace),
        selector={"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "kosmos"},
        pod_labels=builder.labels(NAME),
        pod_spec=pod,
    )
    return DEPLOYMENTS, body


def objects(
    namespace: str,
    *,
    image: str,
    labels: Labels,
    admission_labels: dict[str, str],
    pod_security: Obj,
    tolerations: list[Obj],
    placement: Obj | None = None,
) -> list[Planned]:
    """Everything kosmos-scheduler needs, in apply order (ServiceAccount first)."""
    builder = Builder(namespace, labels)
    return [
        (SERVICEACCOUNTS, build.service_account(NAME, namespace, labels(NAME))),
        *builder.rbac(),
        *admission_objects(admission_labels),
        builder.config_map(),
        deployment(builder, image, pod_security, tolerations, placement or {}),
    ]
