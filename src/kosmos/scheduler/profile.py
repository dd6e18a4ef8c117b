"""The kosmos-scheduler profile: the KubeSchedulerConfiguration a real kube-scheduler runs.

One profile, ``kosmos-scheduler``, with kube-scheduler's default plugins — none disabled:

* TaintToleration stays: the leaf taint is tolerated by admission (``admission``), so every
  other taint keeps its upstream meaning, PreferNoSchedule scoring included;
* VolumeBinding stays: volumes Kosmos provisions for members carry a node affinity on
  ``kosmos.io/owner-cluster`` and the ``kosmos-leaf`` class binds WaitForFirstConsumer, which
  is exactly what the plugin handles; the extender adds the host-volume rule on top;
* NodeResourcesFit stays: it checks a leaf node's summed room, the extender checks that one
  member node has it.

The extender is declared once for the process (kube-scheduler applies extenders to every
profile, which is why this configuration has no other profile; the host's default-scheduler
runs elsewhere). Its settings, verified against kube-scheduler v1.36's strict decoding:

* ``nodeCacheCapable: true``: only node names travel; the extender has its own node cache;
* ``ignorable: false``: a pod of this profile is never placed without the extender, because
  that would silently break its policy, its placement counts and its volume pinning; while
  the extender is unreachable these pods wait, and kube-scheduler says why in each pod's
  FailedScheduling event and ``PodScheduled`` condition (the URL it could not reach ends in
  ``/kosmos-scheduler-extender/filter``). Pods of every other scheduler are unaffected, and
  a failing call is an error, so the pod is retried with backoff (at most 10 s) rather than
  parked as unschedulable: pods move again as soon as the extender answers;
* ``httpTimeout: 3s``: kube-scheduler calls extenders inside its one-pod-at-a-time
  scheduling cycle, so a hung extender would stall every pod of the profile for the whole
  timeout (default 5 s); answers take about a millisecond, 3 s only covers pauses;
* ``weight: 1`` for prioritize (0..10 per node, times 10 in kube-scheduler's 0..100 scale),
  one plugin's worth: it corrects the summed-room bias without overriding affinity scores;
* no bind verb: kube-scheduler binds itself, the extender learns the choice by offering one
  cluster and reserving it (``ledger``).
"""

from __future__ import annotations

import base64

from kosmos.api import names
from kosmos.api.objects import Obj

API_VERSION = "kubescheduler.config.k8s.io/v1"
HTTP_TIMEOUT = "3s"
EXTENDER_PATH = "/kosmos-scheduler-extender"
#: kube-scheduler serves these without authorization (the default list plus /metrics).
ALWAYS_ALLOW_PATHS = "/healthz,/readyz,/livez,/metrics"


def configuration(
    *,
    extender_url: str,
    kubeconfig: str | None = None,
    ca_pem: bytes | None = None,
    ca_file: str | None = None,
    lease_namespace: str = names.SYSTEM_NAMESPACE,
    leader_elect: bool = True,
    qps: float | None = None,
    burst: int | None = None,
) -> Obj:
    """The KubeSchedulerConfiguration: ``extender_url`` is ``https://host:port`` only.

    The extender's serving certificate is trusted through ``ca_pem`` (inline) or ``ca_file``;
    the in-cluster configuration (no ``kubeconfig``) is used when running as a pod.
    """
    tls: Obj = {}
    if ca_pem is not None:
        tls["caData"] = base64.b64encode(ca_pem).decode()
    if ca_file is not None:
        tls["caFile"] = ca_file
    connection: Obj = {}
    if kubeconfig:
        connection["kubeconfig"] = kubeconfig
    if qps is not None:
        connection["qps"] = qps
    if burst is not None:
        connection["burst"] = burst
    extender: Obj = {
        "urlPrefix": extender_url.rstrip("/") + EXTENDER_PATH,
        "filterVerb": "filter",
        "prioritizeVerb": "prioritize",
        "weight": 1,
        "enableHTTPS": True,
        "nodeCacheCapable": True,
        "ignorable": False,
        "httpTimeout": HTTP_TIMEOUT,
    }
    if tls:
        extender["tlsConfig"] = tls
    config: Obj = {
        "apiVersion": API_VERSION,
        "kind": "KubeSchedulerConfiguration",
        "leaderElection": {
            "leaderElect": leader_elect,
            "resourceLock": "leases",
            "resourceName": names.SCHEDULER_NAME,
            "resourceNamespace": lease_namespace,
        },
        "profiles": [{"schedulerName": names.SCHEDULER_NAME}],
        "extenders": [extender],
    }
    if connection:
        config["clientConnection"] = connection
    return config


def flags(config_path: str, *, secure_port: int, bind_address: str) -> list[str]:
    """kube-scheduler's command-line flags around the configuration file."""
    return [
        f"--config={config_path}",
        f"--secure-port={secure_port}",
        f"--bind-address={bind_address}",
        f"--authorization-always-allow-paths={ALWAYS_ALLOW_PATHS}",
        "--profiling=false",
    ]
