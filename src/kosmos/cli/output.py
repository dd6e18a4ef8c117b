"""kubectl-like output: aligned tables with upper-case headers, or json/yaml."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
import yaml

FORMATS = ("table", "wide", "json", "yaml")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def emit(fmt: str, headers: Sequence[str], rows: Sequence[Sequence[object]], data: Any) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        click.echo(table(headers, rows))
