"""The dashboard against running components: every series it reads is served, the leaf
series added for it have samples, and a component started with ``--log-format json`` writes
JSON lines.

Link state per node has no sample here: a NodeConfig needs its node's agent to report the
tunnel interface, and the kwok nodes have no agent. Its samples are checked where agents run,
in ``tests/e2e/test_link_real_nodes.py``.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests import grafana
from tests.fixtures.link import LinkEnv
from tests.fixtures.scheduler import SchedulerEnv
from tests.fixtures.tree import TreeEnv
from tests.support import wait_for

MEMBER = "cluster1"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def pages(tree: TreeEnv, link: LinkEnv, scheduler: SchedulerEnv) -> dict[str, str]:
    """/metrics of the cluster-manager, the network-manager and the scheduler extender."""
    status, extender = scheduler.extender_get("/metrics")
    assert status == 200, extender
    return {
        "cluster-manager": scrape(tree.health_port),
        "network-manager": scrape(link.health_port),
        "scheduler-extender": extender,
    }


def test_every_metric_the_dashboard_reads_is_served(
    tree: TreeEnv, link: LinkEnv, scheduler: SchedulerEnv
) -> None:
    served = {
        name: grafana.scraped_names(text) for name, text in pages(tree, link, scheduler).items()
    }
    everywhere = set().union(*served.values())
    used = grafana.dashboard_metrics(grafana.load())
    missing = {name: where for name, where in used.items() if name not in everywhere}
    assert missing == {}, f"the dashboard reads series no component serves: {missing}"
    # the series each component adds are served by that component
    assert "kosmos_clustertree_leaf_pods" in served["cluster-manager"]
    assert "kosmos_clusterlink_node_link_state" in served["network-manager"]
    assert (
        "kosmos_scheduler_extender_request_duration_seconds_bucket" in served["scheduler-extender"]
    )
    for text in served.values():
        assert "kosmos_reconcile_total" in text and "kosmos_workqueue_depth" in text


def test_leaf_nodes_have_samples(tree: TreeEnv) -> None:
    def leaf_samples() -> set[str] | None:
        sampled = grafana.sampled_names(scrape(tree.health_port))
        wanted = {"kosmos_clustertree_leaf_allocatable", "kosmos_clustertree_leaf_pods"}
        return sampled if wanted <= sampled else None

    wait_for(leaf_samples, 60, "leaf node samples on the cluster-manager")
    text = scrape(tree.health_port)
    leaf = f'cluster="{MEMBER}",node="kosmos-{MEMBER}"'
    assert f'kosmos_clustertree_leaf_allocatable{{{leaf},resource="cpu"}}' in text, text[:2000]
    assert f"kosmos_clustertree_leaf_pods{{{leaf}}}" in text


def test_log_format_json_writes_one_json_object_per_line(link: LinkEnv) -> None:
    link.stop()
    offset = link.log.stat().st_size if link.log.exists() else 0  # after the old one's last line
    try:
        link.start("--log-format", "json", "-vv")

        def records() -> list[dict[str, Any]] | None:
            """Every line since the start, parsed (a line that is not JSON fails at once),
            once a reconcile has logged one with its controller, cluster and key."""
            with link.log.open("rb") as log:
                log.seek(offset)
                lines = log.read().decode().splitlines()
            parsed = [json.loads(line) for line in lines]
            reconciling = any({"controller", "cluster", "key"} <= set(r) for r in parsed)
            return parsed if reconciling else None

        parsed = wait_for(records, 60, "a reconcile's JSON log line from the network-manager")
        for record in parsed:
            assert {"time", "level", "logger", "message"} <= set(record), record
    finally:
        link.stop()
        link.start()
