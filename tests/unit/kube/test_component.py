"""The shared component flags: one decorator, the command's own options kept."""

from __future__ import annotations

import click
from click.testing import CliRunner

from kosmos.kube.component import Common, common_options


def _command() -> click.Command:
    @click.command("demo")
    @common_options("demo", health_port=None, member_qps=None)
    @click.option("--workers", default=3, show_default=True)
    def demo(common: Common, workers: int) -> None:
        click.echo(f"{common.kube_qps} {common.leader_elect} {workers}")

    return demo


def test_options_below_the_decorator_are_kept_and_common_is_collected() -> None:
    result = CliRunner().invoke(_command(), ["--workers", "5", "--leader-elect", "--kube-qps", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "7.0 True 5"


def test_left_out_flags_are_absent() -> None:
    help_text = CliRunner().invoke(_command(), ["--help"]).output
    assert "--workers" in help_text
    assert "--health-port" not in help_text
    assert "--member-qps" not in help_text
    assert "kosmos-system/demo" in help_text
