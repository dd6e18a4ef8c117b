"""Builders for the Kubernetes objects Kosmos emits many times (pure data, no I/O).

``kosmosctl install`` and ``join``, the local environment and the components' admission
policies all write ServiceAccounts, RBAC, Deployments, DaemonSets and MutatingAdmissionPolicies.
Each shape is written once here, so every caller emits the same fields in the same order and
only says what differs: names, labels, rules, the pod spec. Every builder returns a fresh
object: lists and dicts passed in are copied, so an emitted object can be changed without
touching its caller's constants.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import RBAC_GROUP

RBAC_API_VERSION = f"{RBAC_GROUP}/v1"
ADMISSION_API_VERSION = "admissionregistration.k8s.io/v1"

#: The taints the node-lifecycle controller puts on a node it cannot reach or that is not Ready.
NODE_LIFECYCLE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
#: What the DefaultTolerationSeconds admission plugin gives every pod for those taints.
DEFAULT_TOLERATION_SECONDS = 300
#: A container that cannot gain privileges: non-root, no capabilities, read-only root
#: filesystem (what every Kosmos control-plane container runs with).
HARDENED_CONTAINER: Obj = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def metadata(
    name: str, labels: Mapping[str, str] | None = None, namespace: str | None = None
) -> Obj:
    """``metadata`` with a name, labels (when given) and a namespace (when namespaced)."""
    meta: Obj = {"name": name}
    if labels is not None:
        meta["labels"] = dict(labels)
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(name, labels)}


def service_account(name: str, namespace: str, labels: Mapping[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, labels, namespace),
    }


def service_account_subject(name: str, namespace: str) -> Obj:
    """The ``subjects`` entry that binds a role to a ServiceAccount."""
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def secret(
    meta: Obj,
    *,
    secret_type: str | None = None,
    data: Mapping[str, str] | None = None,
    string_data: Mapping[str, str] | None = None,
) -> Obj:
    """A Secret: ``data`` values are base64 already, ``string_data`` values are plain text."""
    body: Obj = {"apiVersion": "v1", "kind": "Secret"}
    if secret_type:
        body["type"] = secret_type
    body["metadata"] = meta
    if data is not None:
        body["data"] = dict(data)
    if string_data is not None:
        body["stringData"] = dict(string_data)
    return body


def cluster_role(name: str, rules: Iterable[Obj], labels: Mapping[str, str]) -> Obj:
    return _role("ClusterRole", metadata(name, labels), rules)


def role(name: str, namespace: str, rules: Iterable[Obj], labels: Mapping[str, str]) -> Obj:
    return _role("Role", metadata(name, labels, namespace), rules)


def _role(kind: str, meta: Obj, rules: Iterable[Obj]) -> Obj:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": kind,
        "metadata": meta,
        "rules": copy.deepcopy(list(rules)),
    }


def cluster_role_binding(
    name: str, cluster_role: str, subjects: Iterable[Obj], labels: Mapping[str, str]
) -> Obj:
    """Binds the ClusterRole ``cluster_role`` cluster-wide (the binding may have another name)."""
    return _binding(
        "ClusterRoleBinding", metadata(name, labels), "ClusterRole", cluster_role, subjects
    )


def role_binding(
    name: str,
    namespace: str,
    role: str,
    subjects: Iterable[Obj],
    labels: Mapping[str, str],
) -> Obj:
    """Binds the Role ``role`` of ``namespace`` (the binding may have another name)."""
    meta = metadata(name, labels, namespace)
    return _binding("RoleBinding", meta, "Role", role, subjects)


def _binding(kind: str, meta: Obj, role_kind: str, role: str, subjects: Iterable[Obj]) -> Obj:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
        "subjects": copy.deepcopy(list(subjects)),
    }


def deployment(
    meta: Obj,
    *,
    selector: Mapping[str, str],
    pod_labels: Mapping[str, str],
    pod_spec: Obj,
    replicas: int = 1,
) -> Obj:
    """A Deployment of ``replicas`` pods with ``pod_spec``; ``selector`` picks ``pod_labels``."""
    spec: Obj = {"replicas": replicas, **_workload(selector, pod_labels, pod_spec)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def statefulset(
    meta: Obj,
    *,
    service: str,
    selector: Mapping[str, str],
    pod_labels: Mapping[str, str],
    pod_spec: Obj,
    replicas: int = 1,
) -> Obj:
    """A StatefulSet of ``replicas`` pods named after it, ``service`` governing their names."""
    spec: Obj = {
        "replicas": replicas,
        "serviceName": service,
        **_workload(selector, pod_labels, pod_spec),
    }
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}


def daemonset(
    meta: Obj, *, selector: Mapping[str, str], pod_labels: Mapping[str, str], pod_spec: Obj
) -> Obj:
    """A DaemonSet: one pod with ``pod_spec`` on every node its spec admits."""
    spec = _workload(selector, pod_labels, pod_spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta, "spec": spec}


def _workload(selector: Mapping[str, str], pod_labels: Mapping[str, str], pod_spec: Obj) -> Obj:
    return {
        "selector": {"matchLabels": dict(selector)},
        "template": {"metadata": {"labels": dict(pod_labels)}, "spec": copy.deepcopy(pod_spec)},
    }


#: What a policy on pod creation matches: core/v1 pods, CREATE only.
POD_CREATE_RULES: tuple[Obj, ...] = (
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
)


def mutating_admission_policy(
    name: str,
    labels: Mapping[str, str],
    *,
    match_condition: tuple[str, str],
    json_patch: str,
    variables: Iterable[tuple[str, str]] = (),
    resource_rules: Iterable[Obj] = POD_CREATE_RULES,
    namespace_selector: Obj | None = None,
) -> tuple[Obj, Obj]:
    """A MutatingAdmissionPolicy and the cluster-wide binding that turns it on.

    ``match_condition`` and each variable are ``(name, CEL expression)``; ``json_patch`` is the
    CEL expression of the JSONPatch mutation; ``namespace_selector`` (a LabelSelector) limits
    it to the namespaces it matches. The policy fails closed (``failurePolicy: Fail``)
    and runs once per request: a pod must never be created without the mutation it is owed.
    """
    constraints: Obj = {"resourceRules": copy.deepcopy(list(resource_rules))}
    if namespace_selector is not None:
        constraints["namespaceSelector"] = copy.deepcopy(namespace_selector)
    spec: Obj = {
        "matchConstraints": constraints,
        "matchConditions": [{"name": match_condition[0], "expression": match_condition[1]}],
    }
    declared = [{"name": var, "expression": expression} for var, expression in variables]
    if declared:
        spec["variables"] = declared
    spec |= {
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": json_patch}}],
    }
    policy: Obj = {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "MutatingAdmissionPolicy",
        "metadata": metadata(name, labels),
        "spec": spec,
    }
    binding: Obj = {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": metadata(name, labels),
        "spec": {"policyName": name},
    }
    return policy, binding


# -- the leaf tolerations of pods admitted for leaf nodes (CEL, shared by admission policies) --

_LIFECYCLE = ", ".join(f"'{k}'" for k in NODE_LIFECYCLE_TAINTS)
_TOLS = "object.spec.tolerations"
#: the pod already tolerates the leaf taint (``kosmos.io/node`` or any key, NoSchedule)
LEAF_TOLERATED = (
    f"has({_TOLS}) && {_TOLS}.exists(t, has(t.operator) && t.operator == 'Exists' && "
    f"((has(t.key) && t.key == '{names.LABEL_NODE}') || !has(t.key) || t.key == '') && "
    "(!has(t.effect) || t.effect == '' || t.effect == 'NoSchedule'))"
)
_DEFAULTED = (
    f"has(t.key) && t.key in [{_LIFECYCLE}] && has(t.tolerationSeconds) && "
    f"t.tolerationSeconds == {DEFAULT_TOLERATION_SECONDS}"
)


def _add_toleration(key: str, effect: str) -> str:
    value = f"Object.spec.tolerations{{key: {key}, operator: 'Exists', effect: '{effect}'}}"
    return f"JSONPatch{{op: 'add', path: '/spec/tolerations/-', value: {value}}}"


#: A CEL list of JSONPatch operations: the leaf taint tolerated (``Exists``, NoSchedule) and
#: the NoExecute lifecycle taints tolerated without a time limit (the 300 s defaults lose
#: their limit, missing ones are added). Policies run in no guaranteed order, so each policy
#: that admits pods to leaf nodes does all of it itself; applied twice, it changes nothing.
#: Only per-element operations: a patch whose value is a list of constructed objects makes
#: the 1.36 apiserver panic (cel-go list conversion), so the array is never replaced whole.
LEAF_TOLERATIONS_PATCH = " + ".join(
    [
        f"(has({_TOLS}) ? [] : [JSONPatch{{op: 'add', path: '/spec/tolerations', value: []}}])",
        f"(has({_TOLS}) ? {_TOLS}.filter(t, {_DEFAULTED}).map(t, JSONPatch{{op: 'remove', "
        f"path: '/spec/tolerations/' + string({_TOLS}.indexOf(t)) + '/tolerationSeconds'}}) "
        ": [])",
        f"[{_LIFECYCLE}].filter(k, !(has({_TOLS}) && {_TOLS}.exists(t, has(t.key) && "
        f"t.key == k))).map(k, {_add_toleration('k', 'NoExecute')})",
        f"(({LEAF_TOLERATED}) ? [] : [{_add_toleration(repr(names.LABEL_NODE), 'NoSchedule')}])",
    ]
)
