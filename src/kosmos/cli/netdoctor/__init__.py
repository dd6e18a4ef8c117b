"""``kosmosctl netdoctor`` (also installed as ``netctl``): init, check, resume, clean, analyze.

The work is in :mod:`kosmos.ops.netdoctor`; each verb is one module here.
"""

from __future__ import annotations

import os

import click

from kosmos.cli.invocation import CliContext


@click.group("netdoctor")
def netdoctor() -> None:
    """Check pod and node connectivity within and across clusters (floater pods)."""


def main() -> None:
    """``netctl``: the same commands, without the kosmosctl prefix (kubeconfig: $KUBECONFIG)."""
    netdoctor(prog_name="netctl", obj=CliContext(kubeconfig=os.environ.get("KUBECONFIG") or None))


# Each verb's module defines its command; the group adds them here, after ``netdoctor`` exists.
from kosmos.cli.netdoctor import analyze  # noqa: E402
from kosmos.cli.netdoctor.check import check  # noqa: E402
from kosmos.cli.netdoctor.clean import clean  # noqa: E402
from kosmos.cli.netdoctor.init import init  # noqa: E402
from kosmos.cli.netdoctor.resume import resume  # noqa: E402

for _command in (init, check, resume, clean, analyze.analyze):
    netdoctor.add_command(_command)
