"""The CIDR controller: each linked member's pod and service CIDRs, in its Cluster's status.

One key per member (``Request(cluster, "", "")``), woken by what can change the answer: the
Cluster's spec, the member's nodes' podCIDRs, Calico IPPools, the Flannel and Cilium
ConfigMaps, the apiserver pod; and every ``rediscover_seconds``, because the apiserver's
answer to the probe cannot be watched. The sources are chosen as ``discovery`` describes.

Results go to ``status.clusterLinkStatus`` through the status subresource — a merge patch
carrying the resourceVersion it was computed from, and only when something changed — so a
concurrent spec edit is never overwritten (a whole-object update could lose one).
Condition ``CIDRsDiscovered`` says where each list came from, or
what to fix; a source that fails keeps the list found before rather than blanking it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kosmos.api.objects import Obj, conditions_of, find_condition, name_of, set_condition
from kosmos.api.resources import CLUSTERS, SERVICECIDRS, SERVICES
from kosmos.clusterlink import discovery, metrics
from kosmos.clusterlink.discovery import CILIUM_CONFIGMAP, DiscoveryError, Family
from kosmos.clusterlink.link import KUBE_SYSTEM, Link
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import ConnectError, Forbidden, Invalid, KubeError, NotFound

log = logging.getLogger("kosmos.clusterlink.cidrs")

CONDITION = "CIDRsDiscovered"
RETRY_UNREACHABLE_SECONDS = 10.0
SYNC_GRACE_SECONDS = 30.0


@dataclass
class Outcome:
    """One discovery pass: each list (None: not found this time), its source, the problems."""

    pods: list[str] | None = None
    pod_source: str = ""
    services: list[str] | None = None
    service_source: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)
    pending: bool = False  # a cache is still filling: look again in a moment
    unreachable: bool = False

    def problem(self, reason: str, message: str) -> None:
        self.problems.append((reason, message))


class CIDRReconciler:
    def __init__(self, link: Link) -> None:
        self.link = link
        #: (cluster, what) -> (expiry, Cluster generation, answer): apiserver answers that
        #: status-only events must not ask for again
        self._asked: dict[tuple[str, str], tuple[float, int, Any]] = {}
        self._waiting: dict[str, float] = {}  # member -> since when its caches are not full

    async def __call__(self, request: Request) -> Result | None:
        name = request.cluster
        cluster = self.link.active(name)
        if cluster is None:
            self.forget(name)
            return None
        error = self.link.member_errors.get(name)
        if error is not None:
            outcome = Outcome()
            outcome.problem("KubeconfigInvalid", error)
            await self._report(cluster, outcome)
            return None
        waiting = self._caches_pending(name)
        if waiting is not None:
            if waiting.problems:
                await self._report(cluster, waiting)
                return Result(requeue_after=5.0)
            return Result(requeue_after=1.0)
        outcome = Outcome()
        self._pods(cluster, outcome)
        await self._services(cluster, outcome)
        if outcome.pending:
            return Result(requeue_after=1.0)
        await self._report(cluster, outcome)
        if outcome.unreachable:
            return Result(requeue_after=RETRY_UNREACHABLE_SECONDS)
        return Result(requeue_after=self.link.options.rediscover_seconds)

    def forget(self, name: str) -> None:
        """Drop remembered apiserver answers (the member left or got a new kubeconfig)."""
        self._waiting.pop(name, None)
        for key in [k for k in self._asked if k[0] == name]:
            del self._asked[key]

    def _caches_pending(self, name: str) -> Outcome | None:
        """None: the member's caches are full. Else an empty Outcome while they may still be
        filling, and one with a problem once they took too long (a list or watch the
        member's credentials do not allow never completes; the informer keeps retrying)."""
        unsynced = self.link.unsynced(name)
        if unsynced == []:
            self._waiting.pop(name, None)
            return None
        out = Outcome()
        if unsynced is None:  # not registered yet: members.py is on it
            return out
        since = self._waiting.setdefault(name, time.monotonic())
        if time.monotonic() - since > SYNC_GRACE_SECONDS:
            out.problem(
                "MemberCachesNotSynced",
                f"cannot list and watch {', '.join(unsynced)} in member {name} after "
                f"{SYNC_GRACE_SECONDS:.0f}s: check that its kubeconfig may list and watch "
                "them (see the network-manager log)",
            )
        return out

    # -- pod CIDRs -------------------------------------------------------------------------

    def _pods(self, cluster: Obj, out: Outcome) -> None:
        name = cluster["metadata"]["name"]
        source = discovery.pod_source(cluster)
        try:
            if source == "override":
                out.pods = discovery.override_cidrs(cluster)
            elif source == "calico":
                out.pods = self._calico(name, out)
            elif source == "flannel":
                out.pods = self._flannel(name, out)
            elif source == "cilium":
                cm = self.link.cilium_configs(name).store.get(f"{KUBE_SYSTEM}/{CILIUM_CONFIGMAP}")
                if cm is None:
                    out.problem(
                        "CiliumConfigNotFound",
                        f"cni is cilium but member {name} has no ConfigMap "
                        f"{KUBE_SYSTEM}/{CILIUM_CONFIGMAP}; {_FIX}",
                    )
                    return
                out.pods = discovery.cilium_cidrs(cm)
                if out.pods is None:  # ipam: kubernetes
                    source = "nodes"
            if source == "nodes":
                out.pods = self._nodes(name, out)
        except DiscoveryError as exc:
            out.problem("InvalidPodCIDRSource", f"member {name}: {exc}")
            out.pods = None
        if out.pods is not None:
            out.pod_source = source

    def _calico(self, name: str, out: Outcome) -> list[str] | None:
        pools = self.link.calico(name, "ippools")
        if pools is None:
            out.problem(
                "CalicoNotInstalled",
                f"cni is calico but member {name} does not serve crd.projectcalico.org/v1 "
                f"IPPools; {_FIX}",
            )
            return None
        if not pools.has_synced:
            out.pending = True
            return None
        cidrs = discovery.calico_pool_cidrs(pools.store.list())
        if not cidrs:
            out.problem("NoPodCIDRs", f"member {name} has no enabled Calico IPPool; {_FIX}")
            return None
        return cidrs

    def _flannel(self, name: str, out: Outcome) -> list[str] | None:
        configs = sorted(
            self.link.flannel_configs(name).store.list(),
            key=lambda cm: cm["metadata"].get("namespace", ""),
        )
        if not configs:
            out.problem(
                "FlannelConfigNotFound",
                f"cni is flannel but member {name} has no ConfigMap "
                f"{discovery.FLANNEL_CONFIGMAP} in any namespace; {_FIX}",
            )
            return None
        return discovery.flannel_cidrs(configs)

    def _nodes(self, name: str, out: Outcome) -> list[str] | None:
        cidrs = discovery.nodes_pod_cidrs(self.link.nodes(name).store.list())
        if not cidrs:
            out.problem(
                "NoPodCIDRs",
                f"no node of member {name} has spec.podCIDRs (does its controller-manager "
                f"allocate node CIDRs?); {_FIX}",
            )
            return None
        return cidrs

    # -- service CIDRs ---------------------------------------------------------------------

    async def _services(self, cluster: Obj, out: Outcome) -> None:
        name = cluster["metadata"]["name"]
        options = cluster.get("spec", {}).get("clusterLinkOptions") or {}
        generation = int(cluster["metadata"].get("generation", 0))
        try:
            primary, source = None, "probe"
            if not options.get("useExternalApiserver"):
                found = discovery.apiserver_service_cidrs(
                    self.link.apiserver_pods(name).store.list()
                )
                if found is not None:
                    primary, source = found[0], "flags"
            if primary is None:
                primary = await self._ask(name, "probe", generation, lambda: self._probe(name))
            extra = await self._ask(name, "servicecidrs", generation, lambda: self._extra(name))
        except DiscoveryError as exc:
            out.problem("ServiceCIDRDiscoveryFailed", f"member {name}: {exc}")
            return
        except ConnectError as exc:
            out.problem("MemberUnreachable", str(exc))
            out.unreachable = True
            return
        except KubeError as exc:
            out.problem(
                "ServiceCIDRDiscoveryFailed",
                f"cannot ask member {name}'s apiserver for its service CIDRs ({exc}); the "
                "network-manager needs to create Services there (dry run only)",
            )
            return
        cidrs = discovery.aggregate(
            discovery.normalize(c, "service CIDR") for c in [*primary, *extra]
        )
        if not cidrs:
            out.problem("NoServiceCIDRs", f"member {name}'s apiserver named no service CIDR")
            return
        out.services, out.service_source = cidrs, source

    async def _ask(
        self, name: str, what: str, generation: int, ask: Callable[[], Awaitable[list[str]]]
    ) -> list[str]:
        """An apiserver answer, reused until it expires or the Cluster's spec changes."""
        cached = self._asked.get((name, what))
        now = time.monotonic()
        if cached and cached[0] > now and cached[1] == generation:
            answer: list[str] = cached[2]
            return answer
        answer = await ask()
        expiry = now + 0.9 * self.link.options.rediscover_seconds
        self._asked[(name, what)] = (expiry, generation, answer)
        return answer

    async def _probe(self, name: str) -> list[str]:
        """The "invalid Service" probe: a dry-run Service per family the apiserver rejects."""
        client = self.link.manager.client(name)
        cidrs = []
        family: Family
        for family in (4, 6):
            try:
                await client.create(SERVICES, discovery.probe_service(family), dry_run=True)
            except Invalid as exc:
                causes = " ".join(str(c.get("message", "")) for c in exc.causes)
                cidr = discovery.parse_probe_rejection(f"{exc.api_message} {causes}")
                if cidr:
                    cidrs.append(cidr)
                continue
            raise DiscoveryError(
                f"the apiserver accepted the probe address {discovery.PROBE_IPS[family]} as a "
                "ClusterIP; set spec.clusterLinkOptions.useExternalApiserver=false and run the "
                "apiserver as a pod, or report this range"
            )
        return cidrs

    async def _extra(self, name: str) -> list[str]:
        """Ranges from ServiceCIDR objects (added at runtime; the probe names only one)."""
        client = self.link.manager.client(name)
        try:
            objects = await client.list(SERVICECIDRS)
        except (NotFound, Forbidden):  # before Kubernetes 1.33, or not granted: optional
            return []
        return discovery.service_cidr_objects(objects.items)

    # -- status ----------------------------------------------------------------------------

    async def _report(self, cluster: Obj, out: Outcome) -> None:
        name = name_of(cluster)
        status = cluster.get("status") or {}
        old_link = status.get("clusterLinkStatus") or {}
        new_link = dict(old_link)
        if out.pods is not None:
            new_link["podCIDRs"] = out.pods
        if out.services is not None:
            new_link["serviceCIDRs"] = out.services
        conditions = [dict(c) for c in conditions_of(cluster)]
        same = not set_condition(conditions, _condition(cluster, out))
        condition = find_condition(conditions, CONDITION) or {}
        _observe(name, out, new_link)
        if same and new_link == old_link:
            return
        patch = {
            "metadata": {"resourceVersion": cluster["metadata"]["resourceVersion"]},
            "status": {"clusterLinkStatus": new_link, "conditions": conditions},
        }
        with contextlib.suppress(NotFound):
            host = self.link.manager.client(HOST)
            await host.patch(CLUSTERS, name, patch, subresource="status")
        log.info("%s: %s", name, condition["message"])
        if out.problems and not same:
            await self.link.recorder.record(
                cluster, "Warning", condition["reason"], condition["message"]
            )


_FIX = (
    "set spec.clusterLinkOptions.cni to the CNI the member runs (calico, flannel, cilium, or "
    "any other name to use the nodes' podCIDRs) or list its pod CIDRs in "
    "spec.clusterLinkOptions.clusterPodCIDRs"
)


def _condition(cluster: Obj, out: Outcome) -> Obj:
    """``CIDRsDiscovered`` as this pass found it; ``set_condition`` keeps its transition time
    while the status stays."""
    if out.problems:
        status, reason = "False", out.problems[0][0]
        message = "; ".join(message for _, message in out.problems)
    else:
        status, reason = "True", "Discovered"
        message = (
            f"pod CIDRs {', '.join(out.pods or [])} from {out.pod_source}; service CIDRs "
            f"{', '.join(out.services or [])} from {out.service_source}"
        )
    return {
        "type": CONDITION,
        "status": status,
        "reason": reason,
        "message": message[:2000],
        "observedGeneration": int(cluster["metadata"].get("generation", 0)),
    }


def _observe(name: str, out: Outcome, link_status: Obj) -> None:
    metrics.discoveries.labels(name, "pod", out.pod_source or "error").inc()
    metrics.discoveries.labels(name, "service", out.service_source or "error").inc()
    for kind, key in (("pod", "podCIDRs"), ("service", "serviceCIDRs")):
        metrics.discovered_cidrs.labels(name, kind).set(len(link_status.get(key) or []))
