"""The Grafana dashboard in ``dashboards/``: its PromQL, and the metric names it reads.

Shared by the unit check (against the in-process registry) and the integration check
(against the /metrics of running components). Queries are parsed by a real PromQL parser
(``promql-parser``, Prometheus's grammar) once Grafana's variables are replaced by values
such as Grafana would send, so a typo in a query fails here and not on a user's screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import promql_parser

DASHBOARD = Path(__file__).parents[1] / "dashboards" / "kosmos.json"
#: what Grafana puts in place of its variables when it sends a query
SUBSTITUTES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$job": "kosmos-cluster-manager|kosmos-network-manager",
    "$cluster": ".*",
}
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<query>.+),\s*)?(?P<label>\w+)\)$")
#: the series a family exposes, by its type (prometheus_client names counters without _total)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = LABEL_VALUES.match(text.strip())
        if match is None:
            raise ValueError(f"variable {variable['name']}: not label_values(...): {text}")
        if match.group("query"):
            yield f"variable {variable['name']}", match.group("query")


def substituted(expr: str) -> str:
    for name in sorted(SUBSTITUTES, key=len, reverse=True):  # $__rate_interval before $__range
        expr = expr.replace(name, SUBSTITUTES[name])
    expr = expr.replace("${", "$")
    if "$" in expr:
        raise ValueError(f"a Grafana variable without a substitute in: {expr}")
    return expr


def parse(expr: str) -> promql_parser.Expr:
    """The query's syntax tree (ValueError naming the problem if it does not parse)."""
    return promql_parser.parse(substituted(expr))


def metric_names(expr: str) -> set[str]:
    """The metric names the query selects (``__name__`` matchers are not used here)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(parse(expr), visit)
    return found


def dashboard_metrics(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """metric name -> where the dashboard uses it."""
    used: dict[str, list[str]] = {}
    for where, expr in queries(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    return used


def exposed_names(families: Iterable[tuple[str, str]]) -> set[str]:
    """The sample names of (family name, type) pairs as Prometheus scrapes them."""
    return {name + suffix for name, kind in families for suffix in SUFFIXES.get(kind, ("",))}


def sampled_names(exposition: str) -> set[str]:
    """Sample names a /metrics page carries a value for."""
    return set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", exposition, flags=re.MULTILINE))


def scraped_names(exposition: str) -> set[str]:
    """Sample names a /metrics page declares (``# TYPE``) or carries, suffixes expanded."""
    declared = re.findall(r"^# TYPE (\S+) (\S+)$", exposition, flags=re.MULTILINE)
    # the text format names a counter's family with its _total already
    families = [(n.removesuffix("_total") if k == "counter" else n, k) for n, k in declared]
    return exposed_names(families) | sampled_names(exposition)
