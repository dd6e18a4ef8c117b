"""Prometheus histograms scraped before and after a run: quantiles of what happened between.

The API call latency SLIs of Kubernetes' scalability SLOs are read from the apiserver's own
``apiserver_request_duration_seconds`` histogram, per verb and resource (and scope for reads):
  * mutating (POST, PUT, PATCH, DELETE): p99 <= 1 s;
  * read-only (GET, LIST): p99 <= 1 s for a single object (scope ``resource``), 5 s for a
    namespace's list, 30 s for a cluster-wide list.
WATCH and CONNECT (long-running, streaming) are not API calls in that sense and are left out.
A quantile comes from the bucket counts between two scrapes, interpolated inside its bucket
(as Prometheus's ``histogram_quantile`` does), so it is as fine as the buckets are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

REQUESTS = "apiserver_request_duration_seconds"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ONLY = frozenset({"GET", "LIST"})
READ_LIMITS = {"resource": 1.0, "namespace": 5.0, "cluster": 30.0}
MUTATING_LIMIT = 1.0
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Buckets = dict[float, float]


def buckets(metrics: str, name: str, label: str) -> Buckets:
    """Cumulative bucket counts of one histogram, series summed (``label`` filters them)."""
    out: Buckets = {}
    for line in metrics.splitlines():
        if not line.startswith(f"{name}_bucket{{") or label not in line:
            continue
        le = line.split('le="', 1)[1].split('"', 1)[0]
        bound = math.inf if le == "+Inf" else float(le)
        out[bound] = out.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def quantile(before: Buckets, after: Buckets, q: float) -> float:
    """The q-quantile of the observations between two scrapes, interpolated in its bucket."""
    delta = sorted((b, after.get(b, 0.0) - before.get(b, 0.0)) for b in after)
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in delta:
        if count >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def request_histograms(metrics: str) -> dict[tuple[str, str, str], Buckets]:
    """``apiserver_request_duration_seconds`` per (verb, resource[/subresource], scope)."""
    out: dict[tuple[str, str, str], Buckets] = {}
    prefix = f"{REQUESTS}_bucket{{"
    for line in metrics.splitlines():
        if not line.startswith(prefix):
            continue
        labels_text, value = line[len(prefix) :].rsplit("} ", 1)
        labels = dict(_LABEL.findall(labels_text))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        key = (labels.get("verb", ""), resource, labels.get("scope", ""))
        le = labels.get("le", "+Inf")
        bound = math.inf if le == "+Inf" else float(le)
        series = out.setdefault(key, {})
        series[bound] = series.get(bound, 0.0) + float(value)
    return out


@dataclass(frozen=True)
class CallLatency:
    """One (verb, resource, scope)'s p99 over a run, against its SLO threshold."""

    sli: str  # "mutating" or "read-only"
    verb: str
    resource: str
    scope: str
    p99: float
    count: int
    limit: float

    @property
    def share(self) -> float:
        """p99 as a share of its threshold (>= 1 breaks the SLO)."""
        return self.p99 / self.limit

    def __str__(self) -> str:
        return (
            f"{self.verb} {self.resource} ({self.scope}) p99 {self.p99 * 1000:.0f} ms"
            f" n={self.count} (limit {self.limit:g} s)"
        )


def call_latencies(before: str, after: str) -> list[CallLatency]:
    """Every SLI series that saw calls between two scrapes of one apiserver, worst first."""
    old, new = request_histograms(before), request_histograms(after)
    out = []
    for (verb, resource, scope), series in new.items():
        if verb in MUTATING:
            sli, limit = "mutating", MUTATING_LIMIT
        elif verb in READ_ONLY and scope in READ_LIMITS:
            sli, limit = "read-only", READ_LIMITS[scope]
        else:
            continue
        prior = old.get((verb, resource, scope), {})
        count = int(series.get(math.inf, 0.0) - prior.get(math.inf, 0.0))
        if count > 0:
            p99 = quantile(prior, series, 0.99)
            out.append(CallLatency(sli, verb, resource, scope, p99, count, limit))
    return sorted(out, key=lambda c: -c.share)


def worst(calls: list[CallLatency], sli: str) -> CallLatency | None:
    """The series of ``sli`` whose p99 is closest to (or furthest past) its threshold."""
    return next((c for c in calls if c.sli == sli), None)
