"""Check a value against a generated CRD schema, as the apiserver would (the part we use).

Structural keywords (type, properties, required, enum, pattern, lengths, bounds, item
counts) and the CEL rules our generated CRDs contain (``isCIDR``, ``isIP`` and the tunnel
selector rule). A keyword or rule this checker does not know fails the check, so a CRD that
grows one cannot pass unchecked. Unknown fields are errors too: the apiserver would prune
them silently, losing what the planner meant to say.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CRDS = Path(__file__).parents[3] / "deploy" / "crds"

_KNOWN = {
    "type",
    "description",
    "default",
    "properties",
    "items",
    "required",
    "enum",
    "pattern",
    "maxLength",
    "minLength",
    "minimum",
    "maximum",
    "maxItems",
    "minItems",
    "x-kubernetes-validations",
}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


@cache
def spec_schema(file: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / file).read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def is_ip(value: Any) -> bool:
    """CEL ``isIP``: an address without a zone, not IPv4-mapped IPv6."""
    if not isinstance(value, str) or "%" in value:
        return False
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (ip.version == 6 and ip.ipv4_mapped)


def is_cidr(value: Any) -> bool:
    """CEL ``isCIDR``: ``ip/prefix`` (host bits allowed, as for a device address)."""
    if not isinstance(value, str) or "/" not in value:
        return False
    address, _, prefix = value.partition("/")
    if not is_ip(address) or not prefix.isdigit():
        return False
    return int(prefix) <= (32 if ":" not in address else 128)


def _rule(rule: str, value: Any) -> bool:
    if rule == "isCIDR(self)":
        return is_cidr(value)
    if rule == "isIP(self)":
        return is_ip(value)
    if rule == "self.localSubnets.all(c, isCIDR(c)) && self.remoteSubnets.all(c, isCIDR(c))":
        return all(
            is_cidr(c) for c in value.get("localSubnets", []) + value.get("remoteSubnets", [])
        )
    raise AssertionError(f"crdcheck does not know the CEL rule {rule!r}")


def errors(value: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """What the apiserver would refuse in ``value`` (empty: accepted)."""
    unknown = set(schema) - _KNOWN
    assert not unknown, f"crdcheck does not know the schema keywords {unknown} at {path}"
    out: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        expected = _TYPES[kind]
        if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
            return [f"{path}: {value!r} is not of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            out.append(f"{path}: longer than {schema['maxLength']}")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']}")
    low, high = schema.get("minimum", float("-inf")), schema.get("maximum", float("inf"))
    if isinstance(value, int) and not low <= value <= high:
        out.append(f"{path}: {value} out of [{low}, {high}]")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            out.append(f"{path}: more than {schema['maxItems']} items")
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            out += errors(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key not in props:
                out.append(f"{path}: unknown field {key}")
            else:
                out += errors(item, props[key], f"{path}.{key}")
    if not out:
        for rule in schema.get("x-kubernetes-validations", []):
            if not _rule(rule["rule"], value):
                out.append(f"{path}: {rule['message']} ({value!r})")
    return out


def nodeconfig_errors(spec: dict[str, Any]) -> list[str]:
    return errors(spec, spec_schema("kosmos.io_nodeconfigs.yaml"))
