from fractions import Fraction

import pytest

from kosmos.api.quantity import (
    QuantityError,
    format_binary,
    format_decimal,
    format_quantity,
    format_resources,
    is_byte_resource,
    parse_quantity,
    parse_resources,
)

F = Fraction


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", F(0)),
        ("0.5", F(1, 2)),
        (".5", F(1, 2)),
        ("5.", F(5)),
        ("100m", F(1, 10)),
        ("1500m", F(3, 2)),
        ("1", F(1)),
        ("+2k", F(2000)),
        ("-1.5", F(-3, 2)),
        ("1Ki", F(1024)),
        ("1Gi", F(2**30)),
        ("1.5Gi", F(3 * 2**29)),
        ("2Ei", F(2**61)),
        ("1e3", F(1000)),
        ("1E3", F(1000)),
        ("129e6", F(129_000_000)),
        ("1e-3", F(1, 1000)),
        ("1.5e+2", F(150)),
        ("1E", F(10**18)),
        ("1n", F(1, 10**9)),
        ("1u", F(1, 10**6)),
        ("3M", F(3_000_000)),
        ("4T", F(4 * 10**12)),
        ("5P", F(5 * 10**15)),
        ("0001.50", F(3, 2)),
        # finer than nano rounds up (away from zero), like the apiserver
        ("1e-10", F(1, 10**9)),
        ("0.0000000011", F(2, 10**9)),
        ("-1e-10", F(-1, 10**9)),
    ],
)
def test_parse(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["", ".", "+", "e3", "1e", "1Ki3", "1 ", " 1", "abc", "1.2.3", "--1", "1i", "1K", "1mi",
     "1e101", "1e-101", "1KiB"],
)  # fmt: skip
def test_parse_rejects(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, F(7)), (0.5, F(1, 2)), (0.1, F(1, 10)), (F(3, 4), F(3, 4))],
)
def test_parse_numbers(value, expected):
    assert parse_quantity(value) == expected


@pytest.mark.parametrize("value", [True, float("nan"), float("inf")])
def test_parse_rejects_odd_numbers(value):
    with pytest.raises(QuantityError):
        parse_quantity(value)


@pytest.mark.parametrize(
    ("value", "decimal", "binary"),
    [
        (F(0), "0", "0"),
        (F(1, 2), "500m", "500m"),
        (F(3, 2), "1500m", "1500m"),
        (F(2), "2", "2"),
        (F(1000), "1000", "1000"),
        (F(1, 10**6), "1u", "1u"),
        (F(1, 10**4), "100u", "100u"),
        (F(1, 10**9), "1n", "1n"),
        (F(1, 3 * 10**9), "1n", "1n"),
        (F(-3, 2), "-1500m", "-1500m"),
        (F(1024), "1024", "1Ki"),
        (F(2**30), "1073741824", "1Gi"),
        (F(3 * 2**29), "1610612736", "1536Mi"),
        (F(129_000_000), "129000000", "129000000"),
        (F(2**61), str(2**61), "2Ei"),
        (F(-2048), "-2048", "-2Ki"),
        (F(1025), "1025", "1025"),
    ],
)
def test_format(value, decimal, binary):
    assert format_decimal(value) == decimal
    assert format_binary(value) == binary


@pytest.mark.parametrize(
    ("text", "resource", "canonical"),
    [
        ("0.5", "cpu", "500m"),
        ("100m", "cpu", "100m"),
        ("1e3", "cpu", "1000"),
        ("1", "cpu", "1"),
        ("1Gi", "memory", "1Gi"),
        ("1.5Gi", "memory", "1536Mi"),
        ("129e6", "memory", "129000000"),
        ("1048576", "memory", "1Mi"),
        ("1k", "memory", "1000"),
        ("2Gi", "hugepages-1Gi", "2Gi"),
        ("10Gi", "ephemeral-storage", "10Gi"),
        ("110", "pods", "110"),
        ("2", "nvidia.com/gpu", "2"),
    ],
)
def test_round_trip(text, resource, canonical):
    value = parse_quantity(text)
    assert format_quantity(resource, value) == canonical
    assert parse_quantity(canonical) == value
    assert format_quantity(resource, parse_quantity(canonical)) == canonical


@pytest.mark.parametrize(
    ("name", "is_bytes"),
    [("memory", True), ("ephemeral-storage", True), ("storage", True), ("hugepages-2Mi", True),
     ("cpu", False), ("pods", False), ("nvidia.com/gpu", False)],
)  # fmt: skip
def test_byte_resources(name, is_bytes):
    assert is_byte_resource(name) is is_bytes


def test_resource_lists():
    parsed = parse_resources({"memory": "1.5Gi", "cpu": "0.25", "pods": 3})
    assert parsed == {"memory": F(3 * 2**29), "cpu": F(1, 4), "pods": F(3)}
    assert list(format_resources(parsed).items()) == [
        ("cpu", "250m"),
        ("memory", "1536Mi"),
        ("pods", "3"),
    ]
    assert parse_resources(None) == {}
