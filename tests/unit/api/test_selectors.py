import pytest

from kosmos.api.selectors import selector_size, tolerated, tolerates

GPU = {"key": "gpu", "value": "a100", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "a100"}, GPU, True),
        ({"key": "gpu", "value": "a100"}, GPU, True),  # Equal is the default operator
        ({"key": "gpu", "value": "h100"}, GPU, False),
        ({"key": "gpu", "operator": "Exists"}, GPU, True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, GPU, True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, GPU, False),
        ({"operator": "Exists"}, GPU, True),  # empty key + Exists: every taint
        ({"operator": "Exists", "effect": "NoExecute"}, GPU, False),
        ({"key": "other", "operator": "Exists"}, GPU, False),
        ({"key": "gpu", "operator": "Lt", "value": "1"}, GPU, False),  # unknown operator
        ({"key": "k", "operator": "Equal"}, {"key": "k", "effect": "NoSchedule"}, True),
    ],
)
def test_tolerates_as_upstream(toleration, taint, expected):
    assert tolerates(toleration, taint) is expected


def test_tolerated_by_any():
    assert tolerated(
        GPU, [{"key": "x", "operator": "Exists"}, {"key": "gpu", "operator": "Exists"}]
    )
    assert not tolerated(GPU, [])


@pytest.mark.parametrize(
    ("selector", "size"),
    [
        ({}, 0),
        ({"matchLabels": {"a": "1", "b": "2"}}, 2),
        ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, 2),
    ],
)
def test_selector_size(selector, size):
    assert selector_size(selector) == size
