"""Running pairs through a stand-in exec (concurrency cap, timeouts, errors) and reporting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kosmos.kube.errors import ApiError
from kosmos.kube.execute import ExecResult
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import report, run
from kosmos.ops.netdoctor.config import Config
from kosmos.ops.netdoctor.plan import Pair


def _pair(i: int, target: str = "10.0.0.1") -> Pair:
    return Pair(f"f-{i}", f"node-{i}", "node-x", target, ("curl", target))


class FakeExec:
    """Answers per target: a result, an exception, or a hang; records the concurrency."""

    def __init__(self, answers: dict[str, Any], delay: float = 0.01) -> None:
        self.answers = answers
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.calls: list[tuple[str, tuple[str, ...], str | None, float]] = []

    async def __call__(
        self,
        client: Any,
        namespace: str,
        pod: str,
        command: Sequence[str],
        *,
        container: str | None = None,
        timeout: float = 10.0,
    ) -> ExecResult:
        self.calls.append((pod, tuple(command), container, timeout))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
            answer = self.answers.get(command[-1], ExecResult("OK node-x\n", "", 0))
            if answer == "hang":
                await asyncio.sleep(3600)
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, ExecResult)
            return answer
        finally:
            self.running -= 1


async def test_at_most_max_num_execs_run_at_once_and_outcomes_keep_the_pairs_order():
    fake = FakeExec({}, delay=0.02)
    done: list[run.Outcome] = []
    pairs = [_pair(i) for i in range(10)]
    outcomes = await run.run_pairs(
        Any, "ns", pairs, protocol="tcp", max_num=3, cmd_timeout=2, done=done.append, exec_=fake
    )
    assert fake.peak == 3 and len(done) == 10
    assert [o.pair for o in outcomes] == pairs and all(o.ok for o in outcomes)
    assert fake.calls[0][2] == "floater" and fake.calls[0][3] == 2 + run.HANDSHAKE_MARGIN


async def test_failures_exceptions_and_hangs_are_rows_not_errors(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(run, "HANDSHAKE_MARGIN", 0.0)
    fake = FakeExec(
        {
            "10.0.0.2": ExecResult("", "curl: (7) Failed to connect", 7, "exit code 7"),
            "10.0.0.3": ApiError("src", 'container not found ("floater")'),
            "10.0.0.4": "hang",
            "10.0.0.5": ExecResult("<html>", "", 0),
            "10.0.0.6": ExecResult("", "", None, "timed out after 0.1 s"),
        }
    )
    pairs = [_pair(i, f"10.0.0.{i}") for i in range(1, 7)]
    outcomes = await run.run_pairs(
        Any, "ns", pairs, protocol="tcp", max_num=6, cmd_timeout=0.1, exec_=fake
    )
    results = [(o.result, o.log) for o in outcomes]
    assert results[0] == ("SUCCEEDED", "")
    assert results[1] == (
        "FAILED",
        "command terminated with exit code 7: curl: (7) Failed to connect",
    )
    assert results[2] == ("EXCEPTION", 'exec error: cluster src: container not found ("floater")')
    assert results[3] == ("EXCEPTION", "exec timed out after 0.1 s")
    assert results[4] == ("FAILED", "unexpected reply (not the floater's): <html>")
    assert results[5] == ("FAILED", "timed out after 0.1 s")


def _outcomes() -> list[run.Outcome]:
    long_log = "command terminated with exit code 7: " + "x" * 200
    return [
        run.Outcome(_pair(1), "SUCCEEDED", "", 0.1),
        run.Outcome(_pair(2, "fd00::2"), "FAILED", long_log, 1.5),
        run.Outcome(_pair(3), "SUCCEEDED", "", 0.2),
        run.Outcome(_pair(4), "EXCEPTION", "exec error: unable to upgrade\nconnection", 0.3),
    ]


def test_tables_split_successes_and_failures_numbered_separately():
    outcomes = _outcomes()
    assert report.success_rows(outcomes) == [
        (1, "node-1", "node-x", "10.0.0.1", "SUCCEEDED"),
        (2, "node-3", "node-x", "10.0.0.1", "SUCCEEDED"),
    ]
    failed = report.failure_rows(outcomes)
    assert failed[0][:5] == (1, "node-2", "node-x", "fd00::2", "FAILED")
    assert len(str(failed[0][5])) == report.LOG_WIDTH and str(failed[0][5]).endswith("...")
    assert failed[1][5] == "exec error: unable to upgrade connection"  # one line
    assert len(report.FAILURE_HEADERS) == 6


def test_resume_json_holds_the_failures_whole_in_netctls_shape(tmp_path: Path):
    path = tmp_path / "resume.json"
    report.write_resume(path, _outcomes())
    data = json.loads(path.read_text())
    assert [list(e) for e in data] == [
        ["Status", "ResultStr", "srcNodeName", "dstNodeName", "targetIP"]
    ] * 2
    assert data[0]["Status"] == 0 and data[0]["ResultStr"].endswith("x" * 200)
    assert report.read_resume(path) == [("node-2", "node-x", 6), ("node-4", "node-x", 4)]
    report.write_resume(path, _outcomes()[:1])
    assert json.loads(path.read_text()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file (`kosmosctl netdoctor check` writes it)"),
        ("[{]", "line 1 column 3"),
        ('{"a": 1}', "expected a JSON list of failed pairs"),
        ('[{"srcNodeName": "a"}]', "entry 0 lacks srcNodeName, dstNodeName or targetIP"),
    ],
)
def test_a_bad_resume_file_is_one_clear_error(tmp_path: Path, text: str | None, message: str):
    path = tmp_path / "resume.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(OperationError) as caught:
        report.read_resume(path)
    assert message in str(caught.value)


def test_json_has_every_pair_with_its_result_and_cluster_sides():
    entries = report.json_entries(_outcomes(), Config(version="1", dst_kubeconfig="d"))
    assert [e["result"] for e in entries] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "EXCEPTION"]
    first = entries[0]
    assert first["Status"] == 1 and first["srcCluster"] == "src" and first["dstCluster"] == "dst"
    assert first["protocol"] == "tcp" and first["mode"] == "pod" and first["seconds"] == 0.1
    assert first["targetIP"] == "10.0.0.1" and first["command"] == ["curl", "10.0.0.1"]
    one = report.json_entries(_outcomes(), Config(version="1"))
    assert one[0]["dstCluster"] == "src"
