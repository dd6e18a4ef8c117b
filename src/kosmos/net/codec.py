"""``kosmos.net`` values as plain JSON-able dicts, and back.

A node's kernel state is read inside the node (``kosmos agent-state`` in its agent pod) and
compared with its NodeConfig elsewhere (``kosmosctl netdoctor analyze``); this is the wire
form between the two. Sets become sorted lists and tuples lists, so the same state always
encodes to the same text; decoding rebuilds the frozen values, so a decoded state compares
equal to a freshly read one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kosmos.net.netlink import LinkInfo
from kosmos.net.objects import Chain, Fdb, IPSet, Neigh, Route, Rule, Vxlan
from kosmos.net.state import NodeState

Plain = dict[str, Any]

#: NodeState field -> the value class of its members
_MEMBERS: dict[str, type] = {
    "devices": Vxlan,
    "routes": Route,
    "fdbs": Fdb,
    "neighbours": Neigh,
    "rules": Rule,
    "chains": Chain,
    "ipsets": IPSet,
}


class DecodeError(ValueError):
    """A document that is not an encoded state (wrong shape, unknown field)."""


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def encode(obj: Any) -> Plain:
    """One value object (Vxlan, Route, ..., LinkInfo) as a dict of its fields."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def decode(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """The value object of class ``cls`` from :func:`encode`'s dict."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise DecodeError(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    values = dict(data)
    if cls is Chain and "rules" in values:
        values["rules"] = tuple(values["rules"])
    if cls is IPSet and "entries" in values:
        values["entries"] = frozenset(values["entries"])
    if cls is LinkInfo:
        values["ipv4"] = tuple(values.get("ipv4", ()))
        values["ipv6"] = tuple(values.get("ipv6", ()))
    try:
        return cls(**values)
    except TypeError as exc:
        raise DecodeError(f"{cls.__name__}: {exc}") from exc


def encode_state(state: NodeState) -> Plain:
    out: Plain = {
        name: sorted((encode(o) for o in getattr(state, name)), key=_order) for name in _MEMBERS
    }
    out["sysctls"] = dict(state.sysctls)
    return out


def _order(item: Plain) -> list[str]:
    return [str(v) for v in item.values()]


def decode_state(data: Mapping[str, Any]) -> NodeState:
    if not isinstance(data, Mapping):
        raise DecodeError("a node state must be an object")
    unknown = set(data) - {*_MEMBERS, "sysctls"}
    if unknown:
        raise DecodeError(f"node state: unknown field(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {
        name: frozenset(decode(cls, item) for item in data.get(name) or [])
        for name, cls in _MEMBERS.items()
    }
    values["sysctls"] = tuple(sorted((data.get("sysctls") or {}).items()))
    return NodeState(**values)
