"""Kubernetes resource types (group/version/plural) as plain data: every one Kosmos uses.

All ``Resource`` constants live here, built-in and kosmos.io alike, so a component, the CLI
and the tests name a resource the same way (a unit test checks the kosmos.io ones against
the kinds the CRDs are generated from).
"""

from __future__ import annotations

from dataclasses import dataclass

from kosmos.api import names


@dataclass(frozen=True)
class Resource:
    """A REST resource: enough to build its URL and to name it in logs and metrics."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """URL path; a namespaced resource without ``namespace`` means all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("", "v1", "pods", "Pod")
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
SERVICES = Resource("", "v1", "services", "Service")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PERSISTENTVOLUMES = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
DAEMONSETS = Resource("apps", "v1", "daemonsets", "DaemonSet")
PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False)
PRIORITYCLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False)
MUTATING_ADMISSION_POLICIES = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingadmissionpolicies",
    "MutatingAdmissionPolicy",
    False,
)
MUTATING_ADMISSION_POLICY_BINDINGS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingadmissionpolicybindings",
    "MutatingAdmissionPolicyBinding",
    False,
)
CUSTOMRESOURCEDEFINITIONS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)

RBAC_GROUP = "rbac.authorization.k8s.io"
CLUSTERROLES = Resource(RBAC_GROUP, "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTERROLEBINDINGS = Resource(
    RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
ROLES = Resource(RBAC_GROUP, "v1", "roles", "Role")
ROLEBINDINGS = Resource(RBAC_GROUP, "v1", "rolebindings", "RoleBinding")
SELF_SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False
)
SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False
)
TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False)
APISERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", False)
SERVICECIDRS = Resource("networking.k8s.io", "v1", "servicecidrs", "ServiceCIDR", False)

# Calico's CRDs, which ClusterLink reads and writes in members that run Calico.
CALICO_GROUP = "crd.projectcalico.org"
IPPOOLS = Resource(CALICO_GROUP, "v1", "ippools", "IPPool", namespaced=False)
BLOCKAFFINITIES = Resource(CALICO_GROUP, "v1", "blockaffinities", "BlockAffinity", False)


def _kosmos(plural: str, kind: str, namespaced: bool) -> Resource:
    return Resource(names.GROUP, names.VERSION, plural, kind, namespaced)


# kosmos.io/v1alpha1 (the CRDs in deploy/crds/)
CLUSTERS = _kosmos("clusters", "Cluster", False)
CLUSTERNODES = _kosmos("clusternodes", "ClusterNode", False)
NODECONFIGS = _kosmos("nodeconfigs", "NodeConfig", False)
POD_CONVERT_POLICIES = _kosmos("podconvertpolicies", "PodConvertPolicy", True)
CLUSTER_POD_CONVERT_POLICIES = _kosmos(
    "clusterpodconvertpolicies", "ClusterPodConvertPolicy", False
)
DISTRIBUTION_POLICIES = _kosmos("distributionpolicies", "DistributionPolicy", True)
CLUSTER_DISTRIBUTION_POLICIES = _kosmos(
    "clusterdistributionpolicies", "ClusterDistributionPolicy", False
)
PROMOTE_POLICIES = _kosmos("promotepolicies", "PromotePolicy", True)
VIRTUAL_CLUSTERS = _kosmos("virtualclusters", "VirtualCluster", True)
GLOBAL_NODES = _kosmos("globalnodes", "GlobalNode", False)

# multicluster.x-k8s.io (the MCS API): v1beta1 stored, v1alpha1 served with the same schema
SERVICE_EXPORTS = Resource(names.MCS_GROUP, "v1beta1", "serviceexports", "ServiceExport")
SERVICE_IMPORTS = Resource(names.MCS_GROUP, "v1beta1", "serviceimports", "ServiceImport")
