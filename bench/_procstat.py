"""CPU seconds and resident memory of the environment's processes, read from /proc.

Benchmarks ask two things of the machine: what one process cost during a run (the
cluster-manager's CPU seconds and peak RSS), and which component was busiest, so that a run
that breaks an SLO names what saturated (a component near one core on a 2-core machine is
the bottleneck; the whole machine near 100 % means everything queues).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field

from kosmos.local import components, kwokctl, procs


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is gone)."""
    try:
        fields = (procs.PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine() -> tuple[int, int]:
    """All and idle (+ iowait) jiffies of the machine so far (/proc/stat)."""
    fields = [int(v) for v in (procs.PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def _busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    return 1.0 - (after[1] - before[1]) / max(after[0] - before[0], 1)


def busy_share(window: float = 1.0) -> float:
    """The machine's non-idle CPU share over ``window`` seconds."""
    before = _machine()
    time.sleep(window)
    return _busy(before, _machine())


def environment_pids(clusters: list[str], kosmos: tuple[str, ...]) -> dict[str, list[int]]:
    """The environment's processes grouped by what they are: ``host kube-apiserver``,
    ``members etcd`` (every member's etcd together), ``cluster-manager``, ..."""
    groups: dict[str, list[int]] = {}
    for cluster in clusters:
        where = "host" if cluster == "host" else "members"
        for process in procs.processes_under(kwokctl.cluster_dir(cluster)):
            groups.setdefault(f"{where} {process.name}", []).append(process.pid)
    for name in kosmos:
        pid = components.running(name)
        if pid is not None:
            groups[name] = [pid]
    groups["bench"] = [os.getpid()]
    return groups


async def settle(groups: dict[str, list[int]], cores: float = 0.3, timeout: float = 180) -> float:
    """Wait until ``groups`` together use less than ``cores`` over two 2 s windows in a row
    (the environment has finished a run's aftermath; other work on the machine does not
    count); returns the seconds waited."""
    started = time.monotonic()
    pids = [p for group in groups.values() for p in group if p != os.getpid()]
    quiet = 0
    while quiet < 2 and time.monotonic() - started < timeout:
        before = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(2)
        quiet = quiet + 1 if (sum(cpu_seconds(p) for p in pids) - before) / 2 < cores else 0
    return time.monotonic() - started


@dataclass
class Usage:
    """CPU seconds per process group between ``start`` and ``stop``, and one pid's peak RSS."""

    groups: dict[str, list[int]]
    rss_pid: int
    peak_rss: int = 0
    start_rss: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    machine: float = 0.0  # the machine's busy share over the run
    _machine0: tuple[int, int] = (0, 0)
    _before: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _sampler: asyncio.Task[None] | None = None

    def _now(self) -> dict[str, float]:
        return {g: sum(cpu_seconds(p) for p in pids) for g, pids in self.groups.items()}

    def start(self) -> None:
        self._before, self._started = self._now(), time.monotonic()
        self._machine0 = _machine()
        self.start_rss = procs.rss_bytes([self.rss_pid])
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, procs.rss_bytes([self.rss_pid]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)

    async def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            await self._sampler
        self.wall = time.monotonic() - self._started
        self.machine = _busy(self._machine0, _machine())
        after = self._now()
        self.cpu = {g: after[g] - self._before.get(g, 0.0) for g in after}

    def busiest(self, count: int = 4) -> str:
        """The top groups as cores used on average over the run (1.00 = one core busy)."""
        top = sorted(self.cpu.items(), key=lambda kv: -kv[1])[:count]
        return ", ".join(f"{g} {s / max(self.wall, 1e-9):.2f}" for g, s in top)
