"""What the cluster-manager keeps of a pod in its caches (host pods and member pods).

Every reader of a cached pod was checked: ``pods`` (``podforge.member_pod`` copies the host
spec, ``member_status`` the member status, ``mutable_patch`` compares labels, annotations,
images and tolerations), ``capacity`` (requests, node, phase), ``watches``/``tree``
(node, dependencies, phase), ``adopt`` and ``leafread`` (labels, annotations, uid) and the
leaf kubelet's ``/pods``. None reads the ServiceAccount admission's token volume (a host
pod's is dropped by ``podforge`` before the member pod is made, a member pod's was injected
there), and it is the one part of a workload's spec that differs pod by pod (a random
``kube-api-access-*`` name in a volume and in every container's mounts), so it is dropped
here; everything else stays and is shared between pods (``kosmos.kube.compact``). A leaf's
``/pods`` therefore lists pods without their token volume.
"""

from __future__ import annotations

from kosmos.api.objects import Obj
from kosmos.clustertree.podforge import drop_token_volumes
from kosmos.kube.compact import Sharer
from kosmos.kube.informer import Transform


def pod_transform(sharer: Sharer) -> Transform:
    """The transform of the process's pod informers, host and members sharing ``sharer``."""

    def transform(pod: Obj) -> Obj:
        spec = pod.get("spec")
        if isinstance(spec, dict):
            drop_token_volumes(spec)
        return sharer(pod)

    return transform
