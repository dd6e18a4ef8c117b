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

# Annotations
ANNOTATION_CLUSTER_ROLE = "kosmos.io/cluster-role"  # "root" on the host's own Cluster
ANNOTATION_OWNED_BY_CLUSTER = "kosmos-io/owned-by-cluster"
ANNOTATION_GLOBAL = "kosmos.io/global"

# Taints
TAINT_LEAF = {"key": LABEL_NODE, "value": "true", "effect": "NoSchedule"}

# Finalizers
FINALIZER_CLUSTER_MANAGER = "kosmos.io/cluster-manager"
FINALIZER_CLUSTERLINK = "kosmos.io/cluster-start-finalizer"

# Secrets holding member credentials
KUBECONFIG_SECRET_KEY = "kubeconfig"
