"""Least-privilege RBAC rules of the components ``kosmosctl install`` deploys in the host.

Each rule names the resources and verbs a controller actually uses, with the reason next to
it, so a reviewer can check a grant against behaviour and a compromised pod cannot, for
example, create pods, bind them, or edit RBAC. No wildcard appears anywhere (a unit test
checks).
"""

from __future__ import annotations

from kosmos.api import names
from kosmos.api.objects import Obj

READ = ("get", "list", "watch")


def rule(group: str, resources: tuple[str, ...], verbs: tuple[str, ...], *names_: str) -> Obj:
    out: Obj = {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
    if names_:
        out["resourceNames"] = list(names_)
    return out


CLUSTER_MANAGER_RULES: tuple[Obj, ...] = (
    # Leaf nodes: created per member (or member node), patched with capacity, labels and
    # taints, deleted when a cluster is unjoined.
    rule("", ("nodes",), (*READ, "create", "update", "patch", "delete")),
    # Leaf node conditions, capacity and addresses are status writes.
    rule("", ("nodes/status",), ("get", "update", "patch")),
    # Root pods are watched and copied to members; a root pod whose member copy is gone is
    # force-deleted. No create, no pods/binding: the scheduler binds pods to leaf nodes,
    # the cluster-manager only follows that decision.
    rule("", ("pods",), (*READ, "delete")),
    # Member pod status is mirrored into the root pod.
    rule("", ("pods/status",), ("get", "update", "patch")),
    # What pods mount follows them to members (copies live in the members; the host objects
    # are only read). Secrets also hold member kubeconfigs.
    rule("", ("configmaps", "secrets"), READ),
    # ServiceAccounts pods use are copied to members (tokens are minted by the member).
    rule("", ("serviceaccounts",), READ),
    # Service-link environment variables and the root DNS service address are resolved in
    # the host before a pod is copied to a member. The MCS controller reads every Service
    # (exported ones) and writes the derived Services of imports (no selector).
    rule("", ("services",), (*READ, "create", "update", "patch", "delete")),
    # MCS: exported services' EndpointSlices are read; imported ones are written (one
    # server-side apply per slice) and deleted; imports exist where the namespace does.
    rule("discovery.k8s.io", ("endpointslices",), (*READ, "create", "update", "patch", "delete")),
    rule("", ("namespaces",), READ),
    # ServiceExports get a finalizer and conditions; auto-MCS creates and deletes its own.
    # ServiceImports are created, patched (ips, annotations) and deleted by the controller.
    rule(
        names.MCS_GROUP,
        ("serviceexports", "serviceimports"),
        (*READ, "create", "update", "patch", "delete"),
    ),
    rule(
        names.MCS_GROUP,
        ("serviceexports/status", "serviceimports/status"),
        ("get", "update", "patch"),
    ),
    # The kosmos-leaf StorageClass names the member class of claims it provisions.
    rule("storage.k8s.io", ("storageclasses",), READ),
    # Claims bound in a member are mirrored back (metadata patch + status); their volumes
    # appear in the root (created, updated, deleted with the member's PV).
    rule("", ("persistentvolumeclaims",), (*READ, "update", "patch")),
    rule("", ("persistentvolumeclaims/status",), ("update", "patch")),
    rule("", ("persistentvolumes",), (*READ, "create", "update", "patch", "delete")),
    rule("", ("persistentvolumes/status",), ("update", "patch")),
    # The event recorder creates events and aggregates repeats with a patch (count).
    rule("", ("events",), ("create", "patch")),
    # Clusters: the finalizer kosmos.io/cluster-manager is added and removed (update/patch),
    # leaf node items go to status; clusters/finalizers lets objects it owns (leaf nodes)
    # block the Cluster's deletion under OwnerReferencesPermissionEnforcement.
    rule(names.GROUP, ("clusters",), (*READ, "update", "patch")),
    rule(names.GROUP, ("clusters/status",), ("get", "update", "patch")),
    rule(names.GROUP, ("clusters/finalizers",), ("update",)),
    # Pod convert policies are read to rewrite pods sent to members.
    rule(names.GROUP, ("podconvertpolicies", "clusterpodconvertpolicies"), READ),
    # The leaf nodes' kubelet endpoint authenticates the apiserver and other callers as a
    # kubelet does: bearer tokens through a TokenReview, the caller's right to the node's
    # logs/exec/stats through a SubjectAccessReview (the client CA it reads from
    # kube-system/extension-apiserver-authentication: EXTENSION_AUTH_READER below).
    rule("authentication.k8s.io", ("tokenreviews",), ("create",)),
    rule("authorization.k8s.io", ("subjectaccessreviews",), ("create",)),
    # Application migration (PromotePolicy): the policy's finalizer and phases (the rest of
    # what a migration does needs MIGRATION_RULES).
    rule(names.GROUP, ("promotepolicies",), (*READ, "update", "patch")),
    rule(names.GROUP, ("promotepolicies/status",), ("get", "update", "patch")),
)

#: Only with ``kosmosctl install --enable-migration`` (its own ClusterRole): a migration
#: rebuilds in the host whatever the member namespace held — any built-in or custom
#: resource, RBAC included (escalate/bind let it copy Roles it does not hold itself) — and
#: removes it again at rollback. No narrower rule describes "what a user's namespace may
#: contain", so this power is asked for explicitly and never granted by default.
MIGRATION_RULES: tuple[Obj, ...] = (
    rule("*", ("*",), (*READ, "create", "patch", "delete")),
    rule("rbac.authorization.k8s.io", ("roles", "clusterroles"), ("escalate", "bind")),
)

#: The built-in Role in kube-system that reads ConfigMap extension-apiserver-authentication
#: (the client CA and request-header settings), bound rather than granted again.
EXTENSION_AUTH_READER = "extension-apiserver-authentication-reader"

#: A Role in kube-node-lease (not cluster-wide): each leaf node's heartbeat Lease. No delete:
#: a node Lease is owned by its Node and garbage-collected with it.
NODE_LEASE_RULES: tuple[Obj, ...] = (
    rule("coordination.k8s.io", ("leases",), (*READ, "create", "update", "patch")),
)

NETWORK_MANAGER_RULES: tuple[Obj, ...] = (
    # Clusters: the finalizer kosmos.io/network-manager is added and removed (patch);
    # discovered pod/service CIDRs and the CIDRsDiscovered condition go to status.
    rule(names.GROUP, ("clusters",), (*READ, "patch")),
    rule(names.GROUP, ("clusters/status",), ("get", "patch")),
    # One ClusterNode per member node (server-side apply), deleted when the node goes;
    # its Ready condition is a status apply.
    rule(names.GROUP, ("clusternodes",), (*READ, "create", "patch", "delete")),
    rule(names.GROUP, ("clusternodes/status",), ("get", "patch")),
    # Outputs of the planner: one NodeConfig per ClusterNode, deleted with its member.
    rule(names.GROUP, ("nodeconfigs",), (*READ, "create", "update", "patch", "delete")),
    rule(names.GROUP, ("nodeconfigs/status",), ("get", "update", "patch")),
    # Member kubeconfigs are Secrets in kosmos-system.
    rule("", ("secrets",), READ),
    # With ClusterLink on the host itself (root Cluster), the host is also a member: its
    # nodes, the kube-system apiserver pod, the CNI ConfigMaps and Calico's pools and block
    # affinities are read; the service CIDR probe is a dry-run Service create (nothing is
    # stored); ServiceCIDRs add ranges; CRDs tell whether Calico is installed.
    rule("", ("nodes", "pods", "configmaps"), READ),
    rule("", ("services",), ("create",)),
    rule("networking.k8s.io", ("servicecidrs",), READ),
    rule("apiextensions.k8s.io", ("customresourcedefinitions",), READ),
    rule("crd.projectcalico.org", ("blockaffinities",), READ),
    # ...and, as in every Calico member, disabled IPPools for the other clusters' ranges.
    rule("crd.projectcalico.org", ("ippools",), (*READ, "create", "patch", "delete")),
    rule("", ("events",), ("create", "patch")),
    # The tunnel master key Secret is created when a tunnel first needs it (create cannot
    # be narrowed by name; reads of it are covered by the Secrets rule above).
    rule("", ("secrets",), ("create",)),
)


#: Every member's agents (bound per member by ``join --enable-link``): their NodeConfig and
#: its status, their ClusterNode (NIC, addresses, gateway role, WireGuard key: patch), the
#: Cluster (NIC choice). Names are not known cluster-wide, hence no resourceNames here; the
#: per-member Role below narrows what only some objects need.
AGENT_RULES: tuple[Obj, ...] = (
    rule(names.GROUP, ("nodeconfigs",), READ),
    rule(names.GROUP, ("nodeconfigs/status",), ("get", "patch")),
    rule(names.GROUP, ("clusternodes",), (*READ, "patch")),
    rule(names.GROUP, ("clusters",), READ),
)


PROBE_RULES: tuple[Obj, ...] = (
    # The local ServiceImports are watched; their kosmos.io/disconnected-address annotation
    # is the prober's only write (a merge patch).
    rule(names.MCS_GROUP, ("serviceimports",), (*READ, "patch")),
)


def agent_cluster_rules(gateway_lease: str, key_secrets: list[str]) -> tuple[Obj, ...]:
    """A Role in kosmos-system for one member's agents: its gateway Lease, the tunnel keys."""
    group = "coordination.k8s.io"
    return (
        rule(group, ("leases",), ("create",)),
        rule(group, ("leases",), ("get", "update", "patch"), gateway_lease),
        rule("", ("secrets",), ("get",), *key_secrets),
    )


def leader_election_rules(lease: str) -> tuple[Obj, ...]:
    """A namespaced Role for one leader-election Lease: read and renew only that Lease.

    ``create`` cannot be limited to a name (the name is not known before the object exists),
    so it is a separate rule; get/update are limited to the component's own Lease.
    """
    group = "coordination.k8s.io"
    return (
        rule(group, ("leases",), ("create",)),
        rule(group, ("leases",), ("get", "update", "patch"), lease),
    )
