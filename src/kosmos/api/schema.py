"""Typed API models that generate their own CRD schemas: one source of truth.

A model is a dataclass; each field's Python type gives the OpenAPI type (str, int, bool,
float, Literal enums, list, dict, nested models, ``Embedded`` for Kubernetes types we do not
re-describe), and ``prop(...)`` adds what types cannot say: the JSON name, a description,
defaults, formats, bounds and CEL rules. ``kind(...)`` marks a top-level resource and carries
its CRD metadata (plural, scope, short names, printer columns, subresources).

Controllers keep raw dicts in their caches; the models serve schema generation, defaults, and
building objects in the CLI (``to_json``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from kosmos.api.resources import Resource

#: A Kubernetes type embedded as-is (Taint, Toleration, LabelSelector, Affinity, ...): the
#: apiserver keeps it unpruned; the controller that uses it validates it against upstream.
Embedded = dict[str, Any]
_EMBEDDED_MARK = "kosmos.embedded"


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule (x-kubernetes-validations) with the message users see."""

    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason
        return out


def prop(
    json_name: str | None = None,
    *,
    description: str = "",
    default: Any = MISSING,
    required: bool = False,
    enum: list[str] | None = None,
    pattern: str | None = None,
    fmt: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    max_properties: int | None = None,
    rules: list[Rule] | None = None,
    list_type: Literal["atomic", "set", "map"] | None = None,
    list_map_keys: list[str] | None = None,
    embedded: bool = False,
    items: dict[str, Any] | None = None,
) -> Any:
    """Declare a model field. Python-side default: the schema default, else None.

    ``items`` adds schema keywords to list items or map values (e.g. ``maxLength`` and a
    per-value CEL rule, which the apiserver's cost estimator needs to accept the rule).
    """
    schema: dict[str, Any] = {
        key: value
        for key, value in {
            "description": description or None,
            "enum": enum,
            "pattern": pattern,
            "format": fmt,
            "minimum": minimum,
            "maximum": maximum,
            "minLength": min_length,
            "maxLength": max_length,
            "minItems": min_items,
            "maxItems": max_items,
            "maxProperties": max_properties,
            "x-kubernetes-list-type": list_type,
            "x-kubernetes-list-map-keys": list_map_keys,
        }.items()
        if value is not None
    }
    if rules:
        schema["x-kubernetes-validations"] = [r.to_json() for r in rules]
    if default is not MISSING:
        schema["default"] = default
    metadata = {"json": json_name, "schema": schema, "required": required, "items": items}
    if embedded:
        metadata[_EMBEDDED_MARK] = True
    if default is MISSING:
        return field(default=None, metadata=metadata)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: _copy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _copy(value: Any) -> Any:
    return [*value] if isinstance(value, list) else dict(value)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def json_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("json") or camel(f.name))


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "jsonPath": self.json_path, "type": self.type}
        if self.priority:
            out["priority"] = self.priority
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class KindInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    scope: Literal["Cluster", "Namespaced"]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    status_subresource: bool = True
    description: str = ""
    rules: tuple[Rule, ...] = ()
    #: older versions served with the same schema (``version`` is the storage version); the
    #: schemas are identical, so the apiserver converts by rewriting apiVersion alone
    served_versions: tuple[str, ...] = ()
    #: labels on the CRD object itself (e.g. the MCS API's release-version)
    crd_labels: tuple[tuple[str, str], ...] = ()

    @property
    def resource(self) -> Resource:
        """The REST resource clients use for this kind."""
        return Resource(
            self.group, self.version, self.plural, self.kind, self.scope == "Namespaced"
        )


T = typing.TypeVar("T")


def kind(info: KindInfo) -> typing.Callable[[type[T]], type[T]]:
    """Mark a model as a top-level resource (its ``spec``/``status`` fields are the body)."""

    def mark(cls: type[T]) -> type[T]:
        cls.__kosmos_kind__ = info  # type: ignore[attr-defined]
        return cls

    return mark


def rules(*items: Rule) -> typing.Callable[[type[T]], type[T]]:
    """Object-level CEL rules of a model (cross-field checks)."""

    def mark(cls: type[T]) -> type[T]:
        cls.__kosmos_rules__ = items  # type: ignore[attr-defined]
        return cls

    return mark


def kind_info(cls: type[Any]) -> KindInfo:
    info: KindInfo = cls.__kosmos_kind__
    return info


# -- schema generation ----------------------------------------------------------------------


def schema_of(cls: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model class."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        name = json_name(f)
        if f.metadata.get(_EMBEDDED_MARK):
            prop_schema: dict[str, Any] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        else:
            prop_schema = _type_schema(hints[f.name])
        prop_schema.update(f.metadata.get("schema", {}))
        if f.metadata.get("items"):  # constraints on list items or map values
            inner = prop_schema.get("items") or prop_schema.get("additionalProperties")
            if inner is None:
                raise TypeError(f"{cls.__name__}.{f.name}: items= needs a list or map")
            inner.update(f.metadata["items"])
        properties[name] = prop_schema
        if f.metadata.get("required"):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = " ".join(cls.__doc__.split())
    if required:
        schema["required"] = required
    cls_rules = getattr(cls, "__kosmos_rules__", ())
    if cls_rules:
        schema["x-kubernetes-validations"] = [r.to_json() for r in cls_rules]
    return schema


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unions other than Optional are not structural: {tp}")
        return _type_schema(inner[0])
    if origin is Literal:
        return {"type": "string", "enum": [str(a) for a in get_args(tp)]}
    if origin is list:
        return {"type": "array", "items": _type_schema(get_args(tp)[0])}
    if origin is dict:
        value = get_args(tp)[1]
        if value is Any:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {"type": "object", "additionalProperties": _type_schema(value)}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if tp in simple:
        return {"type": simple[tp]}
    if dataclasses.is_dataclass(tp):
        return schema_of(tp)  # type: ignore[arg-type]
    if tp is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    raise TypeError(f"no schema for {tp!r}")


def crd(cls: type[Any]) -> dict[str, Any]:
    """The CustomResourceDefinition of a ``kind``-marked model."""
    info = kind_info(cls)
    body = schema_of(cls)
    properties = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        **body["properties"],
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if info.description:
        schema["description"] = info.description
    if body.get("required"):
        schema["required"] = body["required"]
    if info.rules:
        schema["x-kubernetes-validations"] = [r.to_json() for r in info.rules]
    columns = [c.to_json() for c in info.printer_columns]
    columns.append({"name": "AGE", "jsonPath": ".metadata.creationTimestamp", "type": "date"})
    versions = []
    for name in (*info.served_versions, info.version):
        version: dict[str, Any] = {
            "name": name,
            "served": True,
            "storage": name == info.version,
            "schema": {"openAPIV3Schema": schema},
            "additionalPrinterColumns": columns,
        }
        if info.status_subresource and "status" in properties:
            version["subresources"] = {"status": {}}
        versions.append(version)
    names: dict[str, Any] = {
        "kind": info.kind,
        "listKind": f"{info.kind}List",
        "plural": info.plural,
        "singular": info.singular,
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    metadata: dict[str, Any] = {"name": f"{info.plural}.{info.group}"}
    if info.crd_labels:
        metadata["labels"] = dict(info.crd_labels)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": info.group,
            "names": names,
            "scope": info.scope,
            "versions": versions,
        },
    }


# -- objects ------------------------------------------------------------------------------


def to_json(obj: Any) -> Any:
    """A model instance as the JSON the apiserver expects (None fields omitted)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None:
                out[json_name(f)] = to_json(value)
        return out
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


def manifest(cls: type[Any], name: str, namespace: str | None = None, **body: Any) -> Any:
    """A complete object of a kind: apiVersion, kind, metadata and the given body fields."""
    info = kind_info(cls)
    meta: dict[str, str] = {"name": name}
    if namespace and info.scope == "Namespaced":
        meta["namespace"] = namespace
    return {
        "apiVersion": f"{info.group}/{info.version}",
        "kind": info.kind,
        "metadata": meta,
        **{k: to_json(v) for k, v in body.items()},
    }


_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123.match(value))
