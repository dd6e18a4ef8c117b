"""dashboards/kosmos.json: a valid Grafana dashboard whose every query parses and names a
series the components export (the integration twin scrapes running components)."""

from __future__ import annotations

import copy

import pytest

from kosmos.kube.metrics import REGISTRY
from kosmos.launcher import metrics as catalogue
from tests import grafana
from tests.unit.dashboards import grafana_model

DASHBOARD = grafana.load()


def test_grafanas_dashboard_model_knows_every_key_and_accepts_every_value() -> None:
    assert grafana_model.round_trip_drops(DASHBOARD) == []
    assert list(grafana_model.type_errors(grafana_model.decode(DASHBOARD))) == []


def test_the_model_check_catches_unknown_keys_bad_enums_and_wrong_types() -> None:
    """The validation above is not vacuous."""
    panel = next(p for p in DASHBOARD["panels"] if p["type"] == "timeseries")
    index = DASHBOARD["panels"].index(panel)
    bad = copy.deepcopy(DASHBOARD)
    bad["panels"][index]["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 1
    bad["panels"][index]["options"]["legend"]["displayMode"] = "tabel"
    bad["panels"][index]["gridPos"]["w"] = "12"
    assert grafana_model.round_trip_drops(bad) == [
        f"/panels[{index}]/fieldConfig/defaults/custom/lineWidht"
    ]
    errors = list(grafana_model.type_errors(grafana_model.decode(bad)))
    assert any("display_mode: 'tabel'" in e for e in errors), errors
    assert any("grid_pos.w: '12'" in e for e in errors), errors


def test_every_query_parses_as_promql() -> None:
    found = list(grafana.queries(DASHBOARD))
    assert len(found) > 40
    for where, expr in found:
        try:
            grafana.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}: {expr}")


def test_the_parser_refuses_broken_promql() -> None:
    with pytest.raises(ValueError):
        grafana.parse("sum(rate(kosmos_reconcile_total[$__rate_interval])")
    with pytest.raises(ValueError, match="without a substitute"):
        grafana.parse("kosmos_leader{lease=~'$lease'}")


def test_variables_datasource_job_and_cluster_and_every_query_uses_them() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "cluster"} <= set(variables)
    for panel in grafana.panels(DASHBOARD):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])


def test_every_metric_in_a_query_is_in_the_registry() -> None:
    """The fast twin of tests/integration/observability: names against the registry."""
    catalogue.load_components()
    exported = grafana.exposed_names((s.name, s.kind) for s in catalogue.catalogue())
    missing = {
        name: where
        for name, where in grafana.dashboard_metrics(DASHBOARD).items()
        if name not in exported
    }
    assert missing == {}


def test_the_dashboard_covers_what_operators_ask_for() -> None:
    used = set(grafana.dashboard_metrics(DASHBOARD))
    for needed in (
        "kosmos_reconcile_total",
        "kosmos_workqueue_depth",
        "kosmos_watch_restarts_total",
        "kosmos_watch_relists_total",
        "kosmos_clustertree_leaf_allocatable",
        "kosmos_clustertree_leaf_pods",
        "kosmos_clusterlink_node_link_state",
        "kosmos_scheduler_extender_request_duration_seconds_bucket",
        "kosmos_client_request_duration_seconds_bucket",
        "kosmos_leader",
    ):
        assert needed in used, needed
    assert REGISTRY is not None
