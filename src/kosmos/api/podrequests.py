"""What a pod asks of a node: the scheduler's sum of its containers' resource requests.

ClusterTree subtracts it from member nodes to advertise what a leaf node can still take, and
kosmos-scheduler checks it against each member node behind a leaf: both must count exactly as
kube-scheduler does, or a pod the host binds is refused in the member.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from kosmos.api.objects import Obj
from kosmos.api.quantity import parse_resources

Resources = dict[str, Fraction]

#: Pod-level requests (spec.resources) replace the containers' sum for these only.
_POD_LEVEL = ("cpu", "memory")


def _add(total: Resources, extra: Mapping[str, Fraction]) -> None:
    for name, value in extra.items():
        total[name] = total.get(name, Fraction(0)) + value


def _maximize(total: Resources, other: Mapping[str, Fraction]) -> None:
    for name, value in other.items():
        total[name] = max(total.get(name, Fraction(0)), value)


def _requests(container: Obj) -> Resources:
    return parse_resources(container.get("resources", {}).get("requests"))


def pod_requests(pod: Obj) -> Resources:
    """What the scheduler reserves for a pod (k8s resourcehelper.PodRequests).

    Regular containers run together, so their requests add up; init containers run one at a
    time before them, so only the largest counts. Sidecars (init containers with
    ``restartPolicy: Always``) keep running: they add to the containers' sum and to every later
    init container. Pod-level ``spec.resources.requests`` override cpu/memory/hugepages, and
    ``spec.overhead`` comes on top. The ``pods`` slot itself is not included.
    """
    spec = pod.get("spec", {})
    total: Resources = {}
    for container in spec.get("containers") or []:
        _add(total, _requests(container))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in spec.get("initContainers") or []:
        requests = _requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            step = dict(sidecars)
        else:
            step = dict(requests)
            _add(step, sidecars)
        _maximize(init_peak, step)
    _maximize(total, init_peak)
    for name, value in parse_resources(spec.get("resources", {}).get("requests")).items():
        if name in _POD_LEVEL or name.startswith("hugepages-"):
            total[name] = value
    _add(total, parse_resources(spec.get("overhead")))
    return total
