"""One kosmosctl invocation: its global flags, how it reaches the host, how its errors end.

Errors from the apiserver boundary and refusals of an operation become one clear line and
exit code 1 (click's ClickException), never a traceback; ``-v`` adds the cause chain for
debugging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from kosmos.kube.errors import KubeError
from kosmos.ops.errors import OperationError
from kosmos.ops.host import Host

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("kosmos.cli")


@dataclass
class CliContext(Host):
    """The host from --kubeconfig/--context (or $KUBECONFIG), and the -v level."""

    verbose: int = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a command's coroutine; map Kosmos errors to one line and exit code 1."""
        try:
            return super().run(coro)
        except KubeError as exc:
            if self.verbose:
                log.exception("command failed")
            raise click.ClickException(str(exc)) from exc
        except OperationError as exc:  # a refusal: its message is the whole story
            raise click.ClickException(str(exc)) from exc


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def output_flag(*formats: str, help: str = "Output format.") -> Callable[[F], F]:
    """``-o/--output`` choosing one of ``formats``, the first by default (as kubectl's -o)."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(list(formats)),
        default=formats[0],
        show_default=True,
        help=help,
    )


output_option = output_flag("table", "wide", "json", "yaml")
