"""``kosmosctl migration backup list|verify|extract``: the backups application migration keeps.

Each PromotePolicy backs up its namespaces into Secrets of the host's kosmos-system before it
changes the member; these commands show them, check them and turn one into files that
``kubectl apply -f`` restores by hand. The work is in :mod:`kosmos.ops.migration`.
"""

from __future__ import annotations

from pathlib import Path

import click

from kosmos.cli.invocation import CliContext, output_flag, pass_cli
from kosmos.cli.output import emit
from kosmos.ops import migration
from kosmos.ops.migration import BackupInfo

_BACKUP = click.argument("backup", metavar="BACKUP")
_BACKUP_HELP = "BACKUP is a key from `backup list`, or the PromotePolicy as NAMESPACE/NAME."


@click.group("migration")
def migration_group() -> None:
    """Application migration (PromotePolicy) tools."""


@migration_group.group("backup")
def backup() -> None:
    """The backups migrations keep in the host (Secrets in kosmos-system)."""


def _summary(info: BackupInfo) -> str:
    return (
        f"backup {info.key} (policy {info.policy}, cluster {info.cluster}, namespaces "
        f"{', '.join(info.namespaces)}): {info.items} objects, {info.size} bytes in "
        f"{info.parts} part(s)"
    )


@backup.command("list")
@output_flag("table", "json", "yaml")
@pass_cli
def list_(cli_ctx: CliContext, *, output: str) -> None:
    """List the backups in the host, each read and verified (PROBLEM says why one is not)."""

    async def run() -> list[BackupInfo]:
        return await migration.list_backups(await cli_ctx.client())

    found = cli_ctx.run(run())
    headers = ["key", "policy", "cluster", "items", "size", "parts", "created", "problem"]
    rows = [
        [b.key, b.policy, b.cluster, b.items, b.size, b.parts, b.created, b.problem or "-"]
        for b in found
    ]
    if output == "table" and not found:
        click.echo("No backups found.")
        return
    emit(output, headers, rows, [b.to_dict() for b in found])


@backup.command("verify", epilog=_BACKUP_HELP)
@_BACKUP
@pass_cli
def verify(cli_ctx: CliContext, *, backup: str) -> None:
    """Read a backup and check every sha256 (parts, archive, each object); exit 1 if wrong."""

    async def run() -> BackupInfo:
        return await migration.verify_backup(await cli_ctx.client(), backup)

    click.echo(f"{_summary(cli_ctx.run(run()))}: verified")


@backup.command("extract", epilog=_BACKUP_HELP)
@_BACKUP
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@output_flag("yaml", "json", help="File format.")
@pass_cli
def extract(cli_ctx: CliContext, *, backup: str, directory: Path, output: str) -> None:
    """Write a verified backup into DIRECTORY (new or empty) as files that
    `kubectl apply -f DIRECTORY` restores: numbered in restore order, without the fields the
    apiserver fills in, without the objects a controller makes again."""

    async def run() -> tuple[BackupInfo, list[Path]]:
        return await migration.extract_backup(await cli_ctx.client(), backup, directory, output)

    info, files = cli_ctx.run(run())
    click.echo(f"{_summary(info)}: {len(files)} file(s) written to {directory}")
