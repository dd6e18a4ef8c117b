"""Validate a dashboard JSON with Grafana's own dashboard models (grafana-foundation-sdk).

The SDK's classes are generated from Grafana's schema: ``Dashboard.from_json`` builds the
typed model (panels by their plugin type, Prometheus targets as Prometheus queries) once the
SDK's panel and query plugins are registered. Decoding is lenient, so two checks make it a
validation: encoding the model back must give every key of the input (a key the schema does
not know is dropped), and every attribute must hold a value of its annotated type (an enum's
values, ints for ints, the model class for nested objects).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

register_default_plugins()


def decode(data: dict[str, Any]) -> Dashboard:
    return Dashboard.from_json(data)


def dropped_keys(original: Any, encoded: Any, path: str = "") -> Iterator[str]:
    """Paths of keys in ``original`` the model's encoding does not have."""
    if isinstance(original, dict) and isinstance(encoded, dict):
        for key, value in original.items():
            if key not in encoded:
                yield f"{path}/{key}"
            else:
                yield from dropped_keys(value, encoded[key], f"{path}/{key}")
    elif isinstance(original, list) and isinstance(encoded, list):
        for i, (a, b) in enumerate(zip(original, encoded, strict=False)):
            yield from dropped_keys(a, b, f"{path}[{i}]")


def round_trip_drops(data: dict[str, Any]) -> list[str]:
    encoded = json.loads(json.dumps(decode(data), cls=JSONEncoder))
    return list(dropped_keys(data, encoded))


def _is_model_class(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "from_json") and hasattr(hint, "to_json")


def _model_class(hint: Any) -> Any:
    """The model class ``hint`` names, through Optional/list (None if it names none)."""
    if _is_model_class(hint):
        return hint
    for arg in typing.get_args(hint):
        found = _model_class(arg)
        if found is not None:
            return found
    return None


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {member.value for member in hint}
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if _is_model_class(hint) and isinstance(value, dict):
        return True  # kept as JSON by the lenient decoder: decoded and checked by type_errors
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a construct this check does not know: the round trip still covers it


def type_errors(model: Any, path: str = "") -> Iterator[str]:
    """Attributes whose value is not of the model's annotated type, recursively."""
    hints = typing.get_type_hints(type(model))
    for attribute, hint in hints.items():
        value = getattr(model, attribute, None)
        if not _fits(value, hint):
            yield f"{path}.{attribute}: {value!r} is not {hint}"
        decoder = _model_class(hint)
        for child in value if isinstance(value, list) else [value]:
            decoded = decoder.from_json(child) if isinstance(child, dict) and decoder else child
            if _is_model_class(type(decoded)):
                yield from type_errors(decoded, f"{path}.{attribute}")
