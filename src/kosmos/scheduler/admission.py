"""The leaf-node taint, tolerated by every pod of the kosmos-scheduler profile (pure data).

Leaf nodes carry ``kosmos.io/node=true:NoSchedule`` so that ordinary pods never land on them
by accident. A pod that names ``schedulerName: kosmos-scheduler`` has asked for Kosmos to
place it, so it must be able to reach leaf nodes without writing the toleration itself. The
options were two:

* disable kube-scheduler's TaintToleration plugin in the profile and re-implement it in the
  extender with an exception for the leaf taint (a LeafNodeTaintToleration plugin).
  Then every taint would depend on the extender: a slow or failing extender would mean no
  taint checks at all, and PreferNoSchedule scoring would have to be copied too;
* add the toleration when the pod is created, with the apiserver's own
  MutatingAdmissionPolicy (GA in 1.36: no webhook server, nothing that can be down), and
  leave TaintToleration exactly as upstream.

We do the second. Every other taint — control-plane, NoExecute lifecycle taints, a member's
own taints copied to one-to-one leaf nodes — is judged by the unchanged plugin, and the
toleration is visible in the pod (``kubectl get pod -o yaml`` shows why it may run on a leaf
node). The toleration is ``Exists`` on the key with effect NoSchedule, so it covers exactly
the leaf taint. Pods already tolerating it (key ``kosmos.io/node`` with operator Exists, or
an empty-key Exists) are left alone. Whether the pod may really use a leaf node is the
distribution policy's call, made by the extender.

Pods that may run on leaf nodes also lose the 300 s limit of the default NoExecute
tolerations for unreachable/not-ready nodes, as ClusterTree's ``kosmos-leaf-pod-tolerations``
does for pods that tolerate the leaf taint. This policy does it itself for its pods instead
of relying on that one: the apiserver runs admission policies in no guaranteed order (its
policy list comes from a Go map), and that one skips a pod this one has not reached yet.
Applied after it, that policy finds nothing left to change.
"""

from __future__ import annotations

from kosmos.api import manifests, names
from kosmos.api.objects import Obj

POLICY_NAME = "kosmos-scheduler-leaf-toleration"
TOLERATION = {"key": names.LABEL_NODE, "operator": "Exists", "effect": "NoSchedule"}

SCHEDULED_BY_KOSMOS = f"object.spec.schedulerName == '{names.SCHEDULER_NAME}'"
#: As ClusterTree's admission policy: pods that may run on leaf nodes are never evicted
#: because a member is away (see docs/clustertree.md for why).
PATCH = manifests.LEAF_TOLERATIONS_PATCH


def toleration_policy(labels: dict[str, str]) -> tuple[Obj, Obj]:
    """The MutatingAdmissionPolicy and its binding (cluster-wide, pod CREATE only)."""
    return manifests.mutating_admission_policy(
        POLICY_NAME,
        labels,
        match_condition=("scheduled-by-kosmos", SCHEDULED_BY_KOSMOS),
        json_patch=PATCH,
    )
