"""Host-side objects ClusterTree relies on, installed with it (pure data).

**No eviction because a member is away.** When a member cannot be reached its leaf nodes
turn NotReady and the host's node-lifecycle controller taints them
``node.kubernetes.io/unreachable|not-ready:NoExecute``; the taint-eviction controller then
deletes every pod that does not tolerate the taint forever — by default after 300 s, a
tolerance the DefaultTolerationSeconds admission plugin adds to every pod. Deleting the host
pod would make us delete the member pod (which is healthy) once the member returns, while
its owner has already made a replacement: churn and duplicates, the failure the seed's
"Kosmos Node NotReady" page describes.

The seed answers with a Kyverno policy denying the node controller's deletes. We use the
apiserver's own MutatingAdmissionPolicy (GA in Kubernetes 1.36, no webhook server, nothing
that can be down): pods that tolerate the leaf-node taint ``kosmos.io/node`` — the only pods
that can land on leaf nodes — get the two NoExecute tolerations without a time limit, in
place of the 300 s defaults. A toleration the user set with another value is kept (their
choice of failover time wins). Pods that cannot run on leaf nodes are untouched. The
decision is made once, at creation, so it also holds while the cluster-manager itself is
down; pods created before the policy was installed keep their default tolerations.
"""

from __future__ import annotations

from kosmos.api.objects import Obj

POLICY_NAME = "kosmos-leaf-pod-tolerations"
LIFECYCLE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
DEFAULT_TOLERATION_SECONDS = 300

_KEYS = ", ".join(f"'{k}'" for k in LIFECYCLE_TAINTS)

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
    policy: Obj = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": dict(labels)},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "matchConditions": [{"name": "may-run-on-leaf-nodes", "expression": MAY_RUN_ON_LEAF}],
            "variables": [{"name": "kept", "expression": KEPT}],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": PATCH}}],
        },
    }
    binding: Obj = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": dict(labels)},
        "spec": {"policyName": POLICY_NAME},
    }
    return policy, binding


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
