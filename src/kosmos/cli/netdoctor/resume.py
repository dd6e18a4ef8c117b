"""``kosmosctl netdoctor resume``: check again only the pairs resume.json lists."""

from __future__ import annotations

import click

from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.cli.netdoctor.check import check_options, run_check
from kosmos.ops.errors import OperationError
from kosmos.ops.netdoctor import report


@click.command("resume")
@check_options
@pass_cli
def resume(cli_ctx: CliContext, config_path: str, resume_file: str, output: str) -> None:
    """Re-check the pairs that did not succeed last time (read from --resume-file).

    A pair is matched by its source node, destination node and address family, with the
    floaters' current addresses; --resume-file is rewritten with what still fails. On a big
    cluster, repeat until it is empty, then run a full `check`.

    Exit codes as `check`'s: 0 every pair SUCCEEDED (or none to resume); 1 an error; 3 at
    least one pair still does not succeed.
    """
    try:
        only = report.read_resume(resume_file)
    except OperationError as exc:
        raise click.ClickException(str(exc)) from exc
    if not only:
        click.echo(f"{resume_file} lists no failed pair: nothing to resume", err=True)
        return
    run_check(cli_ctx, config_path, resume_file, output, only=only)
