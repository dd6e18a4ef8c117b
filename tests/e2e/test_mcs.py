"""The seed's "Multi-cluster Service Discovery" tutorial replayed on real nodes.

In-cluster Kosmos (tests/e2e/conftest.py) runs the MCS controllers inside its
cluster-manager. An nginx-like Deployment (our HTTP image) runs on the leaf nodes, so its
containers run on the members' real nodes; the tutorial's v1alpha1 ServiceExport in the
host and ServiceImport in cluster1 are applied as written; a real pod in cluster1 then gets
HTTP 200 through the derived Service's ClusterIP, which kube-proxy on cluster1's real node
programs from the MCS EndpointSlices. The annotation and the install's ``--auto-mcs-prefix``
(``kosmos-e2e`` in the local in-cluster install) export to every member.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kosmos.api import names
from kosmos.local import kosmos_plan
from kosmos.local.kubectl import KubectlError
from kosmos.mcs.forge import derived_name
from kosmos.ops.local_incluster import AUTO_MCS_PREFIX
from tests.e2e.conftest import E2EEnv
from tests.fixtures.realpods import real_pod
from tests.support import get, wait_for

SHELL = "docker.io/kosmos/shell:v0.1.0"
NS = "default"
APP = "mcs-nginx"
MEMBERS = ("cluster1", "cluster2")
IMPORTS = "serviceimports.multicluster.x-k8s.io"

SEED_EXPORT = {
    "apiVersion": "multicluster.x-k8s.io/v1alpha1",
    "kind": "ServiceExport",
    "metadata": {"name": APP},
}
SEED_IMPORT = {
    "apiVersion": "multicluster.x-k8s.io/v1alpha1",
    "kind": "ServiceImport",
    "metadata": {"name": APP},
    "spec": {"type": "ClusterSetIP", "ports": [{"protocol": "TCP", "port": 80}]},
}


def _apply(e2e_env: E2EEnv, context: str, *bodies: Any, namespace: str = NS) -> None:
    for body in bodies:
        e2e_env.kubectl(context).run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def _deployment() -> Any:
    body = kosmos_plan.sample_app(real_nodes=True)
    body["metadata"] = {"name": APP, "namespace": NS, "labels": {"app": APP}}
    body["spec"]["replicas"] = 2
    body["spec"]["selector"] = {"matchLabels": {"app": APP}}
    body["spec"]["template"]["metadata"]["labels"] = {"app": APP}
    return body


def _service(name: str, annotations: dict[str, str] | None = None) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "type": "NodePort",
            "selector": {"app": APP},
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
        },
    }


@pytest.fixture
def nginx(e2e_env: E2EEnv) -> Iterator[None]:
    """The tutorial's workload and Service in the host, both pods Running on leaf nodes."""
    host = e2e_env.kubectl()
    _apply(e2e_env, "host", _deployment(), _service(APP))
    try:

        def running() -> bool:
            pods = get(host, "pods", "-n", NS, "-l", f"app={APP}")["items"]
            return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

        wait_for(running, 180, "the nginx pods to run on leaf nodes")
        yield
    finally:
        for kind in ("serviceexports.multicluster.x-k8s.io", "service", "deployment"):
            host.run("delete", kind, APP, "-n", NS, "--ignore-not-found", "--wait=false")
        e2e_env.kubectl("cluster1").run("delete", IMPORTS, APP, "-n", NS, "--ignore-not-found")


@pytest.fixture
def client(e2e_env: E2EEnv) -> Iterator[str]:
    """A real pod in cluster1, on its real node."""
    member = e2e_env.kubectl("cluster1")
    body = real_pod("e2e-mcs-client", "cluster1-real1", SHELL, ["sleep", "3600"])
    _apply(e2e_env, "cluster1", body)
    try:
        wait_for(
            lambda: (
                get(member, "pod", "e2e-mcs-client", "-n", NS)["status"].get("phase") == "Running"
            ),
            120,
            "the client pod to run in cluster1",
        )
        yield "e2e-mcs-client"
    finally:
        member.run(
            "delete", "pod", "e2e-mcs-client", "-n", NS, "--ignore-not-found", "--wait=false"
        )


def _import(e2e_env: E2EEnv, context: str, name: str, namespace: str = NS) -> Any:
    out = e2e_env.kubectl(context).run(
        "get", IMPORTS, name, "-n", namespace, "-o", "json", "--ignore-not-found"
    )
    return json.loads(out) if out.strip() else None


def test_seed_tutorial_export_in_host_import_in_cluster1_http_200(
    e2e_env: E2EEnv, nginx: None, client: str
):
    _apply(e2e_env, "host", SEED_EXPORT)
    _apply(e2e_env, "cluster1", SEED_IMPORT)
    member = e2e_env.kubectl("cluster1")
    imported = wait_for(
        lambda: (i := _import(e2e_env, "cluster1", APP)) and i["spec"].get("ips") and i,
        60,
        "the import's clusterset IP in cluster1",
    )
    ip = imported["spec"]["ips"][0]
    derived = get(member, "service", derived_name(NS, APP), "-n", NS)
    assert derived["spec"]["clusterIP"] == ip
    selector = f"{names.LABEL_MCS_SERVICE_NAME}={APP}"

    def endpoints() -> int:
        slices = get(member, "endpointslices", "-n", NS, "-l", selector)["items"]
        return sum(len(s.get("endpoints") or []) for s in slices)

    wait_for(lambda: endpoints() == 2, 60, "both pods in cluster1's MCS slices")
    fetch = ["exec", client, "-n", NS, "--", "timeout", "5", "wget", "-qO-", f"http://{ip}:80/"]
    answer = wait_for(
        lambda: member.run(*fetch, timeout=20).strip(),
        90,
        "HTTP 200 through the derived Service's ClusterIP",
        ignoring=(KubectlError,),  # kube-proxy programs the Service within a few seconds
    )
    assert answer.startswith(f"{APP}-")
    # TODO(H2 dns): the same request through nginx.default.svc.clusterset.local


def test_annotation_exports_to_every_member(e2e_env: E2EEnv, nginx: None):
    name = "mcs-nginx-auto"
    _apply(e2e_env, "host", _service(name, {names.ANNOTATION_AUTO_MCS: "true"}))
    try:
        for member in MEMBERS:
            wait_for(
                lambda m=member: (i := _import(e2e_env, m, name)) and i["spec"].get("ips"),
                60,
                f"the annotation's import in {member}",
            )
    finally:
        e2e_env.kubectl().run("delete", "service", name, "-n", NS, "--ignore-not-found")
    for member in MEMBERS:
        wait_for(lambda m=member: _import(e2e_env, m, name) is None, 30, "the import withdrawn")


def test_prefix_flag_exports_to_every_member(e2e_env: E2EEnv):
    namespace = f"{AUTO_MCS_PREFIX}-mcs"
    for context in ("host", *MEMBERS):
        e2e_env.kubectl(context).run("create", "namespace", namespace)
    try:
        body = _service("prefixed")
        body["spec"]["type"] = "ClusterIP"
        _apply(e2e_env, "host", body, namespace=namespace)
        for member in MEMBERS:
            wait_for(
                lambda m=member: _import(e2e_env, m, "prefixed", namespace),
                60,
                f"the prefix's import in {member}",
            )
    finally:
        for context in ("host", *MEMBERS):
            e2e_env.kubectl(context).run("delete", "namespace", namespace, "--wait=false")
