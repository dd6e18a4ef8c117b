"""Per-item latency summaries every benchmark prints the same way."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def summary(label: str, per_rep: list[list[float]]) -> list[str]:
    """Each repetition's p50/p99, then the median and spread (min..max) over repetitions."""
    lines = []
    p50s = [percentile(v, 50) for v in per_rep]
    p99s = [percentile(v, 99) for v in per_rep]
    for i, values in enumerate(per_rep):
        missing = "" if values else " (no item completed)"
        lines.append(
            f"  {label} rep {i + 1}: n={len(values)} p50 {p50s[i]:.3f}s p99 {p99s[i]:.3f}s{missing}"
        )
    lines.append(
        f"  {label}: p50 median {statistics.median(p50s):.3f}s"
        f" (spread {min(p50s):.3f}..{max(p50s):.3f}), p99 median {statistics.median(p99s):.3f}s"
        f" (spread {min(p99s):.3f}..{max(p99s):.3f})"
    )
    return lines
