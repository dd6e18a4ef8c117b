"""k8s-in-k8s, the pure part: a VirtualCluster with ``spec.pluginSet.enabled: [{name:
clustertree}]`` keeps its nodes in the host and sees them as ClusterTree leaf nodes.

Instead of moving the assigned nodes, the operator runs a ClusterTree (``kosmos
cluster-manager``) against the tenant's apiserver, with the host as its one member:

* the Kosmos CRDs in the tenant (``crds``);
* in the host, a ServiceAccount ``kosmos-tree-<name>`` in the VirtualCluster's namespace,
  bound to the ClusterRole ``kosmos-tree-<namespace>-<name>`` holding exactly what
  ClusterTree calls on a member (``RULES``), and its token Secret;
* in the tenant, that token as a kubeconfig (Secret ``kosmos-system/kosmos-kubeconfig-
  kosmos-host``) and the Cluster ``kosmos-host`` referring to it: ClusterTree on, ClusterLink
  off, one one-to-one leaf model per assigned node (the leaf node has the host node's name);
* the cluster-manager runs with ``--owner <VirtualCluster uid>``: its pods and copies in the
  host carry that label, so tenants sharing the host never take each other's pods for
  orphans, and the operator removes exactly them when the tenant goes.

What the tenant's admin can do in the host through that token is ``RULES``, cluster-wide
(docs/kubenest.md, "k8s-in-k8s" says what that means).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from kosmos.api import manifests, names
from kosmos.api.cluster import (
    Cluster,
    ClusterLinkOptions,
    ClusterSpec,
    ClusterTreeOptions,
    LeafModel,
    NodeSelector,
    SecretRef,
)
from kosmos.api.kubeconfig import with_token
from kosmos.api.objects import Obj, name_of, namespace_of
from kosmos.api.schema import manifest
from kosmos.kubenest import phases

#: the Secret (in the tenant's kosmos-system) the tenant's Cluster refers to
KUBECONFIG_SECRET = f"kosmos-kubeconfig-{names.TENANT_HOST_CLUSTER}"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_ANNOTATION = "kubernetes.io/service-account.name"

_READ = ["get", "list", "watch"]
_COPY = [*_READ, "create", "update", "delete"]
#: What ClusterTree calls on a member with the multi-cluster services off
#: (kosmos.clustertree: leafnodes/leafread read nodes and pods, pods.py creates, patches and
#: deletes pods and creates their namespaces, copies.py keeps ConfigMaps, Secrets and
#: ServiceAccounts, volumes.py claims, kubelet.py streams logs and relays exec, attach and
#: port-forward). Not granted: ``nodes/proxy`` (the kubelet API of every node: leafread's
#: stats of leaf nodes stay empty), anything of the MCS, Events, RBAC.
RULES: tuple[Obj, ...] = (
    {"apiGroups": [""], "resources": ["nodes"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["pods"], "verbs": [*_READ, "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {
        "apiGroups": [""],
        "resources": ["pods/exec", "pods/attach", "pods/portforward"],
        "verbs": ["create"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "serviceaccounts"], "verbs": _COPY},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
        "verbs": [*_READ, "create", "delete"],
    },
)


def enabled(vc: Mapping[str, Any]) -> bool:
    """The VirtualCluster asks for the ClusterTree plugin (and does not disable it)."""
    plugins = (vc.get("spec") or {}).get("pluginSet") or {}
    wanted = {str(p.get("name")) for p in plugins.get("enabled") or []}
    refused = {str(p.get("name")) for p in plugins.get("disabled") or []}
    return names.PLUGIN_CLUSTERTREE in wanted - refused


def owner(vc: Mapping[str, Any]) -> str:
    """The tenant's ClusterTree owner label value: the VirtualCluster's uid (a label value,
    unique, and a re-created VirtualCluster of the same name does not inherit pods)."""
    return str(vc["metadata"].get("uid") or "")


def owner_selector(vc: Mapping[str, Any]) -> str:
    return f"{names.LABEL_TREE_OWNER}={owner(vc)}"


def service_account(vc: Mapping[str, Any]) -> str:
    return f"kosmos-tree-{name_of(vc)}"


def token_secret(vc: Mapping[str, Any]) -> str:
    return f"{service_account(vc)}-token"


def cluster_role(vc: Mapping[str, Any]) -> str:
    """Cluster-scoped, so the namespace is part of the name (two tenants, one name each)."""
    return f"kosmos-tree-{namespace_of(vc)}-{name_of(vc)}"


def _labels(vc: Mapping[str, Any]) -> dict[str, str]:
    return {names.LABEL_VIRTUAL_CLUSTER: phases.label_value(vc)}


def _owned(vc: Mapping[str, Any], meta: Obj) -> Obj:
    """Namespaced objects are owned by the VirtualCluster (the garbage collector finishes
    what the operator did not); the cluster-scoped ClusterRole(Binding) cannot be."""
    meta["ownerReferences"] = phases.owner_references(vc)
    return meta


def host_objects(vc: Mapping[str, Any]) -> list[Obj]:
    """The host credential of the tenant's ClusterTree, in the order they are applied."""
    labels, namespace, account = _labels(vc), namespace_of(vc), service_account(vc)
    sa = manifests.service_account(account, namespace, labels)
    _owned(vc, sa["metadata"])
    meta = _owned(vc, manifests.metadata(token_secret(vc), labels, namespace))
    meta["annotations"] = {SA_ANNOTATION: account}
    token = manifests.secret(meta, secret_type=TOKEN_TYPE)
    role = manifests.cluster_role(cluster_role(vc), RULES, labels)
    subject = manifests.service_account_subject(account, namespace)
    binding = manifests.cluster_role_binding(cluster_role(vc), cluster_role(vc), [subject], labels)
    return [sa, token, role, binding]


def token_of(secret: Obj) -> tuple[str, str] | None:
    """(token, CA as base64) once the token controller has filled the Secret."""
    data = secret.get("data") or {}
    if not data.get("token") or not data.get("ca.crt"):
        return None
    return base64.b64decode(data["token"]).decode(), str(data["ca.crt"])


def kubeconfig(server: str, token: str, ca_b64: str) -> str:
    """The host as the tenant's ClusterTree reaches it: the ServiceAccount's token."""
    name = names.TENANT_HOST_CLUSTER
    ca = base64.b64decode(ca_b64)
    return with_token(server, ca, token, user=name, cluster=name, context=name)


def tenant_secret(text: str) -> Obj:
    meta = manifests.metadata(KUBECONFIG_SECRET, {}, names.SYSTEM_NAMESPACE)
    data = {names.KUBECONFIG_SECRET_KEY: base64.b64encode(text.encode()).decode()}
    return manifests.secret(meta, secret_type="Opaque", data=data)


TOLERATION_POLICY = "kosmos-tenant-leaf-tolerations"


def toleration_policy() -> tuple[Obj, Obj]:
    """Every pod of the tenant tolerates the leaf taint (``kosmos.io/node``, NoSchedule, which
    ClusterTree puts on every leaf node) and the NoExecute lifecycle taints without a time
    limit: the leaf nodes are the tenant's only nodes, so its users write pods as for any
    cluster, and a host the tenant's ClusterTree cannot reach for a while does not get their
    pods evicted (kosmos.clustertree.admission says why). The same CEL patch as the host's
    leaf policies (``manifests.LEAF_TOLERATIONS_PATCH``), for every pod."""
    return manifests.mutating_admission_policy(
        TOLERATION_POLICY,
        {},
        match_condition=("every-pod", "true"),
        json_patch=manifests.LEAF_TOLERATIONS_PATCH,
    )


def cluster_object(nodes: Sequence[str]) -> Obj:
    """The tenant's Cluster for the host: one one-to-one leaf per node, named as the node.

    No node: ClusterTree off (an empty ``leafModels`` would mean one leaf node for the whole
    host)."""
    tree = ClusterTreeOptions(enable=bool(nodes))
    if nodes:
        tree.leaf_models = [
            LeafModel(leaf_node_name=n, node_selector=NodeSelector(node_name=n))
            for n in sorted(nodes)
        ]
    spec = ClusterSpec(
        kubeconfig_secret_ref=SecretRef(name=KUBECONFIG_SECRET),
        cluster_link_options=ClusterLinkOptions(enable=False),
        cluster_tree_options=tree,
    )
    body: Obj = manifest(Cluster, names.TENANT_HOST_CLUSTER, spec=spec)
    return body
