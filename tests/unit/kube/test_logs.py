"""``--log-format json``: one JSON object per line, with what a reconcile knows about."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from kosmos.kube import logs
from kosmos.kube.clock import FakeClock
from kosmos.kube.component import Common, common_options
from kosmos.kube.controller import Controller, Request
from kosmos.launcher import cli

LOGGER = "kosmos.test.logs"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What LOGGER writes, through a JsonFormatter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield out
    logger.removeHandler(handler)


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_time_level_logger_message_and_the_fields_around_it(
    lines: io.StringIO,
) -> None:
    log = logging.getLogger(LOGGER)
    with logs.fields(cluster="member1"), logs.fields(key="ns/pod"):
        log.warning("pod %s not copied", "web", extra={"reason": "Forbidden"})
    log.info("outside")
    first, second = parsed(lines)
    assert first["level"] == "warning"
    assert first["logger"] == LOGGER
    assert first["message"] == "pod web not copied"
    assert first["time"].endswith("+00:00")
    assert (first["cluster"], first["key"], first["reason"]) == ("member1", "ns/pod", "Forbidden")
    assert "cluster" not in second


def test_an_exception_goes_in_error_on_the_same_line(lines: io.StringIO) -> None:
    try:
        raise ValueError("bad spec")
    except ValueError:
        logging.getLogger(LOGGER).exception("reconcile failed")
    (line,) = parsed(lines)
    assert "ValueError: bad spec" in line["error"]
    assert len(lines.getvalue().splitlines()) == 1


async def test_every_line_a_reconcile_logs_names_its_controller_cluster_and_key(
    lines: io.StringIO,
) -> None:
    clock = FakeClock()
    log = logging.getLogger(LOGGER)

    async def reconcile(request: Request) -> None:
        log.info("reconciling")
        raise RuntimeError("member unreachable")

    controller = Controller("clustertree-pods", reconcile, clock=clock, workers=1)
    controller.enqueue(Request("member1", "ns", "web"))
    task = asyncio.ensure_future(controller.run())
    await clock.settle()
    await controller.stop()
    await task
    (line,) = parsed(lines)
    assert line["controller"] == "clustertree-pods"
    assert (line["cluster"], line["key"]) == ("member1", "ns/web")
    assert logs.current_fields() == {}


def test_configure_json_sets_the_root_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    logs.configure(logging.INFO, "json")
    (handler,) = root.handlers
    assert isinstance(handler.formatter, logs.JsonFormatter)
    monkeypatch.setattr(root, "handlers", [])
    logs.configure(logging.INFO)
    assert not isinstance(root.handlers[0].formatter, logs.JsonFormatter)
    with pytest.raises(ValueError, match="log format 'xml'"):
        logs.configure(logging.INFO, "xml")


def test_components_take_log_format_and_default_to_text() -> None:
    @click.command("demo")
    @common_options("demo")
    def command(common: Common) -> None:
        click.echo(f"log_format={common.log_format!r}")

    result = CliRunner().invoke(command, ["--log-format", "json"])
    assert result.exit_code == 0, result.output
    assert "log_format='json'" in result.output
    assert "log_format='text'" in CliRunner().invoke(command, []).output
    bad = CliRunner().invoke(command, ["--log-format", "xml"])
    assert bad.exit_code == 2
    for component in ("cluster-manager", "network-manager", "floater", "node-agent"):
        help_text = CliRunner().invoke(cli, [component, "--help"]).output
        assert "--log-format [text|json]" in help_text, component
