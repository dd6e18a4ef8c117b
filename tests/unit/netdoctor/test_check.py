"""check/resume/clean end to end on in-memory clusters, and the CLI around them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kosmos.api.resources import DAEMONSETS, NODES, PODS, SERVICES
from kosmos.cli.main import cli
from kosmos.kube.execute import ExecResult
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import check as checking
from kosmos.ops.netdoctor import floater, run
from kosmos.ops.netdoctor.config import Config
from kosmos.ops.netdoctor.plan import Pair

from .fakes import FakeCluster

NODE_IPS = {"n1": ["172.18.0.2", "fc00::2"], "n2": ["172.18.0.3"]}


def _controllers(nodes: Sequence[str]) -> Any:
    """A DaemonSet controller and kubelet: every applied DaemonSet gets a Ready pod per node."""

    def tick(cluster: FakeCluster) -> None:
        for (res, ns, name), ds in list(cluster.objects.items()):
            if res != str(DAEMONSETS):
                continue
            ds["status"] = {
                "observedGeneration": 1,
                "desiredNumberScheduled": len(nodes),
                "updatedNumberScheduled": len(nodes),
                "numberReady": len(nodes),
            }
            for i, node in enumerate(nodes):
                host = ds["spec"]["template"]["spec"].get("hostNetwork")
                ips = NODE_IPS[node] if host else [f"10.244.{i}.5"]
                pod = {
                    "metadata": {
                        "name": f"{name}-{node}",
                        "namespace": ns,
                        "labels": floater.labels(name),
                    },
                    "spec": {"nodeName": node},
                    "status": {
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "podIPs": [{"ip": ip} for ip in ips],
                    },
                }
                cluster.put(PODS, pod)

    return tick


def _cluster(name: str = "src", nodes: Sequence[str] = ("n1", "n2")) -> FakeCluster:
    cluster = FakeCluster(name)
    for node in nodes:
        addresses = [{"type": "InternalIP", "address": ip} for ip in NODE_IPS[node]]
        cluster.put(NODES, {"metadata": {"name": node}, "status": {"addresses": addresses}})
    cluster.tick = _controllers(nodes)
    return cluster


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.total = -1
        self.done: list[run.Outcome] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, outcome: run.Outcome) -> None:
        self.done.append(outcome)


def _connect(src: FakeCluster, dst: FakeCluster | None = None) -> Any:
    @contextlib.asynccontextmanager
    async def connect(config: Config, default: str | None) -> AsyncIterator[Any]:
        yield checking.Clusters(src, dst)  # type: ignore[arg-type]

    return connect


def _exec(failing: set[str] = set()) -> Any:  # noqa: B006 (never mutated)
    calls: list[tuple[str, tuple[str, ...]]] = []

    async def fake(client: Any, ns: str, pod: str, command: Sequence[str], **_: Any) -> ExecResult:
        calls.append((pod, tuple(command)))
        if command[-1] in failing or any(f in command[-1] for f in failing):
            return ExecResult("", "curl: (28) timed out", 28)
        return ExecResult(f"OK {pod}\n", "", 0)

    fake.calls = calls  # type: ignore[attr-defined]
    return fake


async def test_a_check_in_one_cluster_runs_every_pair_and_reports_each(
    monkeypatch: pytest.MonkeyPatch,
):
    src = _cluster()
    monkeypatch.setattr(checking, "connect", _connect(src))
    reporter = Reporter()
    config = Config(version="0.1.0")
    result = await checking.check(config, reporter, exec_=_exec({"10.244.1.5"}))
    pairs = [(o.pair.src_node, o.pair.dst_node, o.pair.target, o.result) for o in result.outcomes]
    assert pairs == [
        ("n1", "n1", "10.244.0.5", "SUCCEEDED"),
        ("n1", "n2", "10.244.1.5", "FAILED"),
        ("n2", "n1", "10.244.0.5", "SUCCEEDED"),
        ("n2", "n2", "10.244.1.5", "FAILED"),
    ]
    assert reporter.total == 4 and len(reporter.done) == 4 and not result.ok
    assert "src cluster: pod kosmos-floater-n1 on n1 is ready" in reporter.lines
    assert src.find(DAEMONSETS, "kosmos-floater", "kosmos-system") is not None  # no autoClean


async def test_node_mode_between_two_clusters_targets_the_dst_nodes(
    monkeypatch: pytest.MonkeyPatch,
):
    src, dst = _cluster("src", ["n2"]), _cluster("dst", ["n1"])
    monkeypatch.setattr(checking, "connect", _connect(src, dst))
    config = Config(version="0.1.0", mode="node", dst_kubeconfig="d", auto_clean=True)
    fake = _exec()
    result = await checking.check(config, Reporter(), exec_=fake)
    assert [(o.pair.src_pod, o.pair.target) for o in result.outcomes] == [
        ("kosmos-floater-host-n2", "172.18.0.2")  # the IPv6 InternalIP has no IPv4 source
    ]
    assert result.ok
    assert not [k for k in src.objects if k[0] != str(NODES)]  # autoClean: all gone
    assert not [k for k in dst.objects if k[0] != str(NODES)]


async def test_auto_clean_removes_the_floaters_when_they_never_run(
    monkeypatch: pytest.MonkeyPatch,
):
    src = _cluster(nodes=())
    monkeypatch.setattr(checking, "connect", _connect(src))
    with pytest.raises(floater.FloaterNotReady, match="no node can run a floater"):
        await checking.check(Config(version="1", auto_clean=True), Reporter(), exec_=_exec())
    assert src.objects == {}


async def test_resume_rechecks_only_last_times_failures_and_names_the_vanished(
    monkeypatch: pytest.MonkeyPatch,
):
    src = _cluster()
    monkeypatch.setattr(checking, "connect", _connect(src))
    only = [("n1", "n2", 4), ("n1", "n2", 6), ("n9", "n1", 4)]
    result = await checking.check(Config(version="1"), Reporter(), only=only, exec_=_exec())
    assert [(o.pair.src_node, o.pair.dst_node) for o in result.outcomes] == [("n1", "n2")]
    assert result.unmatched == [("n1", "n2", 6), ("n9", "n1", 4)]


async def test_dns_asks_the_clusters_dns_service(monkeypatch: pytest.MonkeyPatch):
    src = _cluster()
    service = {"metadata": {"name": "kube-dns", "namespace": "kube-system"}}
    src.put(SERVICES, {**service, "spec": {"clusterIP": "10.96.0.10"}})
    monkeypatch.setattr(checking, "connect", _connect(src))
    fake = _exec()
    result = await checking.check(Config(version="1", protocol="dns"), Reporter(), exec_=fake)
    assert [(o.pair.dst_node, o.pair.target) for o in result.outcomes] == [
        ("kube-dns", "10.96.0.10")
    ] * 2
    assert fake.calls[0][1][0] == "nslookup"


async def test_an_unreadable_kubeconfig_is_one_error_before_anything_is_created(tmp_path: Path):
    config = Config(version="1", src_kubeconfig=str(tmp_path / "nope"))
    with pytest.raises(OperationError, match=r"cluster src: kubeconfig .*nope: No such file"):
        await checking.check(config, Reporter())


# -- the CLI ----------------------------------------------------------------------------


def _outcomes() -> list[run.Outcome]:
    ok = Pair("f-1", "n1", "n1", "10.244.0.5", ("curl",))
    bad = Pair("f-1", "n1", "n2", "10.244.1.5", ("curl",))
    return [
        run.Outcome(ok, "SUCCEEDED", "", 0.1),
        run.Outcome(bad, "FAILED", "command terminated with exit code 7: refused", 0.2),
    ]


def _fake_check(outcomes: list[run.Outcome], seen: dict[str, Any]) -> Any:
    async def fake(config: Config, reporter: Any, **kwargs: Any) -> checking.Result:
        seen.update(kwargs, config=config)
        reporter.start(len(outcomes))
        for outcome in outcomes:
            reporter.advance(outcome)
        return checking.Result(config, outcomes)

    return fake


def test_cli_check_prints_both_tables_writes_resume_json_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--kubeconfig", "/k/config", "netdoctor", "init"]).exit_code == 0
    assert json.loads(Path("config.json").read_text())["srcKubeConfig"] == "/k/config"
    refused = runner.invoke(cli, ["netdoctor", "init"])
    assert refused.exit_code == 1 and "exists: not overwritten" in refused.output
    seen: dict[str, Any] = {}
    monkeypatch.setattr(checking, "check", _fake_check(_outcomes(), seen))
    result = runner.invoke(cli, ["netdoctor", "check"])
    assert result.exit_code == 3, result.output
    assert "S/N   SRC NODE NAME   DST NODE NAME   TARGET IP    RESULT" in result.stdout
    assert "FAILED   command terminated with exit code 7: refused" in result.stdout
    assert json.loads(Path("resume.json").read_text())[0]["dstNodeName"] == "n2"
    assert seen["only"] is None

    out = runner.invoke(cli, ["netdoctor", "check", "-o", "json", "--resume-file", "r2.json"])
    assert out.exit_code == 3
    assert [e["result"] for e in json.loads(out.stdout)] == ["SUCCEEDED", "FAILED"]
    assert Path("r2.json").exists()

    resumed = runner.invoke(cli, ["netdoctor", "resume"])
    assert resumed.exit_code == 3 and seen["only"] == [("n1", "n2", 4)]
    monkeypatch.setattr(checking, "check", _fake_check(_outcomes()[:1], seen))
    assert runner.invoke(cli, ["netdoctor", "resume"]).exit_code == 0
    assert json.loads(Path("resume.json").read_text()) == []
    nothing = runner.invoke(cli, ["netdoctor", "resume"])
    assert nothing.exit_code == 0 and "nothing to resume" in nothing.output


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    missing = runner.invoke(cli, ["netdoctor", "check", "--config", "c.json"])
    assert missing.exit_code == 1
    assert (
        "Error: c.json: no such file (write one with `kosmosctl netdoctor init`)" in missing.output
    )
    Path("c.json").write_text('{"mode": "pods"}')
    bad = runner.invoke(cli, ["netdoctor", "check", "--config", "c.json"])
    assert bad.exit_code == 1 and "mode: 'pods' is not one of" in bad.output
    no_resume = runner.invoke(cli, ["netdoctor", "resume", "--config", "c.json"])
    assert no_resume.exit_code == 1 and "resume.json: no such file" in no_resume.output
    Path("c.json").write_text(json.dumps({"srcKubeConfig": str(tmp_path / "none")}))
    unreachable = runner.invoke(cli, ["netdoctor", "check", "--config", "c.json"])
    assert unreachable.exit_code == 1 and "cluster src: kubeconfig" in unreachable.output
    assert not Path("resume.json").exists()
