"""Seats, shares, the next pod's cluster and deletion costs: the ratio holds both ways."""

from collections import Counter
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kosmos.scheduler.placement import (
    OVERFLOW_COST,
    Share,
    choose,
    deletion_costs,
    seat_of_ordinal,
    seat_order,
    shares_of,
    targets,
)

W73 = [Share("c1", weight=7), Share("c2", weight=3)]


def test_shares_of_a_term():
    term = {"placement": {"clusters": [{"name": "a", "replicas": 2}, {"name": "b", "weight": 1}]}}
    assert shares_of(term) == [Share("a", replicas=2), Share("b", weight=1)]
    assert shares_of({"name": "t"}) == []


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        (W73, 10, {"c1": 7, "c2": 3}),
        (W73, 20, {"c1": 14, "c2": 6}),
        (W73, 0, {"c1": 0, "c2": 0}),
        (W73, 1, {"c1": 1, "c2": 0}),
        ([Share("a", weight=2), Share("b", weight=1)], 2, {"a": 1, "b": 1}),  # Karmada: 2/0
        ([Share("a", weight=1), Share("b", weight=1)], 3, {"a": 2, "b": 1}),  # ties: list order
        ([Share("a", replicas=2), Share("b", weight=1)], 5, {"a": 2, "b": 3}),
        ([Share("a", replicas=2), Share("b", replicas=3)], 4, {"a": 2, "b": 2}),
        ([Share("a", replicas=2), Share("b", replicas=3)], 9, {"a": 2, "b": 3}),  # rest waits
        (
            [Share("a", replicas=1), Share("b", weight=1), Share("c", weight=3)],
            9,
            {"a": 1, "b": 2, "c": 6},
        ),
    ],
)
def test_targets(shares, total, expected):
    assert targets(shares, total) == expected


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=5),
    total=st.integers(min_value=0, max_value=60),
)
def test_targets_are_house_monotone_and_sum_to_the_total(weights, total):
    shares = [Share(f"c{i}", weight=w) for i, w in enumerate(weights)]
    now, more = targets(shares, total), targets(shares, total + 1)
    assert sum(now.values()) == total
    assert all(more[c] >= now[c] for c in now)  # adding a pod never takes a seat away
    assert sum(more[c] - now[c] for c in now) == 1


def test_seat_order_fixed_first_then_sainte_lague():
    order = list(islice(seat_order([Share("a", replicas=2), *W73]), 12))
    assert order[:2] == ["a", "a"]
    assert Counter(order[2:]) == {"c1": 7, "c2": 3}


def test_choose_fills_the_least_filled_cluster():
    assert choose(W73, 10, {}, {"c1", "c2"}).cluster == "c1"
    assert choose(W73, 10, {"c1": 1}, {"c1", "c2"}).cluster == "c2"
    assert choose(W73, 10, {"c1": 3, "c2": 1}, {"c1", "c2"}).cluster == "c2"  # 3/7 > 1/3
    assert choose(W73, 10, {"c1": 2, "c2": 1}, {"c1", "c2"}).cluster == "c1"  # 2/7 < 1/3


def test_choose_a_deployment_from_zero_ends_at_the_split():
    placed: Counter[str] = Counter()
    for _ in range(10):
        placed[choose(W73, 10, placed, {"c1", "c2"}).cluster] += 1
    assert placed == {"c1": 7, "c2": 3}


def test_choose_skips_an_infeasible_cluster_below_its_share():
    assert choose(W73, 10, {"c1": 2}, {"c2"}).cluster == "c2"


def test_choose_says_why_not():
    full = choose(W73, 10, {"c1": 7, "c2": 3}, {"c1", "c2"})
    assert full.cluster is None
    assert full.reason == "every cluster has its share of the 10 pods (c1 7, c2 3)"
    blocked = choose(W73, 10, {"c1": 7}, {"c1"})
    assert blocked.cluster is None
    assert "below their share (c2" in blocked.reason
    assert "have no node that can take the pod" in blocked.reason


def test_choose_after_recreation_refills_the_cluster_that_lost_a_pod():
    assert choose(W73, 10, {"c1": 6, "c2": 3}, {"c1", "c2"}).cluster == "c1"
    assert choose(W73, 10, {"c1": 7, "c2": 2}, {"c1", "c2"}).cluster == "c2"


def test_statefulset_ordinals_take_seats():
    assert [seat_of_ordinal(W73, i) for i in range(10)].count("c1") == 7
    assert seat_of_ordinal([Share("a", replicas=1)], 1) is None
    assert seat_of_ordinal(W73, -1) is None


def scale_down(costs: dict[str, int], by_cluster: dict[str, list[str]], keep: int) -> Counter:
    """What the ReplicaSet controller keeps: the pods with the highest costs."""
    where = {pod: c for c, pods in by_cluster.items() for pod in pods}
    kept = sorted(costs, key=lambda p: costs[p], reverse=True)[:keep]
    return Counter(where[p] for p in kept)


def test_scale_down_by_cost_keeps_the_split():
    by_cluster = {"c1": [f"a{i}" for i in range(14)], "c2": [f"b{i}" for i in range(6)]}
    costs = deletion_costs(W73, by_cluster)
    assert scale_down(costs, by_cluster, 10) == {"c1": 7, "c2": 3}
    assert scale_down(costs, by_cluster, 5) == targets(W73, 5)


def test_over_represented_cluster_loses_its_extra_pods_first():
    by_cluster = {"c1": [f"a{i}" for i in range(9)], "c2": ["b0"]}  # c2 was full
    costs = deletion_costs(W73, by_cluster)
    assert scale_down(costs, by_cluster, 8) == {"c1": 7, "c2": 1}


def test_pods_beyond_fixed_counts_or_in_unlisted_clusters_overflow():
    costs = deletion_costs([Share("a", replicas=1)], {"a": ["p", "q"], "x": ["r"]})
    assert costs == {"p": 0, "q": OVERFLOW_COST, "r": OVERFLOW_COST}


def test_costs_are_minus_the_seat_index():
    assert deletion_costs(W73, {"c1": ["a", "b"], "c2": ["c"]}) == {"a": 0, "b": -2, "c": -1}
