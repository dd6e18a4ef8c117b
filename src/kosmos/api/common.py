"""Shapes shared by several kinds: conditions and reusable CEL rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kosmos.api import names
from kosmos.api.schema import KindInfo, Rule, prop

IS_CIDR = Rule("isCIDR(self)", "must be a CIDR such as 10.0.0.0/16 or fd00::/64")
IS_IP = Rule("isIP(self)", "must be an IP address")
CIDR_MAX = 43  # the longest IPv6 CIDR text
IP_MAX = 45
#: Item schema for a list entry or map value that must be a CIDR.
CIDR_ITEM = {"maxLength": CIDR_MAX, "x-kubernetes-validations": [IS_CIDR.to_json()]}
IP_ITEM = {"maxLength": IP_MAX, "x-kubernetes-validations": [IS_IP.to_json()]}


@dataclass
class Condition:
    """Standard condition (metav1.Condition)."""

    type: str = prop(required=True, max_length=316)
    status: Literal["True", "False", "Unknown"] = prop(required=True)
    reason: str = prop(max_length=1024)
    message: str = prop(max_length=32768)
    last_transition_time: str = prop(fmt="date-time")
    observed_generation: int = prop(minimum=0)


def conditions() -> Any:
    """The ``conditions`` field: a list map keyed by type, as upstream APIs do."""
    return prop(
        description="Observed state, one entry per condition type.",
        list_type="map",
        list_map_keys=["type"],
        max_items=32,
    )


def kosmos_kind(
    kind: str, plural: str, scope: Literal["Cluster", "Namespaced"], **extra: Any
) -> KindInfo:
    """KindInfo of a kosmos.io/v1alpha1 kind: group, version, singular and category filled in."""
    extra.setdefault("categories", (names.CATEGORY,))
    return KindInfo(
        group=names.GROUP,
        version=names.VERSION,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        scope=scope,
        **extra,
    )
