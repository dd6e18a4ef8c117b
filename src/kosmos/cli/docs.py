"""Generate the kosmosctl reference (docs/cli.md) from the live click command tree.

Generated, not written by hand, so the reference cannot drift from the flags that exist: a
unit test fails when the committed file differs from what this renders. Regenerate with
``python -m kosmos.cli.docs [PATH]`` (default ``docs/cli.md``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from kosmos.cli.main import cli

HEADER = (
    "# kosmosctl reference\n\n"
    "<!-- Generated from the command tree by `python -m kosmos.cli.docs`; do not edit. -->\n"
)


def walk(
    command: click.Command, name: str, parent: click.Context | None = None
) -> Iterator[tuple[click.Command, click.Context]]:
    """Every visible command with its context, depth first, subcommands sorted by name."""
    ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
    yield command, ctx
    if isinstance(command, click.Group):
        for sub_name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, sub_name, ctx)


def _escape(text: str) -> str:
    """Markdown-escape what help texts contain: ``*`` (globs), ``<placeholders>``."""
    for char in "\\*<>":
        text = text.replace(char, "\\" + char)
    return text


def _cell(text: str) -> str:
    return _escape(" ".join(text.split())).replace("|", "\\|")


def _code(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help(command: click.Command) -> str:
    text = (command.help or "").split("\f")[0]
    # click's "\b" marks a paragraph that must not be rewrapped: keep it verbatim as code.
    paragraphs = []
    for para in inspect.cleandoc(text).split("\n\n") if text else []:
        if para.startswith("\b\n"):
            paragraphs.append("```\n" + para[2:] + "\n```")
        else:
            paragraphs.append(_escape(" ".join(para.split())))
    return "\n\n".join(paragraphs)


def render_command(command: click.Command, ctx: click.Context) -> str:
    path = ctx.command_path
    parts = [f"## `{path}`", "", "```", ctx.get_usage(), "```", ""]
    if text := _help(command):
        parts += [text, ""]
    records = [
        record
        for param in command.get_params(ctx)
        if isinstance(param, click.Option) and (record := param.get_help_record(ctx))
    ]
    if records:
        parts += ["| Option | Description |", "|---|---|"]
        # In a code span only the table's pipe needs escaping (GFM unescapes it first).
        parts += [f"| `{_code(opts)}` | {_cell(desc)} |" for opts, desc in records]
        parts.append("")
    if isinstance(command, click.Group):
        subs = [
            (n, c)
            for n in sorted(command.list_commands(ctx))
            if (c := command.get_command(ctx, n)) is not None and not c.hidden
        ]
        parts += ["Commands:", ""]
        parts += [f"- `{path} {n}`: {_cell(c.get_short_help_str(limit=120))}" for n, c in subs]
        parts.append("")
    return "\n".join(parts)


def render(root: click.Command = cli, name: str = "kosmosctl") -> str:
    sections = [render_command(c, ctx) for c, ctx in walk(root, name)]
    return HEADER + "\n" + "\n".join(sections)


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else Path("docs/cli.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    click.echo(path)


if __name__ == "__main__":
    main(sys.argv[1:])
