"""docs/observability.md lists every series the registry has (generated, kept in sync)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosmos.launcher import metrics

DOC = Path(__file__).parents[3] / "docs" / "observability.md"


def test_the_metrics_table_is_what_the_registry_generates() -> None:
    metrics.load_components()
    text = DOC.read_text()
    assert metrics.updated(text, metrics.render(metrics.catalogue())) == text, (
        "docs/observability.md is stale (regenerate: "
        "python -m kosmos.launcher.metrics docs/observability.md)"
    )


def test_the_catalogue_has_labels_kinds_and_where_each_series_is_served() -> None:
    metrics.load_components()
    series = {s.name: s for s in metrics.catalogue()}
    state = series["kosmos_clusterlink_node_link_state"]
    assert (state.kind, state.labels, state.served_by) == (
        "gauge",
        ("cluster", "node", "state"),
        "network-manager",
    )
    reconciles = series["kosmos_reconcile"]
    assert (reconciles.scraped, reconciles.served_by) == (
        "kosmos_reconcile_total",
        "every component",
    )
    assert series["kosmos_mcs_probe"].served_by == "eps-probe"
    with pytest.raises(ValueError, match="metrics:begin"):
        metrics.updated("no markers", "")
