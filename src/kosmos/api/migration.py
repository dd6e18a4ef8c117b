"""PromotePolicy: adopt the workloads of some leaf namespaces into the root (application
migration), with a backup so that it can be rolled back.

The checks that need no cluster state are CEL rules, so a bad request fails at admission
instead of in a later phase: ``*`` in either exclude list, an excluded namespace that is not
included, a changed clusterName. includedNamespaces must list namespaces explicitly (an empty
list would otherwise mean every namespace, kube-system included); ``*`` means every leaf
namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kosmos.api.common import Condition, conditions, kosmos_kind
from kosmos.api.schema import PrinterColumn, Rule, kind, prop, rules

_NAMESPACES = 128
_NAMESPACE_ITEM = {"maxLength": 63, "pattern": r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"}
_RESOURCE_ITEM = {"maxLength": 253, "pattern": r"^(\*|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)$"}
_NO_STAR = "!self.exists(x, x == '*')"


@rules(
    Rule(
        "!has(self.excludedNamespaces) || self.includedNamespaces.exists(n, n == '*') || "
        "self.excludedNamespaces.all(n, n in self.includedNamespaces)",
        "every excluded namespace must be included (or includedNamespaces must be *)",
        field_path=".excludedNamespaces",
    )
)
@dataclass
class PromotePolicySpec:
    cluster_name: str = prop(
        required=True,
        min_length=1,
        max_length=63,
        description="The Cluster (leaf) to migrate from",
        rules=[Rule("self == oldSelf", "clusterName cannot change")],
    )
    included_namespaces: list[str] = prop(
        required=True,
        min_items=1,
        max_items=_NAMESPACES,
        list_type="set",
        items=_NAMESPACE_ITEM,
        description="Leaf namespaces to migrate; * = all (minus the forbidden ones)",
    )
    excluded_namespaces: list[str] = prop(
        max_items=_NAMESPACES,
        list_type="set",
        items=_NAMESPACE_ITEM,
        rules=[Rule(_NO_STAR, "* cannot be excluded")],
    )
    included_namespace_scoped_resources: list[str] = prop(
        default=["*"],
        max_items=256,
        list_type="set",
        items=_RESOURCE_ITEM,
        description="Resources (plural or plural.group) to migrate; * = all",
    )
    excluded_namespace_scoped_resources: list[str] = prop(
        max_items=256,
        list_type="set",
        items=_RESOURCE_ITEM,
        rules=[Rule(_NO_STAR, "* cannot be excluded; list the resources to leave behind")],
        description="Resources to leave in the leaf, e.g. events, endpoints",
    )
    rollback: Literal["true", "false"] = prop(
        description='"true" on a Completed (or FailedRollback) migration restores the leaf '
        "from the backup and removes what was created in the root"
    )


Phase = Literal[
    "Prechecking",
    "FailedPrecheck",
    "Backuping",
    "FailedBackup",
    "Detaching",
    "FailedDetach",
    "Restoring",
    "FailedRestore",
    "Completed",
    "RollingBack",
    "FailedRollback",
    "RolledBack",
]


@dataclass
class PromotePolicyProgress:
    total_items: int = prop(minimum=0)
    items_backed_up: int = prop(minimum=0)
    owners_detached: int = prop(minimum=0, description="Owners deleted (Orphan) in the member")
    pods_total: int = prop(minimum=0)
    pods_adopted: int = prop(minimum=0, description="Member pods ClusterTree adopted")
    items_restored: int = prop(minimum=0, description="Objects created in the host")


@dataclass
class PromotePolicyStatus:
    phase: Phase = prop()
    precheck_errors: list[str] = prop(max_items=256)
    start_timestamp: str = prop(fmt="date-time")
    completion_timestamp: str = prop(fmt="date-time")
    failure_reason: str = prop(max_length=32768)
    progress: PromotePolicyProgress = prop()
    backedup_file: str = prop(max_length=4096, description="Where the backup was written")
    namespaces: list[str] = prop(
        max_items=_NAMESPACES, description="The namespaces migrated (fixed at precheck)"
    )
    conditions: list[Condition] = conditions()


@kind(
    kosmos_kind(
        "PromotePolicy",
        "promotepolicies",
        "Namespaced",
        printer_columns=(
            PrinterColumn("CLUSTER", ".spec.clusterName"),
            PrinterColumn("PHASE", ".status.phase"),
            PrinterColumn("PODS", ".status.progress.podsAdopted", type="integer"),
        ),
        description="Migrates workloads of leaf namespaces into the root, reversibly.",
    )
)
@dataclass
class PromotePolicy:
    spec: PromotePolicySpec = prop(required=True)
    status: PromotePolicyStatus = prop()
