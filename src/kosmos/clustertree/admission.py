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

from kosmos.api import manifests
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
