"""Every resource a cluster serves: the preferred version of each API group, with its verbs.

A backup must find every kind a namespace may hold, CRDs included, without a list written in
advance; the apiserver's discovery documents (``/api/v1``, ``/apis`` and one
``/apis/<group>/<version>`` per group) say what exists, whether it is namespaced and which
verbs it takes. Only each group's preferred version is read (an object stored in two
versions would otherwise be found twice). Subresources (``pods/log``) are not resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kosmos.api.resources import Resource
from kosmos.kube.client import Client
from kosmos.kube.errors import NotFound, ServerError


@dataclass(frozen=True)
class ServedResource:
    """A resource as discovery describes it: where it lives and what can be done to it."""

    resource: Resource
    verbs: frozenset[str]

    @property
    def name(self) -> str:
        """``plural`` for the core group, else ``plural.group`` (how policies name it)."""
        return str(self.resource)

    def supports(self, *verbs: str) -> bool:
        return all(verb in self.verbs for verb in verbs)


def parse_resources(group: str, version: str, document: dict[str, Any]) -> list[ServedResource]:
    """The resources of one ``APIResourceList`` (subresources skipped)."""
    out = []
    for entry in document.get("resources") or []:
        if "/" in entry["name"]:
            continue
        resource = Resource(group, version, entry["name"], entry["kind"], entry["namespaced"])
        out.append(ServedResource(resource, frozenset(entry.get("verbs") or ())))
    return out


def preferred_versions(groups: dict[str, Any]) -> list[tuple[str, str]]:
    """``(group, version)`` of each group in an ``APIGroupList``: its preferred version."""
    out = []
    for group in groups.get("groups") or []:
        preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
        if preferred.get("version"):
            out.append((str(group["name"]), str(preferred["version"])))
    return out


async def served_resources(client: Client) -> list[ServedResource]:
    """Every resource ``client``'s cluster serves, core group first, then groups in order.

    A group whose discovery fails with 404 or 5xx (an aggregated API whose backend is down) is
    left out: the rest of the cluster can still be read.
    """
    core = await client.request("GET", "/api/v1", what="discover v1")
    out = parse_resources("", "v1", core)
    groups = await client.request("GET", "/apis", what="discover API groups")
    for group, version in preferred_versions(groups):
        try:
            document = await client.request(
                "GET", f"/apis/{group}/{version}", what=f"discover {group}/{version}"
            )
        except (NotFound, ServerError):
            continue
        out.extend(parse_resources(group, version, document))
    return out
