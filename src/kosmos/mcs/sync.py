"""The service reconciler: one exported ``<ns>/<name>`` across the whole clusterset.

Keyed by service, level-based: each pass reads every cluster's caches, plans the import
(``planner``), and in every cluster writes the difference — the ServiceImport (created,
or a user's adopted), the derived Service, the EndpointSlices — and deletes what is no
longer wanted among the objects it manages. Export conditions and the finalizer come last,
so ``Ready=True`` means the imports are written. Bad input never raises: it becomes a
condition and an Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import replace
from typing import Any

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of, labels_of, name_of, parse_time
from kosmos.api.resources import ENDPOINTSLICES, SERVICE_EXPORTS, SERVICE_IMPORTS, SERVICES
from kosmos.kube.client import Client
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import Conflict, NotFound
from kosmos.mcs import forge, metrics, planner, status
from kosmos.mcs.hub import Hub
from kosmos.mcs.planner import ImportSpec, Plan

log = logging.getLogger("kosmos.mcs")

FIELD_MANAGER = "kosmos-mcs"
#: on what the controller applies: the digest of the body it last declared (``stamped``)
ANNOTATION_APPLIED = "kosmos.io/mcs-applied"
#: a cluster whose caches have not synced is looked at again this soon
PENDING_SECONDS = 1.0


def subset(want: Any, have: Any) -> bool:
    """``want`` is contained in ``have`` (apiserver defaults such as targetPort ignored)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(subset(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(subset(a, b) for a, b in zip(want, have, strict=True))
        )
    return bool(want == have)


def stamped(body: Obj) -> Obj:
    """``body`` with a digest of itself (``ANNOTATION_APPLIED``): comparing bodies as subsets
    ignores apiserver defaults but cannot see a field we stopped declaring (an exported
    label dropped); a changed digest makes the server-side apply that removes it."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    annotations = {**(body["metadata"].get("annotations") or {}), ANNOTATION_APPLIED: digest}
    return {**body, "metadata": {**body["metadata"], "annotations": annotations}}


def is_managed(obj: Obj) -> bool:
    return labels_of(obj).get(names.LABEL_MANAGED_BY) == names.MANAGED_BY_KOSMOS


def split(text: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in (text or "").split(",") if p.strip())


class DerivedNameTaken(Exception):
    """A Service of the derived name exists and is not ours: nothing is derived there."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Service {name} exists and is not managed by Kosmos; left alone")


class ServiceSync:
    """Reconciler keyed ``Request(HOST, <ns>, <name>)``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, request: Request) -> Result | None:
        hub, ns, name = self.hub, request.namespace, request.name
        ready = [c for c in hub.members if hub.ready(c)]
        exports = {c: e for c in ready if (e := hub.get(c, "exports", ns, name)) is not None}
        members = [
            planner.Member(hub.cluster_id(c), e, hub.get(c, "services", ns, name))
            for c, e in exports.items()
        ]
        plan = planner.plan(members)
        ids = {hub.cluster_id(c): c for c in ready}
        # every cluster at once: an unexport is gone everywhere in one round trip's time
        outcomes = await asyncio.gather(
            *(Importer(hub, c, ns, name, plan, ids).sync() for c in ready), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # retried with backoff; the other clusters are written already
        for cluster, export in exports.items():
            await self._export(cluster, export, plan)
        for cluster in ready:
            if cluster not in exports:
                hub.export_states.pop((cluster, f"{ns}/{name}"), None)
        self._count()
        pending = len(ready) < len(hub.members)
        return Result(requeue_after=PENDING_SECONDS) if pending else None

    async def _export(self, cluster: str, export: Obj, plan: Plan) -> None:
        client = self.hub.manager.client(cluster)
        meta = export["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        key = (cluster, f"{meta.get('namespace')}/{meta['name']}")
        if not planner.is_live(export):
            self.hub.export_states.pop(key, None)
            if names.FINALIZER_MCS in finalizers:
                kept = [f for f in finalizers if f != names.FINALIZER_MCS]
                await _patch_meta(client, SERVICE_EXPORTS, export, {"finalizers": kept})
            return
        if names.FINALIZER_MCS not in finalizers:
            patched = await _patch_meta(
                client, SERVICE_EXPORTS, export, {"finalizers": [*finalizers, names.FINALIZER_MCS]}
            )
            if patched is None:
                return
            export = patched
        verdict = plan.verdicts[self.hub.cluster_id(cluster)]
        old = export.get("status", {}).get("conditions") or []
        new = status.export_conditions(export, verdict, plan.spec is not None)
        self.hub.export_states[key] = {c["type"]: c["status"] for c in new}
        if new == old:
            return
        with contextlib.suppress(NotFound):
            await client.patch(
                SERVICE_EXPORTS,
                meta["name"],
                {"status": {"conditions": new}},
                namespace=meta.get("namespace"),
                subresource="status",
            )
        for changed in status.transitions(old, new):
            await self._event(cluster, export, changed)

    async def _event(self, cluster: str, export: Obj, condition: Obj) -> None:
        kind, ok = condition["type"], condition["status"] == "True"
        recorder = self.hub.recorder_for(cluster)
        message = condition.get("message") or condition.get("reason", "")
        if kind == "Ready" and ok:
            await recorder.record(export, "Normal", "Exported", message)
        elif kind == "Conflict" and ok:
            await recorder.record(export, "Warning", "Conflict", message)
        elif kind == "Valid" and not ok:
            await recorder.record(export, "Warning", condition["reason"], message)

    def _count(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for state in self.hub.export_states.values():
            for kind, value in state.items():
                counts[(kind, value)] = counts.get((kind, value), 0) + 1
        for kind in ("Valid", "Ready", "Conflict"):
            for value in ("True", "False"):
                metrics.exports.labels(kind, value).set(counts.get((kind, value), 0))


class Importer:
    """One importing cluster's part of a pass: import, derived Service, slices."""

    def __init__(  # noqa: PLR0917 - the pass's coordinates
        self, hub: Hub, cluster: str, ns: str, name: str, plan: Plan, ids: dict[str, str]
    ) -> None:
        self.hub, self.cluster, self.ns, self.name, self.plan, self.ids = (
            hub,
            cluster,
            ns,
            name,
            plan,
            ids,
        )
        self.client: Client = hub.manager.client(cluster)
        self.existing = hub.get(cluster, "imports", ns, name)
        self.derived = forge.derived_name(ns, name)

    async def sync(self) -> None:
        spec = self.plan.spec
        wanted = spec is not None and self.hub.has_namespace(self.cluster, self.ns)
        if spec is None or not wanted:
            await self._withdraw()
            return
        try:
            if self.existing is not None and not is_managed(self.existing):
                await self._adopted(spec)
            else:
                await self._managed(spec)
        except DerivedNameTaken as exc:
            # no slice may name a Service that is not ours: kube-proxy would program it
            log.warning("%s: %s/%s: %s", self.cluster, self.ns, self.name, exc)
            if self.existing is not None:
                await self._status(self.existing, False, "DerivedServiceConflict", str(exc))

    # -- wanted --------------------------------------------------------------------------------

    async def _managed(self, spec: ImportSpec) -> None:
        names_ = {c: {n: n for n in spec.accepted.get(c, ())} for c in spec.clusters}
        ports = [p.body() for p in spec.ports]
        service = await self._derived_service(spec, ports)
        addresses = await self._slices(names_)
        body: Obj = {
            "apiVersion": SERVICE_IMPORTS.api_version,
            "kind": "ServiceImport",
            "metadata": {
                "name": self.name,
                "namespace": self.ns,
                "labels": {**spec.labels, **forge.MANAGED},
                "annotations": {**spec.annotations, **self._annotations(addresses)},
            },
            "spec": {**spec.body(), "ips": _ips(service, spec)},
        }
        body = stamped(body)
        existing = self.existing
        if (
            existing is None
            or not subset(body["metadata"], existing["metadata"])
            or not subset(body["spec"], existing.get("spec"))
        ):
            existing = await self.client.apply(
                SERVICE_IMPORTS, body, field_manager=FIELD_MANAGER, force=True
            )
            if self.existing is None:
                await self._created(existing)
        message = f"imported from clusters {', '.join(spec.clusters)}"
        await self._status(existing, True, "Ready", message)

    async def _adopted(self, spec: ImportSpec) -> None:
        """A user's import: its ports pick the known ones; unknown ones are a condition."""
        existing = self.existing
        assert existing is not None
        own = (existing.get("spec") or {}).get("ports") or []
        by_number = {(p.protocol, p.port): p for p in spec.ports}
        known, unknown, renamed = [], [], {}
        for port in own:
            merged = by_number.get((port.get("protocol") or "TCP", port.get("port")))
            if merged is None:
                unknown.append(f"{port.get('protocol') or 'TCP'}/{port.get('port')}")
                continue
            known.append({**port, "protocol": merged.protocol, "name": port.get("name") or ""})
            renamed[merged.name] = str(port.get("name") or "")
        names_ = {
            c: {n: renamed[n] for n in spec.accepted.get(c, ()) if n in renamed}
            for c in spec.clusters
        }
        typed = replace(spec, type=(existing.get("spec") or {}).get("type") or spec.type)
        service = await self._derived_service(typed, known)
        addresses = await self._slices(names_)
        patch: Obj = {"metadata": {"annotations": self._annotations(addresses)}}
        if typed.type == "ClusterSetIP":
            patch["spec"] = {"ips": _ips(service, typed)}
        if not subset(patch["metadata"], existing["metadata"]) or not subset(
            patch.get("spec", {}), existing.get("spec")
        ):
            with contextlib.suppress(NotFound):
                existing = await self.client.patch(
                    SERVICE_IMPORTS, self.name, patch, namespace=self.ns
                )
        if unknown:
            message = f"ports {', '.join(unknown)} are not exported by any cluster"
            await self._status(existing, False, "UnknownPorts", message)
        else:
            await self._status(existing, True, "Ready", f"imported from {', '.join(spec.clusters)}")

    async def _derived_service(self, spec: ImportSpec, ports: list[Obj]) -> Obj | None:
        body = stamped(forge.derived_service(self.ns, self.name, ports, spec))
        have = self.hub.get(self.cluster, "services", self.ns, self.derived)
        if have is not None and not is_managed(have):
            raise DerivedNameTaken(self.derived)
        if not ports:
            await self._delete(SERVICES, self.derived, have)
            return None
        if have is not None:
            headless = (have.get("spec") or {}).get("clusterIP") == "None"
            if headless != (spec.type == "Headless"):  # clusterIP is immutable
                await self._delete(SERVICES, self.derived, have)
                have = None
        if (
            have is not None
            and subset(body["metadata"], have["metadata"])
            and subset(body["spec"], have.get("spec"))
        ):
            return have
        return await self.client.apply(SERVICES, body, field_manager=FIELD_MANAGER, force=True)

    async def _slices(self, port_names: dict[str, dict[str, str]]) -> list[str]:
        """Write the wanted slices, delete the rest; returns the candidate addresses."""
        importer = self.hub.cluster_id(self.cluster)
        translate = forge.global_translator(importer, self.hub.global_maps(), self.hub.leaf_owner)
        sources = [
            forge.Source(cid, self.hub.source_slices(self.ids[cid], self.ns, self.name), names_)
            for cid, names_ in port_names.items()
            if cid in self.ids
        ]
        disconnected = split(annotations_of(self.existing or {}).get(names.ANNOTATION_DISCONNECTED))
        wanted = forge.endpoint_slices(self.ns, self.name, sources, translate, disconnected)
        await self._write_slices(wanted)
        return forge.candidate_addresses(sources, translate)

    async def _write_slices(self, wanted: list[Obj]) -> None:
        have = {name_of(s): s for s in self.hub.mcs_slices(self.cluster, self.ns, self.name)}
        for body in map(stamped, wanted):
            current = have.pop(name_of(body), None)
            if current is not None and subset(body, current):
                continue
            await self.client.apply(ENDPOINTSLICES, body, field_manager=FIELD_MANAGER, force=True)
            metrics.slice_writes.labels(self.cluster, "apply").inc()
        for stale in have.values():
            await self._delete(ENDPOINTSLICES, name_of(stale), stale)
            metrics.slice_writes.labels(self.cluster, "delete").inc()

    def _annotations(self, addresses: list[str]) -> dict[str, str]:
        return {
            names.ANNOTATION_DERIVED_SERVICE: self.derived,
            names.ANNOTATION_ADDRESS: ",".join(addresses),
        }

    async def _status(self, obj: Obj, ready: bool, reason: str, message: str) -> None:
        spec = self.plan.spec
        clusters = [{"cluster": c} for c in (spec.clusters if spec else ())]
        conditions = status.import_conditions(obj, ready, reason, message)
        current = obj.get("status") or {}
        if current.get("conditions") == conditions and (current.get("clusters") or []) == clusters:
            return
        with contextlib.suppress(NotFound):
            await self.client.patch(
                SERVICE_IMPORTS,
                self.name,
                {"status": {"clusters": clusters, "conditions": conditions}},
                namespace=self.ns,
                subresource="status",
            )

    async def _created(self, obj: Obj) -> None:
        message = f"imported {self.ns}/{self.name} into cluster {self.hub.cluster_id(self.cluster)}"
        await self.hub.recorder_for(self.cluster).record(obj, "Normal", "Imported", message)
        winner = self._oldest_creation()
        if winner is not None:
            metrics.export_to_import_seconds.labels(self.cluster).observe(
                max(0.0, time.time() - winner)
            )

    def _oldest_creation(self) -> float | None:
        stamps = []
        for cluster in self.ids.values():
            export = self.hub.get(cluster, "exports", self.ns, self.name)
            stamp = (export or {}).get("metadata", {}).get("creationTimestamp")
            if stamp:
                stamps.append(parse_time(stamp).timestamp())
        return min(stamps) if stamps else None

    # -- not wanted ----------------------------------------------------------------------------

    async def _withdraw(self) -> None:
        existing = self.existing
        if existing is not None and is_managed(existing):
            await self._delete(SERVICE_IMPORTS, self.name, existing)
        elif existing is not None:
            message = "no cluster exports this service"
            await self._status(existing, False, "NoExport", message)
        have = self.hub.get(self.cluster, "services", self.ns, self.derived)
        if have is not None and is_managed(have):
            await self._delete(SERVICES, self.derived, have)
        for item in self.hub.mcs_slices(self.cluster, self.ns, self.name):
            await self._delete(ENDPOINTSLICES, name_of(item), item)
            metrics.slice_writes.labels(self.cluster, "delete").inc()

    async def _delete(self, resource: Any, name: str, obj: Obj | None) -> None:
        if obj is None:
            return
        uid = obj.get("metadata", {}).get("uid")
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(resource, name, self.ns, uid=uid)


def _ips(service: Obj | None, spec: ImportSpec) -> list[str]:
    if service is None or spec.type != "ClusterSetIP":
        return []
    ips = (service.get("spec") or {}).get("clusterIPs") or []
    return [ip for ip in ips if ip and ip != "None"][:2]


async def _patch_meta(client: Client, resource: Any, obj: Obj, meta: Obj) -> Obj | None:
    """A metadata merge patch guarded by the resourceVersion read (None: gone or changed)."""
    body = {"metadata": {**meta, "resourceVersion": obj["metadata"]["resourceVersion"]}}
    try:
        return await client.patch(
            resource, obj["metadata"]["name"], body, namespace=obj["metadata"].get("namespace")
        )
    except NotFound:
        return None
    except Conflict:
        return None  # a newer version is on its way to the cache: its event wakes us again
