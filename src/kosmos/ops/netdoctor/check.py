"""``check``, ``resume`` and ``clean`` end to end, over one cluster or two.

Both clusters are reached before anything is created, so a wrong kubeconfig costs nothing.
Once floaters exist, ``autoClean`` removes them however the check ends (a floater that never
runs, an interrupted run): a failed check leaves nothing behind unless asked to. A resume
plans the pairs anew from the current floaters (pods and IPs change between runs) and keeps
those whose source node, destination node and address family failed last time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kosmos.api.objects import Obj
from kosmos.api.resources import NODES, SERVICES
from kosmos.kube import config as kube_config
from kosmos.kube import execute
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import floater, plan, run
from kosmos.ops.netdoctor.config import Config, expand


class Reporter(Protocol):
    """Where a check tells its progress (stderr in the CLI: stdout holds the results)."""

    def log(self, message: str) -> None: ...
    def start(self, total: int) -> None: ...
    def advance(self, outcome: run.Outcome) -> None: ...


@dataclass
class Result:
    config: Config
    outcomes: list[run.Outcome]
    #: resume.json entries (src node, dst node, family) with no pair now (a node gone)
    unmatched: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


@dataclass
class Clusters:
    src: Client
    dst: Client | None  # None: one cluster holds both sides

    def sides(self) -> list[tuple[str, Client]]:
        return [("src", self.src)] + ([("dst", self.dst)] if self.dst else [])

    @property
    def target(self) -> Client:
        return self.dst or self.src


@contextlib.asynccontextmanager
async def connect(config: Config, default_kubeconfig: str | None) -> AsyncIterator[Clusters]:
    """Clients of both clusters, each checked reachable (one error naming the cluster)."""
    opened: list[Client] = []
    try:
        paths = [("src", expand(config.src_kubeconfig) or default_kubeconfig)]
        if config.dst_kubeconfig:
            paths.append(("dst", expand(config.dst_kubeconfig)))
        for name, path in paths:
            try:
                client = Client(await kube_config.from_kubeconfig(name, path))
                opened.append(client)
                await client.get_raw("/version", timeout=15.0)
            except KubeError as exc:
                raise OperationError(f"{exc} (kubeconfig {path or 'default'})") from exc
        yield Clusters(opened[0], opened[1] if len(opened) > 1 else None)
    finally:
        for client in opened:
            await client.close()


async def check(
    config: Config,
    reporter: Reporter,
    *,
    default_kubeconfig: str | None = None,
    only: Sequence[tuple[str, str, int]] | None = None,
    exec_: execute.Exec = execute.run,
) -> Result:
    """Deploy the floaters, wait for them, run every planned pair (or ``only`` those)."""
    async with connect(config, default_kubeconfig) as clusters:
        created = False
        try:
            sets = plan.daemonsets(config)
            for side, client in clusters.sides():
                created = True
                await floater.deploy(
                    client,
                    config.namespace,
                    config.image(side),
                    config.port,
                    sets=sets[side],
                    log=reporter.log,
                )
            ready = {}
            for side, client in clusters.sides():
                ready[side] = await floater.wait_ready(
                    client, config.namespace, sets[side], config.pod_wait_time, reporter.log
                )
            pairs = await _plan(config, clusters, ready)
            unmatched: list[tuple[str, str, int]] = []
            if only is not None:
                chosen = plan.select(pairs, only)
                have = {(p.src_node, p.dst_node, p.family) for p in pairs}
                unmatched = [key for key in only if key not in have]
                pairs = chosen
            reporter.start(len(pairs))
            outcomes = await run.run_pairs(
                clusters.src,
                config.namespace,
                pairs,
                protocol=config.protocol,
                max_num=config.max_num,
                cmd_timeout=config.cmd_timeout,
                done=reporter.advance,
                exec_=exec_,
            )
            return Result(config, outcomes, unmatched)
        except Exception:
            if created and not config.auto_clean:
                reporter.log(
                    "the floaters stay for a look (`kosmosctl netdoctor clean` removes them)"
                )
            raise
        finally:
            if created and config.auto_clean:
                await _clean(clusters, config.namespace, reporter)


async def _plan(
    config: Config, clusters: Clusters, ready: dict[str, dict[str, list[Obj]]]
) -> list[plan.Pair]:
    src_nodes = (await clusters.src.list(NODES)).items
    dst_nodes = (await clusters.dst.list(NODES)).items if clusters.dst else src_nodes
    src_pods = ready["src"][plan.src_daemonset(config.mode)]
    src = plan.floaters(src_pods, src_nodes)
    if config.protocol == "dns":
        server = await _dns_server(config, clusters)
        return plan.pairs(config, src, [], server)
    dst_side = ready["dst" if clusters.dst else "src"]
    dst = plan.floaters(dst_side[plan.dst_daemonset(config.mode)], dst_nodes)
    return plan.pairs(config, src, dst)


async def _dns_server(config: Config, clusters: Clusters) -> tuple[str, str]:
    """The DNS server of the destination cluster, else the source's."""
    for client in dict.fromkeys([clusters.target, clusters.src]):
        services = (await client.list(SERVICES, "kube-system")).items
        found = plan.dns_server(config, services)
        if found is not None:
            return found
    raise OperationError(
        f"targetDNSServer {config.target_dns_server!r}: no such Service in kube-system "
        "(give the DNS server's IP)"
    )


async def clean(
    config: Config, reporter: Reporter, *, default_kubeconfig: str | None = None
) -> None:
    """Remove the floaters (and the namespace netdoctor created) from both clusters."""
    async with connect(config, default_kubeconfig) as clusters:
        await _clean(clusters, config.namespace, reporter)


async def _clean(clusters: Clusters, namespace: str, reporter: Reporter) -> None:
    """Both clusters at once (a namespace takes seconds to go), each to its end."""
    cleans = (floater.clean(client, namespace, reporter.log) for _, client in clusters.sides())
    failed = [e for e in await asyncio.gather(*cleans, return_exceptions=True) if e]
    if failed:
        raise failed[0]
