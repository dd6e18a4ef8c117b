"""Kubernetes resource quantities (``"1500m"``, ``"1Gi"``, ``"1e3"``) as exact fractions.

Capacity arithmetic must be exact: a leaf node that advertises one millicore too much makes
the host scheduler bind a pod the member then refuses. ``Fraction`` keeps every value exact;
like the apiserver we round values finer than a nano-unit up to the next nano-unit.

Formatting is canonical for *our* output, not a byte-for-byte copy of the apiserver's: cpu-like
values are whole numbers or milli (``"1500m"``), memory-like values use the largest binary
suffix that divides them exactly (``"1536Mi"``) or plain bytes. The apiserver may re-spell a
value it stores (``"129000000"`` comes back as ``"129M"``), so compare quantities with
``parse_quantity``, never as strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction

QuantityValue = str | int | float | Fraction


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


_BINARY: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# The exponent form is tried before the SI suffixes so that "1E3" is 1000 and "1E" one exa.
_PATTERN = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?"
    r"(?:[eE](?P<exp>[+-]?[0-9]+)|(?P<suffix>[KMGTPE]i|[numkMGTPE])?)"
)
#: Larger exponents are refused: nothing real needs them and 1e999999999 would eat memory.
MAX_EXPONENT = 100
_NANO = 10**9
#: Resources whose natural unit is the byte: formatted with binary suffixes.
_BYTE_RESOURCES = frozenset({"memory", "ephemeral-storage", "storage"})


def parse_quantity(value: QuantityValue) -> Fraction:
    """The exact value of a quantity; numbers (from hand-written JSON) are accepted too."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a quantity: {value!r}")
        return _round_nano(Fraction(repr(value)))
    return _parse_text(value)


def _parse_text(text: str) -> Fraction:
    match = _PATTERN.fullmatch(text)
    if match is None or not (match["int"] or match["frac"]):
        raise QuantityError(f"not a quantity: {text!r}")
    frac = match["frac"] or ""
    number = Fraction(int((match["int"] or "0") + frac), 10 ** len(frac))
    if match["exp"] is not None:
        exponent = int(match["exp"])
        if abs(exponent) > MAX_EXPONENT:
            raise QuantityError(f"exponent out of range: {text!r}")
        number *= Fraction(10) ** exponent
    elif match["suffix"] in _BINARY:
        number *= _BINARY[match["suffix"]]
    else:
        number *= _DECIMAL[match["suffix"] or ""]
    if match["sign"] == "-":
        number = -number
    return _round_nano(number)


def _round_nano(value: Fraction) -> Fraction:
    """Round away from zero to a multiple of 1n, as the apiserver does for finer values."""
    scaled = value * _NANO
    if scaled.denominator == 1:
        return value
    magnitude = math.ceil(abs(scaled))
    return Fraction(magnitude if value > 0 else -magnitude, _NANO)


def format_decimal(value: Fraction) -> str:
    """Integers plainly (``"2"``, ``"1000"``), fractions as milli, micro or nano units."""
    value = _round_nano(value)
    if value.denominator == 1:
        return str(value.numerator)
    for suffix, scale in (("m", 10**3), ("u", 10**6), ("n", _NANO)):
        scaled = value * scale
        if scaled.denominator == 1:
            return f"{scaled.numerator}{suffix}"
    raise AssertionError("unreachable: value was rounded to nano units")  # pragma: no cover


def format_binary(value: Fraction) -> str:
    """The largest binary suffix dividing the value exactly (``"1536Mi"``), else plain bytes."""
    if value.denominator != 1 or value == 0:
        return format_decimal(value)
    number = value.numerator
    for suffix, base in reversed(_BINARY.items()):
        if number % base == 0:
            return f"{number // base}{suffix}"
    return str(number)


def is_byte_resource(name: str) -> bool:
    """Whether a resource is counted in bytes (memory, storage, hugepages-<size>)."""
    return name in _BYTE_RESOURCES or name.startswith("hugepages-")


def format_quantity(name: str, value: Fraction) -> str:
    """Canonical text of ``value`` for resource ``name``: binary for bytes, else decimal."""
    return format_binary(value) if is_byte_resource(name) else format_decimal(value)


def parse_resources(resources: Mapping[str, QuantityValue] | None) -> dict[str, Fraction]:
    """A ResourceList (``{"cpu": "500m", ...}``) as exact values; None is empty."""
    return {name: parse_quantity(value) for name, value in (resources or {}).items()}


def format_resources(resources: Mapping[str, Fraction]) -> dict[str, str]:
    """Exact values back to a ResourceList, keys sorted so output is stable."""
    return {name: format_quantity(name, resources[name]) for name in sorted(resources)}
