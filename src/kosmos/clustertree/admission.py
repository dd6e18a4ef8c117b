"""Host-side objects ClusterTree relies on, installed with it (pure data).

**No eviction because a member is away.** When a member cannot be reached its leaf nodes
turn NotReady and the host's node-lifecycle controller taints them
``node.kubernetes.io/unreachable|not-ready:NoExecute``; the taint-eviction controller then
deletes every pod that does not tolerate the taint forever — by default after 300 s, a
tolerance the DefaultTolerationSeconds admission plugin adds to every pod. Deleting the host
pod would make us delete the member pod (which is healthy) once the member returns, while
its owner has already made a replacement: churn and duplicates.

Rather than a policy engine (e.g. Kyverno) denying the node controller's deletes, we use the
apiserver's own MutatingAdmissionPolicy (GA in Kubernetes 1.36, no webhook server, nothing
that can be down): pods that tolerate the leaf-node taint ``kosmos.io/node`` — the only pods
that can land on leaf nodes — get the two NoExecute tolerations without a time limit, in
place of the 300 s defaults. A toleration the user set with another value is kept (their
choice of failover time wins). Pods that cannot run on leaf nodes are untouched. The
decision is made once, at creation, so it also holds while the cluster-manager itself is
down; pods created before the policy was installed keep their default tolerations
(docs/clustertree.md, "A member that is away").
"""

from __future__ import annotations

from kosmos.api import manifests, names
from kosmos.api.manifests import DEFAULT_TOLERATION_SECONDS, NODE_LIFECYCLE_TAINTS
from kosmos.api.objects import Obj

POLICY_NAME = "kosmos-leaf-pod-tolerations"

_KEYS = ", ".join(f"'{k}'" for k in NODE_LIFECYCLE_TAINTS)

MAY_RUN_ON_LEAF = (
    "has(object.spec.tolerations) && object.spec.tolerations.exists(t, "
    "(has(t.key) && t.key == 'kosmos.io/node') || "
    "(!has(t.key) && has(t.operator) && t.operator == 'Exists'))"
)
KEPT = (
    "object.spec.tolerations.filter(t, !(has(t.key) && "
    f"t.key in [{_KEYS}] && has(t.tolerationSeconds) && "
    f"t.tolerationSeconds == {DEFAULT_TOLERATION_SECONDS}))"
)
PATCH = (
    "[JSONPatch{op: 'replace', path: '/spec/tolerations', value: variables.kept + "
    f"[{_KEYS}].filter(k, !variables.kept.exists(t, has(t.key) && t.key == k)).map(k, "
    "Object.spec.tolerations{key: k, operator: 'Exists', effect: 'NoExecute'})}]"
)


def toleration_policy(labels: dict[str, str]) -> tuple[Obj, Obj]:
    """The MutatingAdmissionPolicy and its binding (cluster-wide)."""
    return manifests.mutating_admission_policy(
        POLICY_NAME,
        labels,
        match_condition=("may-run-on-leaf-nodes", MAY_RUN_ON_LEAF),
        variables=[("kept", KEPT)],
        json_patch=PATCH,
    )


PLACEMENT_POLICY_NAME = "kosmos-promoted-pod-placement"
_OWNER = names.LABEL_OWNER_CLUSTER
_SELECTOR = "object.spec.nodeSelector"
#: the pod has not chosen a member itself
PLACEMENT_UNCHOSEN = f"!has({_SELECTOR}) || !('{_OWNER}' in {_SELECTOR})"
_CLUSTER = f"namespaceObject.metadata.labels['{names.LABEL_PROMOTED_FROM}']"
_ANNOTATIONS = "namespaceObject.metadata.annotations"
_LEAF = f"{_ANNOTATIONS}['{names.ANNOTATION_PROMOTED_TO_NODE}']"
#: bound to the namespace's leaf when it names one: the template's nodeSelector, affinity and
#: tolerations were written for the member's nodes, which the host's scheduler cannot see
PLACEMENT_BIND = (
    f"(!has(object.spec.nodeName) && has({_ANNOTATIONS}) && "
    f"'{names.ANNOTATION_PROMOTED_TO_NODE}' in {_ANNOTATIONS} ? "
    f"[JSONPatch{{op: 'add', path: '/spec/nodeName', value: {_LEAF}}}] : [])"
)
PLACEMENT_PATCH = (
    f"(has({_SELECTOR}) ? [JSONPatch{{op: 'add', path: '/spec/nodeSelector/"
    f"{_OWNER.replace('/', '~1')}', value: {_CLUSTER}}}] : [JSONPatch{{op: 'add', "
    f"path: '/spec/nodeSelector', value: {{'{_OWNER}': {_CLUSTER}}}}}]) + "
    f"{PLACEMENT_BIND} + {manifests.LEAF_TOLERATIONS_PATCH}"
)


def promoted_pod_placement(labels: dict[str, str]) -> tuple[Obj, Obj]:
    """New pods of a migrated namespace run in the member it came from.

    A namespace that application migration (PromotePolicy) moved from a member to the host
    carries ``kosmos.io/promoted-from=<cluster>`` and ``kosmos.io/promoted-to-node=<leaf>``.
    Its workloads were rebuilt in the host
    around the member's running pods; a pod they create later (a scale-up, a replacement)
    must land on that member's leaf nodes like its siblings, without the user editing the
    workload: its template is left exactly as the member had it, or a Deployment's
    pod-template-hash would change and the host would roll every pod. So the pod itself
    gets, at creation, ``nodeSelector[kosmos.io/owner-cluster] = <cluster>`` (leaf nodes
    carry that label), the leaf toleration and the unlimited NoExecute tolerations of
    ``toleration_policy``, and it is bound to the namespace's leaf node (``spec.nodeName``):
    its nodeSelector, affinity and tolerations were written for the member's nodes, which
    the host's scheduler cannot see, and they still place its member copy there. A pod that
    already selects an owner cluster is left alone.
    """
    return manifests.mutating_admission_policy(
        PLACEMENT_POLICY_NAME,
        labels,
        match_condition=("owner-cluster-not-chosen", PLACEMENT_UNCHOSEN),
        json_patch=PLACEMENT_PATCH,
        namespace_selector={
            "matchExpressions": [{"key": names.LABEL_PROMOTED_FROM, "operator": "Exists"}]
        },
    )


LEAF_STORAGE_CLASS = "kosmos-leaf"


def leaf_storage_class(labels: dict[str, str]) -> Obj:
    """Claims of this class are provisioned in the member of the leaf node a pod lands on."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LEAF_STORAGE_CLASS, "labels": dict(labels)},
        "provisioner": "kosmos.io/leaf",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": False,
    }
