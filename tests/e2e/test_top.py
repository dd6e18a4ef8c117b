"""``kubectl top`` as a user runs it after ``kosmosctl local up --real-nodes 1``: metrics-server
in the host answers for the host's real node, for the leaf nodes (the member nodes behind
them) and for its own pod."""

from __future__ import annotations

import re

import pytest

from kosmos.local.kubectl import KubectlError
from kosmos.local.nodes.plan import REAL_NODE_KEY
from tests.e2e.conftest import E2EEnv
from tests.support import wait_for

#: ``NAME  CPU(cores)  CPU(%)  MEMORY(bytes)  MEMORY(%)`` with numbers, not ``<unknown>``
MEASURED = re.compile(r"^(\S+)\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%$")


def measured_nodes(e2e_env: E2EEnv) -> set[str]:
    out = e2e_env.kubectl("host").run("top", "node", "--no-headers")
    return {m.group(1) for line in out.splitlines() if (m := MEASURED.match(line.strip()))}


def test_kubectl_top_answers_for_the_real_node_the_leaf_nodes_and_pods(e2e_env: E2EEnv) -> None:
    host = e2e_env.kubectl("host")
    real = [
        n.removeprefix("node/")
        for n in host.run("get", "nodes", "-l", REAL_NODE_KEY, "-o", "name").split()
    ]
    if not real:
        pytest.skip("the e2e environment has no real node in the host: no metrics-server")
    leaves = {"kosmos-cluster1", "kosmos-cluster2"}
    wanted = {*real, *leaves}

    def all_measured() -> set[str] | None:
        nodes = measured_nodes(e2e_env)
        return nodes if wanted <= nodes else None

    seen = wait_for(
        all_measured,
        90,
        f"`kubectl top node` to measure {', '.join(sorted(wanted))}",
        interval=3,
        ignoring=(KubectlError,),
    )
    assert wanted <= seen
    pods = host.run("top", "pod", "-n", "kube-system", "--no-headers")
    assert re.search(r"^metrics-server-\S+\s+\d+m\s+\d+Mi\s*$", pods, re.MULTILINE), pods
