"""Rounds and the table of ``bench/network.py``: every row against the underlay and its baseline.

A row is a probe (one iperf3 run and one ping series) with two references: the underlay it
rides on (the same testbed's node -> node row; measured in the same rounds) and the baseline
it is judged against (raw VXLAN for the Kosmos VXLAN rows, the hand-built routed pair for raw
VXLAN itself, hand-built IPsec for Kosmos IPsec). Rounds take every probe in turn, the order
reversed every other round, so load from other processes hits every row alike; the table
prints the median and the spread (min..max) of each row. A ratio is the median of the
per-round ratios (the row against its reference in the same round), which other load on a
shared machine disturbs far less than a ratio of two medians would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

Probe = Callable[[], tuple[float, float]]  # -> (Mbit/s, RTT ms)


@dataclass(frozen=True)
class Row:
    name: str
    probe: Probe
    underlay: str = ""  # the row that is this row's underlay ("" for an underlay row)
    baseline: str = ""  # the row this one is judged against ("" for none)


@dataclass(frozen=True)
class Result:
    row: Row
    mbit_s: list[float]
    rtt_ms: list[float]

    @property
    def bw(self) -> float:
        return statistics.median(self.mbit_s)

    @property
    def rtt(self) -> float:
        return statistics.median(self.rtt_ms)


def run_rounds(rows: list[Row], rounds: int) -> dict[str, Result]:
    samples: dict[str, tuple[list[float], list[float]]] = {row.name: ([], []) for row in rows}
    for index in range(rounds):
        for row in rows if index % 2 == 0 else list(reversed(rows)):
            bw, rtt = row.probe()
            samples[row.name][0].append(bw)
            samples[row.name][1].append(rtt)
    return {row.name: Result(row, *samples[row.name]) for row in rows}


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def ratio(mine: list[float], theirs: list[float]) -> float:
    """The median of the per-round ratios (both lists hold one sample per round)."""
    return statistics.median(_ratio(a, b) for a, b in zip(mine, theirs, strict=True))


@dataclass(frozen=True)
class Line:
    """A printed row: medians, spreads, the ratio to the underlay and to the baseline."""

    row: str
    mbit_s: float
    mbit_s_range: tuple[float, float]
    rtt_ms: float
    rtt_ms_range: tuple[float, float]
    underlay: str | None
    bw_to_underlay: float | None
    baseline: str | None
    bw_ratio: float | None
    rtt_ratio: float | None


def table(results: dict[str, Result]) -> list[Line]:
    lines = []
    for name, result in results.items():
        under = results.get(result.row.underlay)
        base = results.get(result.row.baseline)
        lines.append(
            Line(
                row=name,
                mbit_s=round(result.bw, 1),
                mbit_s_range=(round(min(result.mbit_s), 1), round(max(result.mbit_s), 1)),
                rtt_ms=round(result.rtt, 4),
                rtt_ms_range=(round(min(result.rtt_ms), 4), round(max(result.rtt_ms), 4)),
                underlay=result.row.underlay or None,
                bw_to_underlay=round(ratio(result.mbit_s, under.mbit_s), 3) if under else None,
                baseline=result.row.baseline or None,
                bw_ratio=round(ratio(result.mbit_s, base.mbit_s), 3) if base else None,
                rtt_ratio=round(ratio(result.rtt_ms, base.rtt_ms), 3) if base else None,
            )
        )
    return lines


def report(results: dict[str, Result]) -> None:
    lines = table(results)
    print(
        f"{'row':<34} {'Gbit/s (min..max)':>22} {'RTT ms':>8} {'/underlay':>9}"
        f" {'bw ratio':>8} {'RTT ratio':>9}  against"
    )
    for line in lines:
        low, high = line.mbit_s_range
        spread = f"{line.mbit_s / 1000:.2f} ({low / 1000:.2f}..{high / 1000:.2f})"
        under = "" if line.bw_to_underlay is None else f"{line.bw_to_underlay:.2f}"
        ratios = ""
        if line.bw_ratio is not None and line.rtt_ratio is not None:
            ratios = f"{line.bw_ratio:>8.2f} {line.rtt_ratio:>9.2f}  {line.baseline}"
        print(f"{line.row:<34} {spread:>22} {line.rtt_ms:>8.3f} {under:>9} {ratios}")
    print(json.dumps([dataclasses.asdict(line) for line in lines]))
