"""Auto-MCS: host Services exported without a hand-written ServiceExport.

A host Service is exported when it carries ``kosmos.io/auto-create-mcs`` (any value but
``"false"``) or lives in a namespace starting with one of ``--auto-mcs-prefix``, and never
in ``--reserved-namespaces`` nor when it is one of our derived Services. The controller
creates the host ServiceExport (labelled managed-by kosmos) and deletes only exports it
created once the Service no longer asks for one; imports then follow the normal path.
"""

from __future__ import annotations

import contextlib

from kosmos.api import names
from kosmos.api.objects import Obj, annotations_of
from kosmos.api.resources import SERVICE_EXPORTS
from kosmos.kube.component import HOST
from kosmos.kube.controller import Request, Result
from kosmos.kube.errors import AlreadyExists, NotFound
from kosmos.mcs import forge
from kosmos.mcs.hub import Hub, Options
from kosmos.mcs.sync import is_managed


def wants_export(service: Obj, options: Options) -> bool:
    """The host Service asks to be exported (annotation or namespace prefix)."""
    meta = service.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    if namespace in options.reserved_namespaces or meta.get("deletionTimestamp"):
        return False
    annotations = annotations_of(service)
    if is_managed(service) or forge.ANNOTATION_SERVICE_IMPORT in annotations:
        return False  # our own derived Services are never exported again
    value = annotations.get(names.ANNOTATION_AUTO_MCS)
    if value is not None:
        return value.strip().lower() != "false"
    return any(namespace.startswith(prefix) for prefix in options.auto_prefixes if prefix)


class AutoExport:
    """Reconciler keyed ``Request(HOST, <ns>, <name>)`` of a host Service."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, request: Request) -> Result | None:
        hub, ns, name = self.hub, request.namespace, request.name
        if not hub.ready(HOST):
            return Result(requeue_after=1.0)
        service = hub.get(HOST, "services", ns, name)
        export = hub.get(HOST, "exports", ns, name)
        want = service is not None and wants_export(service, hub.options)
        client = hub.manager.client(HOST)
        if want and export is None:
            body = {
                "apiVersion": SERVICE_EXPORTS.api_version,
                "kind": "ServiceExport",
                "metadata": {"name": name, "namespace": ns, "labels": dict(forge.MANAGED)},
            }
            with contextlib.suppress(AlreadyExists, NotFound):  # NotFound: namespace going
                await client.create(SERVICE_EXPORTS, body)
        elif (
            not want
            and export is not None
            and is_managed(export)
            and not export["metadata"].get("deletionTimestamp")
        ):
            with contextlib.suppress(NotFound):
                await client.delete(SERVICE_EXPORTS, name, ns, uid=export["metadata"]["uid"])
        return None
