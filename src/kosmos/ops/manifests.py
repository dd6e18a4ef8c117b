"""What ``kosmosctl install`` puts into the host cluster, as pure data.

Pure functions of the install options (no I/O), so the objects can be unit-tested for labels,
least privilege and hardening, checked by a server-side dry run, and applied in order by
``install``; ``uninstall`` uses the same list to know what to remove. RBAC rules live in
:mod:`kosmos.ops.rbac`, kosmos-scheduler's objects in :mod:`kosmos.ops.scheduling`; the object
shapes come from :mod:`kosmos.api.manifests`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

from kosmos.api import crds, names, release
from kosmos.api import manifests as build
from kosmos.api.cluster import (
    Cluster,
    ClusterLinkOptions,
    ClusterSpec,
    ClusterTreeOptions,
)
from kosmos.api.objects import Obj
from kosmos.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERS,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    MUTATING_ADMISSION_POLICIES,
    MUTATING_ADMISSION_POLICY_BINDINGS,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    STORAGECLASSES,
    Resource,
)
from kosmos.api.schema import manifest
from kosmos.clustertree import admission
from kosmos.ops import kubenest, mcsdns, rbac, scheduling
from kosmos.ops.kubenest import KubenestOptions

Planned = tuple[Resource, Obj]

#: Where ``kosmosctl local images`` puts our image (``docker.io/kosmos/kosmos:v<version>``).
DEFAULT_IMAGE_REPOSITORY = "docker.io/kosmos"
#: A node that already holds the image (imported, or pulled once) starts without a registry.
IMAGE_PULL_POLICY = "IfNotPresent"
#: The app.kubernetes.io/managed-by label of what kosmosctl creates, and its field manager.
MANAGED_BY = "kosmosctl"
FIELD_MANAGER = MANAGED_BY
PART_OF = "kosmos"
HEALTH_PORT = 8080
#: UID/GID of the "nonroot" user of distroless-style images; any non-zero id would do.
NONROOT_ID = 65532
#: The host is Kosmos's control cluster, whose nodes may all be control-plane nodes (the
#: local environment's are): the control plane's own components must be able to run there.
CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def default_version() -> str:
    """Images are tagged like the release (``kosmos.api.release``); ``latest`` from a bare
    source tree."""
    return release.installed_tag() or "latest"


@dataclass(frozen=True)
class Component:
    """A long-running Kosmos controller install deploys into the host."""

    name: str  # the ``kosmos <name>`` launcher command
    module: Literal["tree", "link", "kubenest"]  # which --enable-*/--disable-* flag
    rules: tuple[Obj, ...]
    node_lease_rules: tuple[Obj, ...] = ()
    env: tuple[Obj, ...] = ()
    #: It authenticates callers (the leaf kubelet endpoint): bind the kube-system reader Role.
    reads_client_ca: bool = False
    #: The pod's affinity beyond ``--node-selector`` (None: any node).
    affinity: Obj | None = None

    @property
    def object_name(self) -> str:
        """Deployment, ServiceAccount and ClusterRole(Binding) name; Roles add a suffix."""
        return f"kosmos-{self.name}"

    @property
    def lease(self) -> str:
        """The leader-election Lease: named like the component (``kosmos <name>``)."""
        return self.name


_POD_ENV = (
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
)

CLUSTER_MANAGER = Component(
    name="cluster-manager",
    module="tree",
    rules=rbac.CLUSTER_MANAGER_RULES,
    node_lease_rules=rbac.NODE_LEASE_RULES,
    # The apiserver reaches leaf nodes' logs/exec server at the cluster-manager pod's IP.
    env=({"name": "LEAF_NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},),
    reads_client_ca=True,
)
NETWORK_MANAGER = Component(name="network-manager", module="link", rules=rbac.NETWORK_MANAGER_RULES)
VIRTUAL_CLUSTER_OPERATOR = Component(
    name=kubenest.NAME, module="kubenest", rules=kubenest.RULES, affinity=kubenest.affinity()
)
COMPONENTS = (CLUSTER_MANAGER, NETWORK_MANAGER, VIRTUAL_CLUSTER_OPERATOR)
#: The endpoint prober (``kosmos eps-probe``): in every cluster where ClusterTree runs.
PROBE = "kosmos-eps-probe"


@dataclass(frozen=True)
class InstallOptions:
    namespace: str = names.SYSTEM_NAMESPACE
    image_repository: str = DEFAULT_IMAGE_REPOSITORY
    version: str = field(default_factory=default_version)
    enable_tree: bool = True
    enable_link: bool = True
    enable_scheduler: bool = True
    #: kubenest's operator (``--enable-kubenest``), off unless asked for
    enable_kubenest: bool = False
    kubenest: KubenestOptions = field(default_factory=KubenestOptions)
    cni: str = "calico"
    default_nic: str = "*"
    #: Labels every Kosmos pod selects (``--node-selector``): where the control plane runs.
    node_selector: tuple[tuple[str, str], ...] = ()
    #: Annotations of every Kosmos pod template (a change rolls the pods).
    pod_annotations: tuple[tuple[str, str], ...] = ()
    #: host namespaces whose Services the cluster-manager exports (``--auto-mcs-prefix``)
    auto_mcs_prefixes: tuple[str, ...] = ()
    #: kosmos-coredns (clusterset.local) next to ClusterTree, wired into the cluster DNS.
    mcs_dns: bool = True
    #: the cluster-manager may run application migrations (``rbac.MIGRATION_RULES``)
    migration: bool = False
    #: the components' ``--log-format`` (text, json); text adds no flag
    log_format: str = "text"

    @property
    def image(self) -> str:
        """One image holds every component; the command picks which one runs."""
        return f"{self.image_repository.rstrip('/')}/kosmos:{self.version}"

    @property
    def coredns_image(self) -> str:
        """kosmos-coredns's CoreDNS: same repository, tagged with CoreDNS's own version."""
        return f"{self.image_repository.rstrip('/')}/coredns:{mcsdns.COREDNS_VERSION}"

    @property
    def enable_mcs_dns(self) -> bool:
        return self.enable_tree and self.mcs_dns

    def enabled(self, component: Component) -> bool:
        return {
            "tree": self.enable_tree,
            "link": self.enable_link,
            "kubenest": self.enable_kubenest,
        }[component.module]

    def placement(self) -> Obj:
        """What every Kosmos pod's spec gets so it lands where ``--node-selector`` says."""
        return {"nodeSelector": dict(self.node_selector)} if self.node_selector else {}


def parse_node_selector(text: str) -> tuple[tuple[str, str], ...]:
    """``key=value,...`` (``--node-selector``) as pairs; ValueError names a bad item."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--node-selector {item!r}: expected key=value")
        pairs.append((key, value))
    return tuple(pairs)


def labels(app: str) -> dict[str, str]:
    """The labels every installed object carries (``app`` is app.kubernetes.io/name)."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def crd_objects() -> list[Planned]:
    out = []
    for crd in crds.crd_manifests():
        body = copy.deepcopy(crd)
        body["metadata"]["labels"] = labels(PART_OF)
        out.append((CUSTOMRESOURCEDEFINITIONS, body))
    return out


def namespace_object(options: InstallOptions) -> Planned:
    return NAMESPACES, build.namespace(options.namespace, labels(PART_OF))


def component_objects(options: InstallOptions, component: Component) -> list[Planned]:
    """ServiceAccount, RBAC and Deployment of one component, in apply order."""
    ns, name, own = options.namespace, component.object_name, labels(component.object_name)
    subjects = [build.service_account_subject(name, ns)]
    election = f"{name}-leader-election"
    out: list[Planned] = [
        (SERVICEACCOUNTS, build.service_account(name, ns, own)),
        (CLUSTERROLES, build.cluster_role(name, component.rules, own)),
        (CLUSTERROLEBINDINGS, build.cluster_role_binding(name, name, subjects, own)),
        (ROLES, build.role(election, ns, rbac.leader_election_rules(component.lease), own)),
        (ROLEBINDINGS, build.role_binding(election, ns, election, subjects, own)),
    ]
    if component.node_lease_rules:
        leases, lease_ns = f"{name}-node-leases", "kube-node-lease"
        out.append((ROLES, build.role(leases, lease_ns, component.node_lease_rules, own)))
        out.append((ROLEBINDINGS, build.role_binding(leases, lease_ns, leases, subjects, own)))
    if component.reads_client_ca:
        reader = f"{name}-{rbac.EXTENSION_AUTH_READER}"
        binding = build.role_binding(
            reader, "kube-system", rbac.EXTENSION_AUTH_READER, subjects, own
        )
        out.append((ROLEBINDINGS, binding))
    if component.module == "tree":
        out.extend(tree_objects())
        if options.migration:
            out.extend(migration_objects(options))
    out.append((DEPLOYMENTS, deployment(options, component)))
    return out


def migration_objects(options: InstallOptions) -> list[Planned]:
    """``--enable-migration``: the cluster-manager's wide ClusterRole (``rbac.MIGRATION_RULES``)."""
    name, own = f"{CLUSTER_MANAGER.object_name}-migration", labels(CLUSTER_MANAGER.object_name)
    subjects = [build.service_account_subject(CLUSTER_MANAGER.object_name, options.namespace)]
    return [
        (CLUSTERROLES, build.cluster_role(name, rbac.MIGRATION_RULES, own)),
        (CLUSTERROLEBINDINGS, build.cluster_role_binding(name, name, subjects, own)),
    ]


def tree_objects() -> list[Planned]:
    """ClusterTree's host objects: the no-eviction and the promoted-pod placement admission
    policies, and the leaf StorageClass."""
    out: list[Planned] = []
    for policy, binding in (
        admission.toleration_policy(labels(PART_OF)),
        admission.promoted_pod_placement(labels(PART_OF)),
    ):
        out += [
            (MUTATING_ADMISSION_POLICIES, policy),
            (MUTATING_ADMISSION_POLICY_BINDINGS, binding),
        ]
    out.append((STORAGECLASSES, admission.leaf_storage_class(labels(PART_OF))))
    return out


def scheduler_objects(options: InstallOptions) -> list[Planned]:
    """kosmos-scheduler: kube-scheduler + extender Deployment, its ConfigMap, RBAC, policy."""
    out = scheduling.objects(
        options.namespace,
        image=options.image,
        labels=labels,
        admission_labels=labels(PART_OF),
        pod_security=POD_SECURITY,
        tolerations=[dict(CONTROL_PLANE_TOLERATION)],
        placement=options.placement(),
    )
    return [(r, annotated(b, options) if r == DEPLOYMENTS else b) for r, b in out]


def scheduler_admission_objects() -> list[Planned]:
    """The leaf toleration for kosmos-scheduler pods (the local environment needs only it)."""
    return scheduling.admission_objects(labels(PART_OF))


POD_SECURITY: Obj = {
    "runAsNonRoot": True,
    "runAsUser": NONROOT_ID,
    "runAsGroup": NONROOT_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(options: InstallOptions, component: Component) -> Obj:
    """The component's Deployment: non-root, read-only root filesystem, probes on /healthz.

    Only ``args`` are set: the image's entrypoint (``tini -- kosmos``) stays, so tini is PID 1
    (signals forwarded, zombies reaped) and the first argument picks the component.
    """
    name = component.object_name
    probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10}
    container = {
        "name": component.name,
        "image": options.image,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        "args": [component.name, "--leader-elect", *component_flags(options, component)],
        "env": copy.deepcopy([*_POD_ENV, *component.env]),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 3},
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "health"}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": copy.deepcopy(build.HARDENED_CONTAINER),
        # Python and the kubeconfig loader need a writable temp dir; the root fs is read-only.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = {
        "serviceAccountName": name,
        "securityContext": POD_SECURITY,
        "containers": [container],
        "tolerations": [CONTROL_PLANE_TOLERATION],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        **({"affinity": copy.deepcopy(component.affinity)} if component.affinity else {}),
        **options.placement(),
    }
    body = build.deployment(
        build.metadata(name, labels(name), options.namespace),
        selector=selector(name),
        pod_labels=labels(name),
        pod_spec=pod,
    )
    return annotated(body, options)


def component_flags(options: InstallOptions, component: Component) -> list[str]:
    """The install's flags that one component takes."""
    if component.module == "kubenest":
        return kubenest.flags(options.kubenest)
    if component.name != CLUSTER_MANAGER.name:
        return []
    return [f"--auto-mcs-prefix={prefix}" for prefix in options.auto_mcs_prefixes]


def annotated(workload: Obj, options: InstallOptions) -> Obj:
    """``workload`` with the install's pod annotations on its pod template."""
    if options.pod_annotations:
        workload["spec"]["template"]["metadata"]["annotations"] = dict(options.pod_annotations)
    return workload


def selector(app: str) -> dict[str, str]:
    """What a component's Deployment selects its pods by: the stable subset of ``labels``."""
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": PART_OF}


def root_cluster(options: InstallOptions) -> Planned:
    """The host's own Cluster, annotated root: ClusterTree makes no leaf node for it."""
    spec = ClusterSpec(
        namespace=options.namespace,
        image_repository=options.image_repository,
        cluster_link_options=ClusterLinkOptions(
            enable=options.enable_link, cni=options.cni, default_nic_name=options.default_nic
        ),
        cluster_tree_options=ClusterTreeOptions(enable=options.enable_tree),
    )
    body = manifest(Cluster, names.ROOT_CLUSTER_NAME, spec=spec)
    body["metadata"]["labels"] = labels(PART_OF)
    body["metadata"]["annotations"] = {names.ANNOTATION_CLUSTER_ROLE: "root"}
    return CLUSTERS, body


def probe_objects(namespace: str, image: str, placement: Obj | None = None) -> list[Planned]:
    """``kosmos eps-probe`` (:mod:`kosmos.ops.probeside`): ServiceAccount, ClusterRole(Binding)
    and Deployment, in apply order; the same objects in the host and in each member."""
    own = labels(PROBE)
    subjects = [build.service_account_subject(PROBE, namespace)]
    return [
        (SERVICEACCOUNTS, build.service_account(PROBE, namespace, own)),
        (CLUSTERROLES, build.cluster_role(PROBE, rbac.PROBE_RULES, own)),
        (CLUSTERROLEBINDINGS, build.cluster_role_binding(PROBE, PROBE, subjects, own)),
        (DEPLOYMENTS, probe_deployment(namespace, image, placement or {})),
    ]


def host_probe_objects(options: InstallOptions) -> list[Planned]:
    planned = probe_objects(options.namespace, options.image, options.placement())
    return [(r, annotated(b, options) if r == DEPLOYMENTS else b) for r, b in planned]


def probe_deployment(namespace: str, image: str, placement: Obj) -> Obj:
    """One small unprivileged pod on a real node (leaf nodes are another cluster's pods)."""
    probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10}
    container = {
        "name": "eps-probe",
        "image": image,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        "args": ["eps-probe", f"--health-port={HEALTH_PORT}"],
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 3},
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "health"}},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "192Mi"}},
        "securityContext": copy.deepcopy(build.HARDENED_CONTAINER),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    not_leaf = {"key": names.LABEL_NODE, "operator": "DoesNotExist"}
    pod = {
        "serviceAccountName": PROBE,
        "securityContext": POD_SECURITY,
        "containers": [container],
        "tolerations": [CONTROL_PLANE_TOLERATION, *placement.get("tolerations", [])],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [not_leaf]}]
                }
            }
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        **{k: copy.deepcopy(v) for k, v in placement.items() if k != "tolerations"},
    }
    return build.deployment(
        build.metadata(PROBE, labels(PROBE), namespace),
        selector=selector(PROBE),
        pod_labels=labels(PROBE),
        pod_spec=pod,
    )


def install_objects(options: InstallOptions) -> list[Planned]:
    """Everything install applies, in order: CRDs, namespace, enabled components, root Cluster."""
    out = [*crd_objects(), namespace_object(options)]
    for component in COMPONENTS:
        if options.enabled(component):
            out.extend(component_objects(options, component))
    if options.enable_tree:
        out.extend(host_probe_objects(options))
    if options.enable_scheduler:
        out.extend(scheduler_objects(options))
    if options.enable_mcs_dns:
        out.extend(mcs_dns_objects(options))
    out.append(root_cluster(options))
    return [(r, with_log_format(b, options.image, options.log_format)) for r, b in out]


def with_log_format(workload: Obj, image: str, log_format: str) -> Obj:
    """``--log-format`` on each container that runs a Kosmos component (``image``, the Kosmos
    image); CoreDNS and kube-scheduler keep their own logs. One helper for install's host
    workloads and join's member ones, so both write the flag the same way."""
    template = (workload.get("spec") or {}).get("template")
    if log_format == "text" or not template:
        return workload  # text adds no flag; an object without pods has nothing to flag
    pod = template["spec"]
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        if container.get("image") == image and container.get("args"):
            container["args"] = [*container["args"], f"--log-format={log_format}"]
    return workload


def mcs_dns_objects(options: InstallOptions) -> list[Planned]:
    """kosmos-coredns (:mod:`kosmos.ops.mcsdns`) with the install's placement and annotations."""
    placement = {"tolerations": [CONTROL_PLANE_TOLERATION], **options.placement()}
    out = mcsdns.objects(options.namespace, options.image, options.coredns_image, labels, placement)
    return [(r, annotated(b, options) if r == DEPLOYMENTS else b) for r, b in out]


def all_component_objects(options: InstallOptions) -> list[Planned]:
    """Every component's objects whatever the flags: what uninstall removes."""
    out = [planned for c in COMPONENTS for planned in component_objects(options, c)]
    out.extend(host_probe_objects(options))
    return [*out, *scheduler_objects(options), *mcs_dns_objects(options)]


def disabled_objects(options: InstallOptions) -> list[Planned]:
    """Objects of the components the options leave out (an earlier install may have them)."""
    out = [p for c in COMPONENTS if not options.enabled(c) for p in component_objects(options, c)]
    if not options.enable_tree:
        out.extend(host_probe_objects(options))
    if not options.enable_scheduler:
        out.extend(scheduler_objects(options))
    if not options.enable_mcs_dns:
        out.extend(mcs_dns_objects(options))
    if options.enable_tree and not options.migration:
        out.extend(migration_objects(options))
    return out


def display_name(resource: Resource, body: Obj) -> str:
    """``kind.group/name`` as kubectl prints it (``deployment.apps/kosmos-cluster-manager``)."""
    kind = resource.kind.lower() + (f".{resource.group}" if resource.group else "")
    return f"{kind}/{body['metadata']['name']}"
