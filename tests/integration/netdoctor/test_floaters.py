"""netdoctor against a real apiserver and a real node: a check, and floaters that never run.

The host's real node runs the floaters (kwok nodes are excluded by the DaemonSets' affinity;
the session's cordon does not stop a DaemonSet). ``autoClean`` must leave nothing behind
whether the check ran or the floaters never became Ready.
"""

from __future__ import annotations

import secrets

import pytest

from kosmos.api.resources import NAMESPACES
from kosmos.kube.errors import NotFound
from kosmos.ops.netdoctor import check as checking
from kosmos.ops.netdoctor import floater, run
from kosmos.ops.netdoctor.config import Config
from tests.fixtures.clusters import LocalEnv


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def start(self, total: int) -> None:
        self.lines.append(f"start {total}")

    def advance(self, outcome: run.Outcome) -> None:
        self.lines.append(f"{outcome.pair.target} {outcome.result}")


def _config(local_env: LocalEnv, **values: object) -> Config:
    namespace = f"netdoctor-{secrets.token_hex(3)}"
    kubeconfig = str(local_env.kubeconfig(local_env.host))
    return Config(namespace=namespace, src_kubeconfig=kubeconfig, auto_clean=True, **values)  # type: ignore[arg-type]


async def _gone(local_env: LocalEnv, namespace: str) -> bool:
    client = await local_env.client(local_env.host)
    try:
        await client.get(NAMESPACES, namespace)
    except NotFound:
        return True
    finally:
        await client.close()
    return False


@pytest.mark.parametrize("protocol", ["tcp", "udp", "icmp", "dns"])
async def test_a_check_on_the_hosts_real_node_succeeds_and_cleans_up(
    local_env: LocalEnv, protocol: str
):
    (worker,) = local_env.real_nodes(local_env.host)
    config = _config(local_env, protocol=protocol, pod_wait_time=120)
    reporter = Lines()
    result = await checking.check(config, reporter)
    assert result.outcomes, reporter.lines
    assert all(o.pair.src_node == worker for o in result.outcomes)
    expected = "kube-dns" if protocol == "dns" else worker
    assert all(o.pair.dst_node == expected for o in result.outcomes)
    assert result.ok, [(o.pair.target, o.log) for o in result.outcomes]
    assert f"src cluster: namespace {config.namespace} created" in reporter.lines
    assert await _gone(local_env, config.namespace)


async def test_floaters_that_cannot_pull_their_image_name_the_pod_and_leave_nothing(
    local_env: LocalEnv,
):
    (worker,) = local_env.real_nodes(local_env.host)
    config = _config(local_env, src_image_repository="nowhere.invalid/none", pod_wait_time=90)
    with pytest.raises(floater.FloaterNotReady) as caught:
        await checking.check(config, Lines())
    message = str(caught.value)
    assert f"pod {config.namespace}/kosmos-floater-" in message, message
    assert f"on {worker}: container floater " in message, message
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    assert await _gone(local_env, config.namespace)
