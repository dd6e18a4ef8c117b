"""Scheduling and conversion policies: where a root pod may land, and how its leaf copy changes.

(Cluster)DistributionPolicy drives kosmos-scheduler's LeafNodeDistribution filter;
(Cluster)PodConvertPolicy rewrites scheduling fields when ClusterTree copies a pod to a leaf.

The CEL rules reject what could not be acted on: a selector naming a policy term that does
not exist (the pod would silently fall back to ``mix``), selectors that combine
name/namePrefix/labelSelector (no single meaning), ``adv`` terms with nothing to match (no
node would ever pass), and converters whose convertType contradicts their payload.

``PolicyTerm.placement`` divides the pods of each workload between clusters by fixed counts
and weights (docs/scheduler.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api import names
from kosmos.api.common import Condition, conditions, kosmos_kind
from kosmos.api.schema import Embedded, Rule, kind, prop, rules

_NAME = 63  # policy-term names are short identifiers, like label values
_OBJECT_NAME = 253  # pod and node names are DNS subdomains
_SELECTORS = 64
_TERMS = 32
_CLUSTERS = 64
_MAX_REPLICAS = 100_000
_MAX_WEIGHT = 10_000

# -- DistributionPolicy / ClusterDistributionPolicy ---------------------------------------


@rules(
    Rule(
        "[has(self.name), has(self.namePrefix), has(self.labelSelector)].filter(x, x).size() == 1",
        "set exactly one of name, namePrefix or labelSelector; list several selectors "
        "to match in several ways (name wins over namePrefix over labelSelector)",
    )
)
@dataclass
class ResourceSelector:
    """Which pods a policy term applies to: by exact name, name prefix, or labels.

    The docs rank matches between selectors (name > namePrefix > labelSelector, namespaced
    policies before cluster ones); a selector combining several ways would have no single
    meaning, so each selector has exactly one.
    """

    policy_name: str = prop(
        required=True, min_length=1, max_length=_NAME, description="Name of a policyTerms entry"
    )
    name: str = prop(min_length=1, max_length=_OBJECT_NAME, description="Exact pod name")
    name_prefix: str = prop(min_length=1, max_length=_OBJECT_NAME, description="Pod name prefix")
    label_selector: Embedded = prop(
        embedded=True,
        description="metav1.LabelSelector over pod labels, with the standard meaning (every "
        "matchLabels pair and matchExpression must hold, not just any one of them)",
    )


@rules(
    Rule(
        "has(self.nodeName) || (has(self.nodeSelector) && size(self.nodeSelector) > 0) || "
        "(has(self.tolerations) && size(self.tolerations) > 0)",
        "an advancedTerm needs nodeName, nodeSelector or tolerations; empty, no node passes",
    )
)
@dataclass
class AdvancedTerm:
    """Nodes an ``adv`` term admits: the named node, nodes matching the selector, or nodes
    whose taints the tolerations tolerate (any of the three)."""

    node_name: str = prop(min_length=1, max_length=_OBJECT_NAME)
    node_selector: dict[str, str] = prop(
        max_properties=64, description="Node labels, all must match"
    )
    tolerations: list[Embedded] = prop(max_items=64, description="corev1.Toleration entries")


@rules(
    Rule(
        "has(self.replicas) != has(self.weight)",
        "set exactly one of replicas (a fixed number of pods for this cluster) or weight "
        "(its share of the pods beyond the fixed numbers)",
    )
)
@dataclass
class ClusterShare:
    """One cluster's part of a workload: a fixed pod count or a weight."""

    name: str = prop(
        required=True,
        min_length=1,
        max_length=_NAME,
        description=f"A member Cluster, or {names.ROOT_CLUSTER_NAME} for the host's own nodes",
    )
    replicas: int = prop(
        minimum=0,
        maximum=_MAX_REPLICAS,
        description="Exactly this many pods of each workload go to this cluster (listed "
        "clusters are served in order when the workload has fewer pods)",
    )
    weight: int = prop(
        minimum=1,
        maximum=_MAX_WEIGHT,
        description="Share of the pods left after the fixed replicas, in proportion to the "
        "other weights",
    )


@dataclass
class ClusterPlacement:
    """How many pods of each workload (a ReplicaSet or a StatefulSet) each cluster runs.

    Fixed ``replicas`` are served first, in list order; the pods beyond them are divided by
    ``weight`` (Sainte-Lague, ties in list order), so 7:3 over 10 pods is exactly 7 and 3 and
    every scale up or down keeps the nearest split. Pods beyond the fixed numbers stay Pending
    when no cluster has a weight. Other pods (no such owner) may use any listed cluster.
    """

    clusters: list[ClusterShare] = prop(
        required=True,
        min_items=1,
        max_items=_CLUSTERS,
        list_type="map",
        list_map_keys=["name"],
        description="Clusters keyed by name (each at most once)",
    )


_ROOT = names.ROOT_CLUSTER_NAME


@rules(
    Rule(
        "!has(self.advancedTerm) || self.nodeType == 'adv'",
        "advancedTerm is only used by nodeType adv",
        field_path=".advancedTerm",
    ),
    Rule(
        "self.nodeType != 'adv' || has(self.advancedTerm)",
        "nodeType adv needs an advancedTerm",
        field_path=".nodeType",
    ),
    Rule(
        f"!has(self.placement) || self.nodeType != 'leaf' || "
        f"self.placement.clusters.all(c, c.name != '{_ROOT}')",
        f"nodeType leaf never uses host nodes: remove {_ROOT} from placement.clusters, or use "
        "nodeType mix",
        field_path=".placement",
    ),
    Rule(
        f"!has(self.placement) || self.nodeType != 'host' || "
        f"self.placement.clusters.all(c, c.name == '{_ROOT}')",
        f"nodeType host uses only host nodes: placement.clusters can only name {_ROOT}; use "
        "nodeType mix to divide pods between the host and member clusters",
        field_path=".placement",
    ),
)
@dataclass
class PolicyTerm:
    """A named node choice: host nodes only, leaf nodes only, either (mix), or advanced;
    optionally divided between clusters (``placement``).

    A node's cluster is the member its leaf node stands for, or the host itself for the
    host's own nodes, so ``placement`` works with every nodeType that can reach the clusters
    it names. Terms without a placement keep their plain meaning (no division).
    """

    name: str = prop(required=True, min_length=1, max_length=_NAME)
    node_type: Literal["host", "leaf", "mix", "adv"] = prop(
        default="mix", description="host, leaf, mix (either) or adv (see advancedTerm)"
    )
    advanced_term: AdvancedTerm = prop()
    placement: ClusterPlacement = prop()


@rules(
    Rule(
        "self.resourceSelectors.all(s, self.policyTerms.exists(t, t.name == s.policyName))",
        "every resourceSelectors[].policyName must name one of the policyTerms",
        field_path=".resourceSelectors",
    )
)
@dataclass
class DistributionSpec:
    """Pods matched by a selector are filtered onto the nodes of the term it names."""

    resource_selectors: list[ResourceSelector] = prop(
        required=True, min_items=1, max_items=_SELECTORS
    )
    policy_terms: list[PolicyTerm] = prop(
        required=True,
        min_items=1,
        max_items=_TERMS,
        list_type="map",
        list_map_keys=["name"],
        description="Terms keyed by name (names are unique)",
    )


@kind(
    kosmos_kind(
        "DistributionPolicy",
        "distributionpolicies",
        "Namespaced",
        short_names=("dp",),
        status_subresource=False,
        description="Where kosmos-scheduler may place pods of this namespace (host/leaf nodes).",
    )
)
@dataclass
class DistributionPolicy:
    spec: DistributionSpec = prop(required=True)


@kind(
    kosmos_kind(
        "ClusterDistributionPolicy",
        "clusterdistributionpolicies",
        "Cluster",
        short_names=("cdp",),
        status_subresource=False,
        description="DistributionPolicy for all namespaces; namespaced policies take precedence.",
    )
)
@dataclass
class ClusterDistributionPolicy:
    spec: DistributionSpec = prop(required=True)


# -- PodConvertPolicy / ClusterPodConvertPolicy -------------------------------------------

ConvertType = Literal["add", "remove", "replace"]
_CONVERT_TYPE = "add: set only if the pod has none; remove: clear it; replace: overwrite it"


def _payload_rules(payload: str) -> tuple[Rule, Rule]:
    """``add``/``replace`` need the value to write; ``remove`` clears the field, so a value
    there would suggest a selective removal that does not exist."""
    return (
        Rule(
            f"self.convertType == 'remove' || has(self.{payload})",
            f"convertType add and replace need {payload}",
            field_path=f".{payload}",
        ),
        Rule(
            f"self.convertType != 'remove' || !has(self.{payload})",
            f"convertType remove clears the pod's {payload}; do not set {payload}",
            field_path=f".{payload}",
        ),
    )


@rules(*_payload_rules("schedulerName"))
@dataclass
class SchedulerNameConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    scheduler_name: str = prop(min_length=1, max_length=_OBJECT_NAME)


@rules(*_payload_rules("nodeName"))
@dataclass
class NodeNameConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    node_name: str = prop(min_length=1, max_length=_OBJECT_NAME)


@rules(*_payload_rules("nodeSelector"))
@dataclass
class NodeSelectorConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    node_selector: dict[str, str] = prop(max_properties=64)


@rules(*_payload_rules("tolerations"))
@dataclass
class TolerationConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    tolerations: list[Embedded] = prop(max_items=64, description="corev1.Toleration entries")


@rules(*_payload_rules("affinity"))
@dataclass
class AffinityConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    affinity: Embedded = prop(embedded=True, description="corev1.Affinity")


@rules(*_payload_rules("topologySpreadConstraints"))
@dataclass
class TopologySpreadConstraintsConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    topology_spread_constraints: list[Embedded] = prop(
        max_items=32, description="corev1.TopologySpreadConstraint entries"
    )


@rules(*_payload_rules("hostAliases"))
@dataclass
class HostAliasesConverter:
    convert_type: ConvertType = prop(required=True, description=_CONVERT_TYPE)
    host_aliases: list[Embedded] = prop(max_items=64, description="corev1.HostAlias entries")


_CONVERTERS = [
    "schedulerNameConverter",
    "nodeNameConverter",
    "nodeSelectorConverter",
    "tolerationConverter",
    "affinityConverter",
    "topologySpreadConstraintsConverter",
    "hostAliasesConverter",
]


@rules(
    Rule(
        " || ".join(f"has(self.{c})" for c in _CONVERTERS),
        "set at least one converter",
    )
)
@dataclass
class Converters:
    """Applied in field order. An empty set is rejected: the first matching policy with
    converters wins, so an empty one would silently shadow the policies after it."""

    scheduler_name_converter: SchedulerNameConverter = prop()
    node_name_converter: NodeNameConverter = prop()
    node_selector_converter: NodeSelectorConverter = prop()
    toleration_converter: TolerationConverter = prop()
    affinity_converter: AffinityConverter = prop()
    topology_spread_constraints_converter: TopologySpreadConstraintsConverter = prop()
    host_aliases_converter: HostAliasesConverter = prop()


@dataclass
class PodConvertPolicySpec:
    label_selector: Embedded = prop(
        embedded=True, required=True, description="metav1.LabelSelector over pod labels"
    )
    leaf_node_selector: Embedded = prop(
        embedded=True,
        description="metav1.LabelSelector over the root's leaf-node labels; unset = every leaf",
    )
    converters: Converters = prop()


@dataclass
class PodConvertPolicyStatus:
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "PodConvertPolicy",
        "podconvertpolicies",
        "Namespaced",
        short_names=("pcp",),
        description="Rewrites scheduling fields of this namespace's pods copied to leaves.",
    )
)
@dataclass
class PodConvertPolicy:
    spec: PodConvertPolicySpec = prop(required=True)
    status: PodConvertPolicyStatus = prop()


@kind(
    kosmos_kind(
        "ClusterPodConvertPolicy",
        "clusterpodconvertpolicies",
        "Cluster",
        description="PodConvertPolicy for all namespaces; when any exists, namespaced ones are "
        "not consulted.",
    )
)
@dataclass
class ClusterPodConvertPolicy:
    spec: PodConvertPolicySpec = prop(required=True)
    status: PodConvertPolicyStatus = prop()
