"""The kubelet's read API for a leaf node, from what its member nodes' kubelets say (pure).

A leaf node stands for some member nodes (its leaf model) and its pods run there as copies
with the host pod's namespace and name. The kubelet's ``/pods``, ``/stats/summary`` (Summary
API, ``k8s.io/kubelet/pkg/apis/stats/v1alpha1``) and ``/metrics/resource`` (Prometheus text)
are rebuilt here for the leaf: node figures summed over its member nodes, pod figures only for
member pods that are copies of host pods bound to this leaf, under the host pod's UID.
Everything else a member runs (its own system pods, other tenants) stays invisible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kosmos.api.objects import Obj


@dataclass(frozen=True)
class HostPod:
    """The host pod a member pod copies: what the leaf reports instead of the member's."""

    namespace: str
    name: str
    uid: str


#: member (namespace, name) -> the host pod it copies (only pods of this leaf)
Copies = Mapping[tuple[str, str], HostPod]

_NODE_CPU = ("usageNanoCores", "usageCoreNanoSeconds")
_NODE_MEMORY = (
    "availableBytes",
    "usageBytes",
    "workingSetBytes",
    "rssBytes",
    "pageFaults",
    "majorPageFaults",
)


def pod_list(pods: Iterable[Obj]) -> Obj:
    """The kubelet's ``/pods``: a v1 PodList of the pods bound to the node."""
    items = [{"apiVersion": "v1", "kind": "Pod", **pod} for pod in pods]
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}


def _sum_section(sections: Sequence[Obj], fields: Sequence[str]) -> Obj | None:
    """Field-wise sums of the sections that have each field; the latest ``time``."""
    present = [s for s in sections if s]
    if not present:
        return None
    out: Obj = {"time": max(str(s.get("time", "")) for s in present)}
    for field in fields:
        values = [s[field] for s in present if isinstance(s.get(field), int)]
        if values:
            out[field] = sum(values)
    return out


def _node(leaf: str, nodes: Sequence[Obj]) -> Obj:
    starts = [str(n["startTime"]) for n in nodes if n.get("startTime")]
    node: Obj = {"nodeName": leaf, "systemContainers": []}
    if starts:
        node["startTime"] = min(starts)
    for key, fields in (("cpu", _NODE_CPU), ("memory", _NODE_MEMORY)):
        section = _sum_section([n.get(key) or {} for n in nodes], fields)
        if section is not None:
            node[key] = section
    return node


def _renamed_pods(pods: Iterable[Obj], copies: Copies) -> list[Obj]:
    renamed = []
    for pod in pods:
        ref = pod.get("podRef") or {}
        host = copies.get((ref.get("namespace", ""), ref.get("name", "")))
        if host is None:
            continue
        ref = {"name": host.name, "namespace": host.namespace, "uid": host.uid}
        renamed.append({**pod, "podRef": ref})
    return renamed


def summary(leaf: str, members: Sequence[Obj], copies: Copies) -> Obj:
    """The leaf's Summary from its member nodes' Summaries (those that answered)."""
    nodes = [m.get("node") or {} for m in members]
    pods = _renamed_pods((p for m in members for p in m.get("pods") or []), copies)
    return {"node": _node(leaf, nodes), "pods": pods}


# -- /metrics/resource -------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_NODE_METRICS = ("node_cpu_usage_seconds_total", "node_memory_working_set_bytes")
_POD_LABELLED = ("container_", "pod_")
SCRAPE_ERROR = "scrape_error"


@dataclass
class _Family:
    header: list[str]
    samples: list[str]


def _families(texts: Iterable[str]) -> dict[str, _Family]:
    """Metric name -> its ``# HELP``/``# TYPE`` lines (first seen) and sample lines."""
    families: dict[str, _Family] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# "):
                parts = line.split(maxsplit=3)
                if len(parts) >= 3 and parts[1] in {"HELP", "TYPE"}:
                    family = families.setdefault(parts[2], _Family([], []))
                    if not any(h.split()[1] == parts[1] for h in family.header):
                        family.header.append(line)
                continue
            match = _SAMPLE.match(line)
            if match:
                families.setdefault(match.group(1), _Family([], [])).samples.append(line)
    return families


def _parse(line: str) -> tuple[dict[str, str], float, str | None]:
    match = _SAMPLE.match(line)
    assert match is not None  # only matched lines are kept
    labels = dict(_LABEL.findall(match.group(2) or ""))
    return labels, float(match.group(3)), match.group(4)


def _format(name: str, labels: Mapping[str, str], value: float, stamp: str | None) -> str:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    text = f"{name}{{{body}}} " if body else f"{name} "
    text += repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return f"{text} {stamp}" if stamp else text


def _node_sample(name: str, lines: Sequence[str]) -> list[str]:
    parsed = [_parse(line) for line in lines]
    stamps = [int(s) for _, _, s in parsed if s]
    total = sum(v for _, v, _ in parsed)
    return [_format(name, {}, total, str(max(stamps)) if stamps else None)]


def _pod_samples(name: str, lines: Sequence[str], copies: Copies) -> list[str]:
    out = []
    for line in lines:
        labels, value, stamp = _parse(line)
        host = copies.get((labels.get("namespace", ""), labels.get("pod", "")))
        if host is not None:
            labels = {**labels, "namespace": host.namespace, "pod": host.name}
            out.append(_format(name, labels, value, stamp))
    return out


def resource_metrics(texts: Sequence[str], copies: Copies, *, failed: bool) -> str:
    """The leaf's ``/metrics/resource``: node metrics summed over the member nodes that
    answered, container and pod metrics of this leaf's copies only (host names),
    ``scrape_error`` 1 when no member node answered (``failed``)."""
    families = _families(texts)
    lines: list[str] = []
    for name, family in families.items():
        if name == SCRAPE_ERROR:
            continue
        if name in _NODE_METRICS and family.samples:
            samples = _node_sample(name, family.samples)
        elif name.startswith(_POD_LABELLED):
            samples = _pod_samples(name, family.samples, copies)
        else:
            continue
        lines += family.header + samples
    error = families.get(SCRAPE_ERROR)
    header = (
        error.header
        if error and error.header
        else [
            "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, "
            "0 otherwise",
            "# TYPE scrape_error gauge",
        ]
    )
    lines += [*header, f"{SCRAPE_ERROR} {1 if failed else 0}"]
    return "\n".join(lines) + "\n"


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample: for tests and for readers of the output."""
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels, value, _ = _parse(line)
            samples.append((match.group(1), labels, value))
    return samples
