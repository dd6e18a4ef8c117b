"""``kosmosctl netdoctor check``: every pair, tables (or JSON) on stdout, resume.json.

Shared by ``resume``, which runs the same check on last time's failures only. Progress (the
steps, each floater ready, the "Do check..." bar) goes to stderr, results to stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kosmos.cli.invocation import CliContext, output_flag, pass_cli
from kosmos.cli.output import table
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import check as checking
from kosmos.ops.netdoctor import config as settings
from kosmos.ops.netdoctor import report
from kosmos.ops.netdoctor.run import Outcome
from kosmos.ops.progress import Progress as Steps

F = TypeVar("F", bound=Callable[..., Any])
#: exit code of a check that ran and found at least one pair that did not succeed
EXIT_FAILED_PAIRS = 3

config_option = click.option(
    "--config",
    "config_path",
    default="config.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The settings (written by `kosmosctl netdoctor init`).",
)


def check_options(command: F) -> F:
    command = output_flag(
        "table", "json", help="Output format: netctl's tables, or every pair as JSON."
    )(command)
    command = click.option(
        "--resume-file",
        default="resume.json",
        show_default=True,
        type=click.Path(dir_okay=False),
        help="Where the pairs that did not succeed are written (and `resume` reads them).",
    )(command)
    return config_option(command)


class CliReporter:
    """Step lines with their elapsed time, and a progress bar while the pairs run."""

    def __init__(self) -> None:
        self.steps = Steps()
        self.bar: Progress | None = None
        self.task: Any = None

    def log(self, message: str) -> None:
        self.steps(message)

    def start(self, total: int) -> None:
        if not sys.stderr.isatty():  # a log file gets one line, not a redrawn bar
            self.log(f"Do check... {total} pairs")
            return
        self.bar = Progress(
            TextColumn("Do check..."),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("check", total=total)
        self.bar.start()

    def advance(self, outcome: Outcome) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def load(config_path: str) -> settings.Config:
    """config.json, or one ``Error:`` line naming what is wrong in it (exit 1)."""
    try:
        return settings.load(config_path)
    except OperationError as exc:
        raise click.ClickException(str(exc)) from exc


def run_check(
    cli_ctx: CliContext,
    config_path: str,
    resume_file: str,
    output: str,
    only: Sequence[tuple[str, str, int]] | None = None,
) -> None:
    """Load the config, check, print, write resume.json, exit 0 or 3."""
    config = load(config_path)
    reporter = CliReporter()
    try:
        result = cli_ctx.run(
            checking.check(config, reporter, default_kubeconfig=cli_ctx.kubeconfig, only=only)
        )
    finally:
        reporter.stop()
    for src, dst, family in result.unmatched:
        reporter.log(f"no pair {src} -> {dst} (IPv{family}) now: not checked again")
    _print(result, output)
    try:
        report.write_resume(resume_file, result.outcomes)
    except OperationError as exc:
        raise click.ClickException(str(exc)) from exc
    failed = sum(not o.ok for o in result.outcomes)
    reporter.log(f"wrote {resume_file} ({failed} of {len(result.outcomes)} pairs did not succeed)")
    if failed:
        click.get_current_context().exit(EXIT_FAILED_PAIRS)


def _print(result: checking.Result, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(report.json_entries(result.outcomes, result.config), indent=2))
        return
    succeeded = report.success_rows(result.outcomes)
    failed = report.failure_rows(result.outcomes)
    if succeeded:
        click.echo(table(report.HEADERS, succeeded))
    if failed:
        click.echo(("\n" if succeeded else "") + table(report.FAILURE_HEADERS, failed))
    if not succeeded and not failed:
        click.echo("no pair to check")


@click.command("check")
@check_options
@pass_cli
def check(cli_ctx: CliContext, config_path: str, resume_file: str, output: str) -> None:
    """Check every floater pair: deploy the floaters, exec each pair's command, report.

    Each floater of the source side runs the protocol's command (tcp: curl, udp: a datagram
    echoed by the floater, icmp: ping, dns: nslookup) against every destination address of
    its family. Successes and failures are printed as two tables; the failures are written
    to --resume-file for `kosmosctl netdoctor resume`.

    Exit codes: 0 every pair SUCCEEDED; 1 an error (bad config.json, a cluster unreachable,
    floaters never ready); 3 the check ran and at least one pair FAILED or hit an EXCEPTION.
    """
    run_check(cli_ctx, config_path, resume_file, output)
