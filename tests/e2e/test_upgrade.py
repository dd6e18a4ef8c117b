"""Upgrading Kosmos from the previous release, with a member joined and pods running on it.

The previous release (``deploy/releases.toml``) is installed the way its users have it: its
own tree and virtualenv (``tests/fixtures/releases.py``). Its ``kosmosctl local up
--real-nodes 1 --sample-app`` brings up a host and one member, installs *that* release
in-cluster from *its* image, joins the member and runs the sample app through the leaf node.
This checkout's ``local up --without-kosmos`` then only imports this release's images into
the real nodes, as a user's registry would serve them. Then, in order:

1. ``kosmosctl install`` of this release over it (docs/cli.md: re-run it to upgrade);
2. ``unjoin`` + ``uninstall``, the previous chart with ``helm install`` + the previous
   ``kosmosctl join``, and ``helm upgrade`` to this chart, CRDs first (docs/helm.md);
3. a re-join with this release's ``kosmosctl join`` (same name, same kubeconfig), which
   moves the member's Kosmos pods, still the previous release's join's (agents, endpoint
   prober, kosmos-coredns), to this release's image in place (docs/helm.md's skew policy).

Each upgrade must keep every pod of the member (same UID, no container restarted: a host
upgrade changes nothing in a member; the re-join replaces only the member's Kosmos pods, in
its kosmos-system, and keeps every other), keep the host's pods bound to the leaf, leave the
leaf node NotReady no longer than the leader election's handover (the Lease's duration), and
leave a cluster-manager that still works (a new replica of the app runs in the member).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kosmos.api import names
from kosmos.kube.leader import LeaderElectionConfig
from kosmos.local import images, kosmos_plan
from kosmos.local.kubectl import Kubectl, KubectlError
from kosmos.local.nodes.plan import REAL_NODE_KEY
from kosmos.ops import linkside, mcsdns
from kosmos.ops.manifests import PROBE
from tests.e2e.conftest import ContextKubectl, exports, kosmosctl
from tests.fixtures import releases
from tests.helm import Helm, helm
from tests.support import get, wait_for

#: two environments' worth of work (the previous release's images are built first)
pytestmark = pytest.mark.timeout(2400)
PORT_BASE = int(os.environ.get("KOSMOS_UPGRADE_E2E_PORT_BASE", "17300"))
MEMBER = "cluster1"
LEAF = kosmos_plan.leaf_node_name(MEMBER)
SYSTEM = names.SYSTEM_NAMESPACE
UP = ("--members", "1", "--nodes", "1", "--real-nodes", "1", "--port-base", str(PORT_BASE))
#: what ``local up`` gives ``kosmosctl install`` (kosmos.ops.local_incluster.options)
INSTALL = ("--node-selector", f"{REAL_NODE_KEY}=true", "--cni", "flannel",
           "--auto-mcs-prefix", "kosmos-e2e", "--enable-migration")  # fmt: skip
VALUES = {"nodeSelector": {REAL_NODE_KEY: "true"}, "clusterLink": {"cni": "flannel"}}
#: the longest a leaf may be NotReady: one leader-election Lease duration (the handover)
HANDOVER = LeaderElectionConfig("", "", "").lease_duration
#: after the rollout: the new leaders' first passes, where a recreated pod would show
SETTLE = 30.0
#: the member's Kosmos workloads a join sets up: (kind, name) in its kosmos-system
MEMBER_WORKLOADS = {
    ("daemonsets", linkside.AGENT),
    ("deployments", PROBE),
    ("deployments", mcsdns.NAME),
}


@dataclass
class UpgradeEnv:
    variables: dict[str, str]
    base: Path
    kubeconfig: Path
    kubectl_binary: Path
    previous: releases.Release
    helm: Helm

    def kubectl(self, context: str = "host") -> Kubectl:
        return ContextKubectl(self.kubectl_binary, self.kubeconfig, context)

    def pods_kubeconfig(self, cluster: str) -> str:
        """The admin kubeconfig naming the relay address pods reach (``local up`` wrote it)."""
        state = Path(self.variables["KOSMOS_LOCAL_DIR"])
        return str(state / "kosmos" / f"{cluster}-pods-kubeconfig")

    def current(self, *args: str, timeout: float = 900) -> str:
        """This checkout's kosmosctl on the host."""
        out = kosmosctl(self.variables, "--kubeconfig", self.pods_kubeconfig("host"), *args,
                        timeout=timeout)  # fmt: skip
        return out.stdout

    def old(self, *args: str, timeout: float = 900) -> str:
        """The previous release's kosmosctl."""
        return _run([str(self.previous.kosmosctl), *args], self.variables, timeout)

    def helm_run(self, *args: str) -> str:
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": os.environ.get("PATH", "")}
        return self.helm.run(*args, "--kube-context", "host", env=env, timeout=900).stdout


def _run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradeEnv]:
    base = tmp_path_factory.mktemp("upgrade-e2e")
    previous = releases.install_previous(base / "previous")
    assert previous.tag != images.TAG, f"the previous release has this one's tag {images.TAG}"
    variables = dict(os.environ)
    variables.setdefault("KOSMOS_LOCAL_DIR", str(base / "local"))
    try:
        up = _run([str(previous.kosmosctl), "local", "up", *UP, "--sample-app"], variables, 1800)
        found = exports(up)
        # this release's images onto the real nodes; Kosmos stays as the old release set it up
        kosmosctl(variables, "local", "up", *UP, "--without-kosmos", timeout=1200)
        yield UpgradeEnv(
            variables,
            base,
            Path(found["KUBECONFIG"]),
            Path(found["PATH"].split(":")[0]) / "kubectl",
            previous,
            helm(base / "helm"),
        )
    finally:
        if os.environ.get("KOSMOS_KEEP_ENV") != "1":
            kosmosctl(variables, "local", "down", check=False)


# --- what an upgrade must keep --------------------------------------------------------------


def _pods(kubectl: Kubectl, *selector: str) -> dict[str, tuple[str, int]]:
    """namespace/name -> (UID, restarts of all its containers)."""
    found = {}
    for pod in get(kubectl, "pods", "-A", *selector)["items"]:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
        found[f"{meta['namespace']}/{meta['name']}"] = (str(meta["uid"]), restarts)
    return found


@dataclass
class Snapshot:
    member: dict[str, tuple[str, int]]
    app: dict[str, tuple[str, int]]

    @classmethod
    def take(cls, env: UpgradeEnv, moves: str = "host") -> Snapshot:
        """``moves``: whose Kosmos pods the upgrade replaces; the member's are then left out."""
        member = _pods(env.kubectl(MEMBER))
        if moves == MEMBER:
            member = {pod: v for pod, v in member.items() if not pod.startswith(f"{SYSTEM}/")}
        return cls(member, _pods(env.kubectl(), "-l", "app=nginx"))


@dataclass
class LeafWatch:
    """Polls the leaf node's Ready condition; ``longest`` is its longest run not True."""

    kubectl: Kubectl
    interval: float = 0.5
    samples: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.longest()

    def _poll(self) -> None:
        path = '{.status.conditions[?(@.type=="Ready")].status}'
        while not self._stop.is_set():
            try:
                ready = self.kubectl.run("get", "node", LEAF, "-o", f"jsonpath={path}") == "True"
            except KubectlError:
                ready = False
            self.samples.append((time.monotonic(), ready))
            self._stop.wait(self.interval)

    def longest(self) -> float:
        worst, since = 0.0, None
        for at, ready in self.samples:
            if not ready and since is None:
                since = at
            elif ready and since is not None:
                worst, since = max(worst, at - since), None
        if since is not None and self.samples:
            worst = max(worst, self.samples[-1][0] - since)
        return worst


def _complete(kind: str, item: dict[str, Any]) -> bool:
    """The workload's last rollout finished: every replica updated and available, none old."""
    status = item.get("status") or {}
    if status.get("observedGeneration", 0) < item["metadata"]["generation"]:
        return False
    if kind == "deployments":
        replicas = item["spec"].get("replicas", 1)
        counts = ("updatedReplicas", "availableReplicas", "replicas")
        return all(status.get(k, 0) == replicas for k in counts)
    desired = status.get("desiredNumberScheduled")
    return status.get("updatedNumberScheduled") == desired == status.get("numberAvailable")


def _settled(kubectl: Kubectl) -> bool:
    """No rollout in flight in the cluster and no pod going away.

    A join edits the member's CoreDNS (the kosmos zone), so its Deployment may still be
    replacing pods when the app runs; a snapshot then would count a pod on its way out.
    """
    for kind in ("deployments", "daemonsets"):
        if not all(_complete(kind, item) for item in get(kubectl, kind, "-A")["items"]):
            return False
    pods = get(kubectl, "pods", "-A")["items"]
    return not any(p["metadata"].get("deletionTimestamp") for p in pods)


def _workloads(kubectl: Kubectl) -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) of every Deployment and DaemonSet in the cluster's kosmos-system."""
    kinds = ("deployments", "daemonsets")
    return [(kind, item) for kind in kinds for item in get(kubectl, kind, "-n", SYSTEM)["items"]]


def _kosmos_images(item: dict[str, Any]) -> list[str]:
    """The images of a workload's Kosmos containers (a repository ending in ``/kosmos``)."""
    containers = item["spec"]["template"]["spec"]["containers"]
    return [c["image"] for c in containers if c["image"].rsplit(":", 1)[0].endswith("/kosmos")]


def _rolled(kubectl: Kubectl) -> bool:
    """Every Kosmos Deployment and DaemonSet of the cluster runs this release's image only."""
    want = images.KOSMOS_REF
    for kind, item in _workloads(kubectl):
        if any(image != want for image in _kosmos_images(item)) or not _complete(kind, item):
            return False
    pods = get(kubectl, "pods", "-n", SYSTEM)["items"]
    old = [
        p["metadata"]["name"]
        for p in pods
        if any("/kosmos:" in c["image"] and c["image"] != want for c in p["spec"]["containers"])
    ]
    return not old


def _member_rolled(member: Kubectl) -> bool:
    """The member's Kosmos workloads (a join's) are all there and rolled as ``_rolled`` says."""
    present = {(kind, item["metadata"]["name"]) for kind, item in _workloads(member)}
    return present >= MEMBER_WORKLOADS and _rolled(member)


def _ready(host: Kubectl) -> bool:
    path = '{.status.conditions[?(@.type=="Ready")].status}'
    return str(host.run("get", "node", LEAF, "-o", f"jsonpath={path}")) == "True"


def _upgrade(env: UpgradeEnv, upgrade: Any, moves: str = "host") -> None:
    """Run ``upgrade`` with pods on the leaf and check what it must keep.

    ``moves``: the cluster whose Kosmos pods ``upgrade`` puts on this release, the host (it
    must keep every pod of the member) or the member (a re-join: it must keep the member's
    pods outside its kosmos-system).
    """
    host = env.kubectl()
    wait_for(lambda: _ready(host), 180, f"leaf {LEAF} Ready")
    member = env.kubectl(MEMBER)
    wait_for(lambda: _settled(member), 180, f"no rollout in flight in {MEMBER}")
    on_this_release = _member_rolled if moves == MEMBER else _rolled
    moved = env.kubectl(moves)
    before = Snapshot.take(env, moves)
    assert len(before.app) >= 2, before.app
    watch = LeafWatch(env.kubectl())
    watch.start()
    started = time.monotonic()
    try:
        upgrade()
        wait_for(lambda: on_this_release(moved), 300,
                 f"every Kosmos workload of {moves} on {images.KOSMOS_REF}")  # fmt: skip
        rolled = time.monotonic() - started
        time.sleep(SETTLE)
        wait_for(lambda: _ready(host), 60, f"leaf {LEAF} Ready after the upgrade")
    finally:
        longest = watch.stop()
    after = Snapshot.take(env, moves)
    print(f"upgrade rolled in {rolled:.0f}s; leaf NotReady at most {longest:.1f}s "
          f"({len(watch.samples)} samples)")  # fmt: skip
    assert after.member == before.member, "a member pod was recreated or restarted"
    assert after.app == before.app, "a host pod on the leaf was recreated or restarted"
    assert longest <= HANDOVER, f"leaf NotReady for {longest:.1f}s (> {HANDOVER}s handover)"
    # the new cluster-manager serves: one more replica runs in the member
    replicas = len(before.app) + 1
    host.run("scale", "deployment", "nginx-deployment", "-n", "default", f"--replicas={replicas}")
    wait_for(lambda: _running(env) == replicas, 180, f"{replicas} app pods running in {MEMBER}")


def _running(env: UpgradeEnv) -> int:
    items = get(env.kubectl(MEMBER), "pods", "-n", "default", "-l", "app=nginx")["items"]
    return sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")


# --- the two upgrade paths, then a member's re-join -----------------------------------------


def test_kosmosctl_install_upgrades_the_previous_release_in_place(env: UpgradeEnv) -> None:
    host = env.kubectl()
    deployment = get(host, "deployment", "kosmos-cluster-manager", "-n", SYSTEM)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":{env.previous.tag}"), image  # the old release is what runs
    _upgrade(env, lambda: env.current("install", *INSTALL, "--wait", "--timeout", "300"))


def test_helm_upgrade_from_the_previous_chart_keeps_member_pods(env: UpgradeEnv) -> None:
    host = env.kubectl()
    host.run("delete", "deployment", "nginx-deployment", "-n", "default", "--wait=true",
             timeout=120)  # fmt: skip
    env.current("unjoin", "cluster", "--name", MEMBER, "--wait", "120")
    env.current("uninstall")
    values = env.base / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    env.helm_run("install", "kosmos", str(env.previous.chart), "-n", SYSTEM,
                 "--create-namespace", "-f", str(values), "--wait", "--timeout", "6m")  # fmt: skip
    env.old("--kubeconfig", env.pods_kubeconfig("host"), "join", "cluster", "--name", MEMBER,
            "--kubeconfig", env.pods_kubeconfig(MEMBER),
            "--enable-all", "--cni", "flannel")  # fmt: skip
    wait_for(lambda: _ready(host), 180, f"leaf {LEAF} Ready")
    app = kosmos_plan.sample_app(real_nodes=True)
    host.run("apply", "-f", "-", stdin=json.dumps(app))
    wait_for(lambda: _running(env) == app["spec"]["replicas"], 180, "the app running in the member")
    chart = releases.ROOT / "charts" / "kosmos"

    def upgrade() -> None:
        host.run("apply", "--server-side", "--force-conflicts", "-f", str(chart / "crds"),
                 timeout=120)  # fmt: skip
        env.helm_run("upgrade", "kosmos", str(chart), "-n", SYSTEM, "--reset-then-reuse-values",
                     "--wait", "--timeout", "6m", *_upgrade_notes(env.previous))  # fmt: skip

    _upgrade(env, upgrade)


def _upgrade_notes(previous: releases.Release) -> list[str]:
    """What docs/helm.md's upgrade notes ask of an upgrade from ``previous``.

    0.1.0's ``join`` applied the agents' shared ClusterRole over the chart's, so kosmosctl
    owns two of its labels and Helm's server-side apply reports a conflict on them: the note
    says ``--force-conflicts`` (later joins never touch an installed role).
    """
    return ["--force-conflicts"] if previous.version == "0.1.0" else []


def test_a_rejoin_moves_the_members_kosmos_pods_in_place(env: UpgradeEnv) -> None:
    """After the host's upgrade the member still runs the previous ``join``'s Kosmos pods;
    this release's ``join`` with the same name and kubeconfig moves them (docs/helm.md)."""
    member = env.kubectl(MEMBER)
    old = [image for _, item in _workloads(member) for image in _kosmos_images(item)]
    assert old, f"no Kosmos workload in {MEMBER}'s {SYSTEM}"
    assert all(image.endswith(f":{env.previous.tag}") for image in old), old  # the old join's
    _upgrade(env, lambda: env.current("join", "cluster", "--name", MEMBER,
                                      "--kubeconfig", env.pods_kubeconfig(MEMBER),
                                      "--enable-all", "--cni", "flannel"),
             moves=MEMBER)  # fmt: skip
