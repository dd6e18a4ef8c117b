"""bench/density.py's figures: per-pod startup, Kosmos's phases, API call SLIs, costs, verdicts.

Every per-pod figure is computed per repetition, then the median over repetitions is printed
with its spread (min..max), as ``_stats`` does for the other benchmarks. The kosmos/direct
ratio is taken per repetition pair (the arms of one repetition ran back to back).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from _apimetrics import CallLatency, worst
from _podwatch import Seen
from _procstat import Usage
from _stats import percentile

STARTUP_LIMIT = 5.0  # pod startup p99 (s)
RATIO_GOAL = 1.3
QS = (50, 90, 99)


@dataclass
class ArmResult:
    arm: str
    rate: float
    pods: int
    lag: float
    failed: int
    host: dict[str, Seen]
    members: dict[str, Seen]
    calls: dict[str, list[CallLatency]]
    usage: Usage
    cleanup: Coroutine[Any, Any, None] | None = None  # deletes the arm's namespaces

    def pods_of_arm(self) -> dict[str, Seen]:
        return self.host if self.arm == "kosmos" else self.members

    def startup(self, since: str = "added") -> list[float]:
        return [s.ready - getattr(s, since) for s in self.pods_of_arm().values() if s.ready]

    def achieved(self) -> float:
        added = sorted(s.added for s in self.pods_of_arm().values())
        return (len(added) - 1) / (added[-1] - added[0]) if len(added) > 1 else 0.0

    def phases(self) -> dict[str, list[float]]:
        """Per-pod durations of each step, in the order a pod goes through them."""
        out: dict[str, list[float]] = {}

        def add(name: str, start: float, end: float) -> None:
            if start and end:
                out.setdefault(name, []).append(end - start)

        if self.arm == "direct":
            for m in self.members.values():
                add("created -> scheduled", m.added, m.scheduled)
                add("scheduled -> Ready", m.scheduled, m.ready)
            return out
        for key, h in self.host.items():
            m = self.members.get(key, Seen())
            add("host created -> host scheduled", h.added, h.scheduled)
            add("host scheduled -> member created", h.scheduled, m.added)
            add("member created -> member Ready", m.added, m.ready)
            add("member Ready -> host Ready", m.ready, h.ready)
        return out

    def cm_cpu_per_10k(self) -> float:
        return self.usage.cpu.get("cluster-manager", 0.0) / max(self.pods, 1) * 10_000


def _median_spread(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "-"
    mid = statistics.median(values)
    return f"{fmt(mid)} ({fmt(min(values))}..{fmt(max(values))})"


def _s(v: float) -> str:
    return f"{v:.2f}s"


def _q(values: list[float]) -> dict[int, float]:
    return {q: percentile(values, q) for q in QS}


def _startup_lines(arm: str, reps: list[ArmResult]) -> list[str]:
    lines = []
    for i, r in enumerate(reps, start=1):
        w, c = _q(r.startup("added")), _q(r.startup("created"))
        ready = len(r.startup())
        lines.append(
            f"  {arm} rep {i}: Ready {ready}/{r.pods}, achieved {r.achieved():.1f} pods/s,"
            f" lag {r.lag:.2f}s, failed creates {r.failed};"
            f" seen->Ready p50/p90/p99 {w[50]:.2f}/{w[90]:.2f}/{w[99]:.2f}s;"
            f" creationTimestamp->Ready {c[50]:.2f}/{c[90]:.2f}/{c[99]:.2f}s"
        )
    for since, what in (
        ("added", "seen->Ready (headline)"),
        ("created", "creationTimestamp->Ready"),
    ):
        per = [_q(r.startup(since)) for r in reps]
        cells = ", ".join(f"p{q} {_median_spread([p[q] for p in per], _s)}" for q in QS)
        lines.append(f"  {arm} {what}: {cells}")
    return lines


def _api_lines(arm: str, reps: list[ArmResult]) -> list[str]:
    lines = []
    for cluster in reps[0].calls:
        cells = []
        for sli in ("mutating", "read-only"):
            worsts = [w for r in reps if (w := worst(r.calls[cluster], sli)) is not None]
            if worsts:
                top = max(worsts, key=lambda c: c.share)
                cells.append(f"{sli} worst p99 {top} ")
        lines.append(f"  {arm} API {cluster}: " + "; ".join(cells))
    return lines


def _usage_lines(arm: str, reps: list[ArmResult]) -> list[str]:
    groups = sorted(reps[0].usage.cpu, key=lambda g: -reps[0].usage.cpu[g])
    cores = {
        g: statistics.median(r.usage.cpu.get(g, 0) / r.usage.wall for r in reps) for g in groups
    }
    top = ", ".join(f"{g} {c:.2f}" for g, c in sorted(cores.items(), key=lambda kv: -kv[1])[:6])
    busy = statistics.median(r.usage.machine for r in reps)
    cm = [r.cm_cpu_per_10k() for r in reps]
    rss = [r.usage.peak_rss / 2**20 for r in reps]
    growth = [(r.usage.peak_rss - r.usage.start_rss) / 2**20 / r.pods * 10_000 for r in reps]
    per_1k = {
        g: statistics.median(r.usage.cpu.get(g, 0) / r.pods * 1000 for r in reps) for g in groups
    }
    spent = ", ".join(f"{g} {v:.1f}" for g, v in sorted(per_1k.items(), key=lambda kv: -kv[1]))
    return [
        f"  {arm} cores used (median): {top}; machine busy {busy:.0%}",
        f"  {arm} CPU s per 1k pods (whole arm, idle included): total"
        f" {sum(per_1k.values()):.1f}; {spent}",
        f"  {arm} cluster-manager CPU s per 10k pods {_median_spread(cm, lambda v: f'{v:.0f}')},"
        f" peak RSS MiB {_median_spread(rss, lambda v: f'{v:.0f}')},"
        f" RSS growth over the arm MiB per 10k pods {_median_spread(growth, lambda v: f'{v:.0f}')}",
    ]


def _phase_lines(reps: list[ArmResult]) -> list[str]:
    per = [r.phases() for r in reps]
    lines = []
    for name in per[0]:
        p50 = [percentile(p.get(name, []), 50) for p in per]
        p99 = [percentile(p.get(name, []), 99) for p in per]
        lines.append(f"    {name}: p50 {_median_spread(p50, _s)}, p99 {_median_spread(p99, _s)}")
    return lines


def print_report(
    results: list[ArmResult], members: int, nodes: int, args: argparse.Namespace
) -> None:
    print(
        f"\ndensity: {members} members x {nodes} kwok nodes, leaf model {args.leaf_model},"
        f" {args.pods} pods per arm ({args.namespaces} namespaces, {args.replicas} per"
        f" Deployment), {args.reps} reps alternated"
    )
    summary: dict[str, object] = {}
    for rate in dict.fromkeys(r.rate for r in results):
        at = [r for r in results if r.rate == rate]
        by_arm = {a: [r for r in at if r.arm == a] for a in dict.fromkeys(r.arm for r in at)}
        print(f"\nrate {rate:g} pods/s")
        for arm, reps in by_arm.items():
            print("\n".join(_startup_lines(arm, reps)))
            if arm == "kosmos":
                print("  kosmos phases (median over reps, spread):")
                print("\n".join(_phase_lines(reps)))
            print("\n".join(_api_lines(arm, reps)))
            print("\n".join(_usage_lines(arm, reps)))
            p99 = statistics.median(percentile(r.startup(), 99) for r in reps)
            p99c = statistics.median(percentile(r.startup("created"), 99) for r in reps)
            mut = max(
                (c.p99 for r in reps for cl in r.calls.values() for c in cl if c.sli == "mutating"),
                default=0.0,
            )
            held = p99 < STARTUP_LIMIT and p99c < STARTUP_LIMIT and mut < 1.0
            print(
                f"  {arm} SLOs: startup p99 {p99:.2f}s (creationTimestamp {p99c:.2f}s) < 5s,"
                f" worst mutating p99 {mut:.2f}s < 1s: {'held' if held else 'BROKEN'}"
            )
            summary[f"{rate:g}/{arm}"] = {
                "p99": round(p99, 3),
                "p99_created": round(p99c, 3),
                "mutating_p99": round(mut, 3),
            }
        if {"direct", "kosmos"} <= by_arm.keys():
            for since, what in (("added", "seen->Ready"), ("created", "creationTimestamp->Ready")):
                for q in (50, 99):
                    ratios = [
                        percentile(k.startup(since), q) / max(percentile(d.startup(since), q), 1e-9)
                        for d, k in zip(by_arm["direct"], by_arm["kosmos"], strict=False)
                    ]
                    mid = statistics.median(ratios)
                    verdict = "met" if mid <= RATIO_GOAL else "NOT met"
                    print(
                        f"  ratio kosmos/direct {what} p{q}: {mid:.2f} (per rep "
                        f"{' '.join(f'{x:.2f}' for x in ratios)}; goal <= {RATIO_GOAL}: {verdict})"
                    )
                    summary[f"{rate:g}/ratio_{since}_p{q}"] = round(mid, 3)
    print(json.dumps(summary))
