"""Well-known names of the kosmos.io API: group, labels, annotations, taints, finalizers."""

from __future__ import annotations

GROUP = "kosmos.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MCS_GROUP = "multicluster.x-k8s.io"
CATEGORY = "kosmos-io"

SYSTEM_NAMESPACE = "kosmos-system"
ROOT_CLUSTER_NAME = "kosmos-control-cluster"

# Labels
LABEL_NODE = "kosmos.io/node"  # on leaf nodes in the host (also the taint key)
LABEL_ROLE = "kubernetes.io/role"  # "agent" on leaf nodes
LABEL_EXCLUDE = "kosmos.io/exclude"
LABEL_JOIN = "kosmos.io/join"
LABEL_CLUSTER = "kosmos.io/cluster"  # on ClusterNode objects
LABEL_POD = "kosmos-io/pod"  # on pods ClusterTree created in a member
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"  # "kosmos" on objects copied into a member
MANAGED_BY_KOSMOS = "kosmos"
LABEL_OWNER_CLUSTER = "kosmos.io/owner-cluster"  # on leaf nodes: the Cluster they represent
#: on a member's pods and copies of a cluster-manager run with ``--owner`` (several control
#: planes sharing one member, kubenest's k8s-in-k8s): only that cluster-manager's
LABEL_TREE_OWNER = "kosmos.io/tree-owner"
LABEL_ROLE_AGENT = "agent"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_REGION = "topology.kubernetes.io/region"

# Annotations
ANNOTATION_CLUSTER_ROLE = "kosmos.io/cluster-role"  # "root" on the host's own Cluster
ANNOTATION_OWNED_BY_CLUSTER = "kosmos-io/owned-by-cluster"
ANNOTATION_GLOBAL = "kosmos.io/global"
ANNOTATION_LEAF_MODE = "kosmos.io/leaf-mode"  # whole-cluster | one-to-one | group
ANNOTATION_LARGEST_FREE = "kosmos.io/largest-free-node"  # JSON: biggest per-node free block
ANNOTATION_HOST_POD_UID = "kosmos.io/host-pod-uid"  # on member pods: the host pod they mirror
ANNOTATION_HOST_NODE = "kosmos.io/host-node"  # on member pods: the host leaf node
ANNOTATION_CLUSTER_SELECTOR = "kosmos.io/cluster-selector"  # on host pods: member scheduling
ANNOTATION_CONVERT_POLICY = "kosmos-io/convert-policy"
ANNOTATION_CLUSTER_OWNERS = "kosmos-io/cluster-owners"  # host objects copied to members
ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANNOTATION_MEMBER_CLAIM = "kosmos.io/member-claim"  # on host PVs Kosmos made: <cluster>/<ns>/<name>
ANNOTATION_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

# Storage
LEAF_PROVISIONER = "kosmos.io/leaf"  # host StorageClasses whose claims live in a member

# Scheduling
SCHEDULER_NAME = "kosmos-scheduler"  # the kube-scheduler profile with the Kosmos extender

# Taints
TAINT_LEAF = {"key": LABEL_NODE, "value": "true", "effect": "NoSchedule"}

# Finalizers
FINALIZER_CLUSTER_MANAGER = "kosmos.io/cluster-manager"
FINALIZER_CLUSTERLINK = "kosmos.io/cluster-start-finalizer"  # the Go original's
FINALIZER_NETWORK_MANAGER = "kosmos.io/network-manager"  # ClusterLink's member cleanup

# Multi-cluster services (the MCS API's well-known names, then Kosmos's own)
MCS_ZONE = "clusterset.local"  # the MCS DNS specification's <clusterset-zone>
LABEL_MCS_SERVICE_NAME = "multicluster.kubernetes.io/service-name"  # on imported slices
LABEL_MCS_SOURCE_CLUSTER = "multicluster.kubernetes.io/source-cluster"  # on imported slices
LABEL_SLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_SLICE_SERVICE_NAME = "kubernetes.io/service-name"  # kube-proxy programs the slice for it
MCS_CONTROLLER = "mcs-controller.kosmos.io"  # managed-by value of the slices Kosmos writes
ANNOTATION_DERIVED_SERVICE = "multicluster.kubernetes.io/derived-service"  # on ServiceImports
ANNOTATION_AUTO_MCS = "kosmos.io/auto-create-mcs"  # on host Services: export to every member
ANNOTATION_ADDRESS = "kosmos.io/address"  # on ServiceImports: every candidate endpoint address
ANNOTATION_DISCONNECTED = "kosmos.io/disconnected-address"  # on ServiceImports: probe failures
FINALIZER_MCS = "kosmos.io/multi-cluster-service-finalizer"

# Secrets holding member credentials
KUBECONFIG_SECRET_KEY = "kubeconfig"

# application migration (PromotePolicy)
LABEL_PROMOTED_FROM = "kosmos.io/promoted-from"  # on host Namespaces a migration made: the Cluster
#: ``<policy ns>/<policy name>``: on member pods being migrated (the member side of ClusterTree's
#: adoption handshake) and on every host object a migration created
ANNOTATION_PROMOTE_POLICY = "kosmos.io/promote-policy"
#: on host pods a migration rebuilt: the uid of the running member pod to adopt
ANNOTATION_MEMBER_POD_UID = "kosmos.io/member-pod-uid"
#: on a host Namespace a migration made: the leaf node its new pods are bound to
ANNOTATION_PROMOTED_TO_NODE = "kosmos.io/promoted-to-node"
FINALIZER_PROMOTE = "kosmos.io/promote-policy"
LABEL_PROMOTE_BACKUP = "kosmos.io/promote-backup"  # on backup Secrets: the policy's key

# netdoctor (``kosmosctl netdoctor``: floater DaemonSets for connectivity checks)
LABEL_KWOK_NODE = "kwok.x-k8s.io/node"  # kwok's simulated nodes run no containers
NETDOCTOR_MANAGED_BY = "kosmosctl-netdoctor"  # app.kubernetes.io/managed-by of its objects
FLOATER = "kosmos-floater"  # the floater DaemonSet on the pod network (and its ServiceAccount)
FLOATER_HOST = "kosmos-floater-host"  # the floater DaemonSet on the node network
FLOATER_PORT = 8889  # TCP (HTTP) and UDP (echo) on the same number

# kubenest (``kosmos virtual-cluster-operator``: tenant control planes on borrowed host nodes)
FINALIZER_VIRTUAL_CLUSTER = "kosmos.io/virtualcluster-controller"
LABEL_VIRTUAL_CLUSTER = "kosmos.io/virtual-cluster"  # on objects made for a tenant: <ns>.<name>
#: on a tenant's control-plane workloads and pods (in-cluster provider): which component
LABEL_TENANT_COMPONENT = "kosmos.io/tenant-component"
LABEL_NODE_STATE = "kosmos-io/state"  # on pool nodes: free | occupied (the Go original's)
FIELD_MANAGER_KUBENEST = "kosmos-kubenest"
#: kwok's stage files inside the Kosmos image (``<set>/<stage>.yaml``, as under kwok's
#: ``kustomize/stage``): the operator's pod has no Go module cache to read them from
KWOK_STAGES_DIR = "/usr/share/kosmos/kwok/stage"
#: a directory laid out the same way, which the operator reads before the two above
ENV_KWOK_STAGES = "KOSMOS_KWOK_STAGES"
PLUGIN_CLUSTERTREE = "clustertree"  # spec.pluginSet.enabled: host nodes as leaf nodes
TENANT_HOST_CLUSTER = "kosmos-host"  # the tenant's Cluster naming the host (k8s-in-k8s)
