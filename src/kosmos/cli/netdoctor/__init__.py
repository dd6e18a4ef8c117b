"""``kosmosctl netdoctor`` (also installed as ``netctl``): init, check, resume, clean, analyze.

The work is in :mod:`kosmos.ops.netdoctor`; each verb is one module here.
"""

from __future__ import annotations

import click

from kosmos.cli.invocation import CliContext


@click.group("netdoctor")
def netdoctor() -> None:
    """Check pod and node connectivity within and across clusters (floater pods)."""


def main() -> None:
    """``netctl``: the same commands, without the kosmosctl prefix."""
    netdoctor(prog_name="netctl", obj=CliContext())


from kosmos.cli.netdoctor import analyze  # noqa: E402 (the group exists first)

netdoctor.add_command(analyze.analyze)
