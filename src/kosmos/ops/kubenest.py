"""kubenest's operator as ``kosmosctl install --enable-kubenest`` deploys it (pure data).

``kosmos virtual-cluster-operator --provider in-cluster``: tenant control planes become
workloads of the host (:mod:`kosmos.kubenest.incluster`), so the operator needs no state
directory and no binaries, only the Kosmos image and an identity. What that identity may do
is :data:`RULES`, each rule next to the calls of :mod:`kosmos.kubenest` that need it.
:mod:`kosmos.ops.manifests` builds its ServiceAccount, RBAC and Deployment like the other
components'; this module holds what is particular to it: the rules, the flags and where its
pod may run.
"""

from __future__ import annotations

from dataclasses import dataclass

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.kubenest import settings, workloads
from kosmos.ops.rbac import READ, rule

#: ``kosmos virtual-cluster-operator``: the launcher command and its Lease.
NAME = "virtual-cluster-operator"
PROVIDER = "in-cluster"
DEFAULT_IMAGE_REPOSITORY = settings.DEFAULT_IMAGE_REPOSITORY
#: ``KEY=VALUE`` pairs as the operator's ``--control-plane-node-selector`` parses them
parse_labels = settings.parse_labels

#: Secrets, Services and workloads live in the VirtualClusters' namespaces, which can be any
#: namespace: those rules are cluster-wide (a Role per namespace would need the operator to
#: bind Roles, a wider power). The Secret rule thereby covers the node-agents' Secret
#: (kube-system/kosmos-node-agent) too, which the operator only reads by name.
RULES: tuple[Obj, ...] = (
    # VirtualClusters: watched (informer) and re-read before each step; spec.kubeconfig,
    # spec.promoteResources.nodeInfos and the finalizer are merge patches.
    rule(names.GROUP, ("virtualclusters",), (*READ, "patch")),
    # Phase and conditions (kosmos.kubenest.status): patches of the status subresource.
    rule(names.GROUP, ("virtualclusters/status",), ("patch",)),
    # The in-cluster workloads are owned by their VirtualCluster (garbage collection when the
    # operator is gone); under OwnerReferencesPermissionEnforcement that needs this.
    rule(names.GROUP, ("virtualclusters/finalizers",), ("update",)),
    # The pool: one GlobalNode per host node, created, applied (nodeIP, labels; a
    # server-side apply is a patch), its state patched, deleted when the node leaves.
    rule(names.GROUP, ("globalnodes",), (*READ, "create", "patch", "delete")),
    # The Promoted condition says where a node is while it moves.
    rule(names.GROUP, ("globalnodes/status",), ("patch",)),
    # Host nodes are watched (the pool); a node moving into a tenant is cordoned (patch) and
    # deleted from the host, and created again (labels patched) when it comes back.
    rule("", ("nodes",), (*READ, "create", "patch", "delete")),
    # A kwok node back from a tenant gets its conditions and capacity (status patch).
    rule("", ("nodes/status",), ("patch",)),
    # The drain lists a node's pods and evicts them (PodDisruptionBudgets hold); no delete.
    # The in-cluster provider lists a tenant's control-plane pods for their waiting reasons;
    # the node reconciler watches them (label kosmos.io/tenant-component) to never borrow a
    # node they run on.
    rule("", ("pods",), ("list", "watch")),
    rule("", ("pods/eviction",), ("create",)),
    # A tenant's PKI (<name>-cert), admin kubeconfig (<name>-admin-config) and control-plane
    # files (<name>-control-plane): made once, patched, deleted with the tenant (listed by
    # label); the node-agents' Secret is read. A server-side apply of a new object needs
    # create as well as patch.
    rule("", ("secrets",), ("get", "list", "create", "patch", "delete")),
    # The in-cluster tenant's Services (apiserver, etcd, coredns): created once, the coredns
    # ports and the advertise-address annotation patched, deleted by label.
    rule("", ("services",), ("get", "list", "create", "patch", "delete")),
    # etcd's StatefulSet and the other components' Deployments: read to never take over
    # another's object, applied, deleted by label.
    rule("apps", ("deployments", "statefulsets"), ("get", "list", "create", "patch", "delete")),
    # The control plane's PodDisruptionBudget: applied, deleted by label.
    rule("policy", ("poddisruptionbudgets",), ("list", "create", "patch", "delete")),
    # The event recorder creates events and aggregates repeats with a patch (count).
    rule("", ("events",), ("create", "patch")),
)


@dataclass(frozen=True)
class KubenestOptions:
    """What install passes to the operator: ``advertise_address`` (``--advertise-address``;
    empty: the operator's default, a host node's InternalIP for in-cluster tenants),
    ``node_selector`` (``--control-plane-node-selector``, where tenant control planes run)
    and ``image_repository`` (of the control-plane images: upstream's names and tags)."""

    advertise_address: str = ""
    node_selector: tuple[tuple[str, str], ...] = ()
    image_repository: str = DEFAULT_IMAGE_REPOSITORY


def flags(options: KubenestOptions) -> list[str]:
    """The operator's flags beyond ``--leader-elect``."""
    out = [f"--provider={PROVIDER}", f"--image-repository={options.image_repository}"]
    if options.advertise_address:
        out.append(f"--advertise-address={options.advertise_address}")
    out += [f"--control-plane-node-selector={k}={v}" for k, v in options.node_selector]
    return out


def affinity() -> Obj:
    """Never on a node that runs nothing (kwok's: the pod would look Running), nor on a
    leaf node; rather on control-plane nodes, which no VirtualCluster borrows (a borrowed
    node is drained, the operator with it). The tenants' control planes go by the same rule."""
    return workloads.placement()
