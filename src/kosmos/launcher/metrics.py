"""Every Prometheus series the Kosmos components export, as docs/observability.md lists them.

The launcher is the one module that may import every component; importing them registers
their series in the runtime's registry (``kosmos.kube.metrics.REGISTRY``), so the catalogue
is read from the registry itself and cannot drift from the code. ``python -m
kosmos.launcher.metrics docs/observability.md`` rewrites the table between the markers.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from kosmos.kube.metrics import REGISTRY
from kosmos.launcher import COMPONENTS

BEGIN = "<!-- metrics:begin (python -m kosmos.launcher.metrics docs/observability.md) -->"
END = "<!-- metrics:end -->"
#: where a series is served, by name prefix (first match); the rest come from the runtime
SERVED_BY = (
    ("kosmos_clustertree_", "cluster-manager"),
    ("kosmos_kubelet_", "cluster-manager"),
    ("kosmos_migration_", "cluster-manager"),
    ("kosmos_mcs_dns_", "mcs-dns"),
    ("kosmos_mcs_probe", "eps-probe"),
    ("kosmos_mcs_", "cluster-manager"),
    ("kosmos_clusterlink_", "network-manager"),
    ("kosmos_scheduler_", "scheduler-extender"),
    ("kosmos_node_agent_", "node-agent"),
)
#: a family's sample names as scraped, by type (prometheus_client names counters without _total)
_SAMPLES = {"counter": "{}_total", "histogram": "{}_bucket, _sum, _count"}


@dataclass(frozen=True)
class Series:
    name: str  #: the family name (a counter's without ``_total``)
    kind: str  #: counter, gauge, histogram
    labels: tuple[str, ...]
    help: str

    @property
    def scraped(self) -> str:
        return _SAMPLES.get(self.kind, "{}").format(self.name)

    @property
    def served_by(self) -> str:
        return next((c for p, c in SERVED_BY if self.name.startswith(p)), "every component")


def load_components() -> None:
    """Import every component the launcher knows, so each registers its series."""
    for target in COMPONENTS.values():
        importlib.import_module(target.partition(":")[0])


def catalogue() -> list[Series]:
    """The registry's families, sorted by name.

    Labels come from the collectors themselves: a family without samples yet (no label
    values seen) still has its label names there, not in what ``collect`` returns.
    """
    out: dict[str, Series] = {}
    for collector in list(REGISTRY._collector_to_names):  # the registry has no public listing
        labels = tuple(getattr(collector, "_labelnames", getattr(collector, "labelnames", ())))
        describe = getattr(collector, "describe", None)
        families = describe() if describe else collector.collect()
        for family in families:
            out[family.name] = Series(family.name, family.type, labels, family.documentation)
    return [out[name] for name in sorted(out)]


def render(series: list[Series]) -> str:
    lines = [
        BEGIN,
        "| Series | Type | Labels | Served by | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for each in series:
        labels = ", ".join(f"`{label}`" for label in each.labels) or "-"
        meaning = each.help.replace("|", "\\|")
        lines.append(
            f"| `{each.scraped}` | {each.kind} | {labels} | {each.served_by} | {meaning} |"
        )
    return "\n".join([*lines, END])


def updated(text: str, table: str) -> str:
    """``text`` with the table between the markers replaced (ValueError without markers)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN!r} ... {END!r} block")
    return text[:start] + table + text[end + len(END) :]


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else Path("docs/observability.md")
    load_components()
    path.write_text(updated(path.read_text(), render(catalogue())))


if __name__ == "__main__":
    main(sys.argv[1:])
