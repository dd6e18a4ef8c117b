"""``kosmosctl get``: list or show Kosmos objects of the host, as kubectl prints them.

Tables come from the apiserver (``as=Table``): it renders a CRD's printer columns exactly as
``kubectl get`` shows them, so the two never disagree and no column logic lives here.
``--all-clusters`` (the MCS kinds, which live in every cluster of the clusterset) asks each
cluster the same way and prefixes a CLUSTER column; a member that cannot be read is named
on stderr and the others are still shown.
"""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from kosmos.api import crds, names
from kosmos.api.objects import Obj
from kosmos.api.schema import kind_info
from kosmos.cli.invocation import CliContext, output_option, pass_cli
from kosmos.cli.output import table
from kosmos.kube.client import Client
from kosmos.kube.errors import KubeError, NotFound
from kosmos.ops import services
from kosmos.ops.apply import strip


def valid_kinds() -> str:
    """``clusters (cluster, Cluster), ...``: every name ``get`` accepts, for error messages."""
    out = []
    for k in crds.KINDS:
        info = kind_info(k)
        aliases = [info.singular, *info.short_names]
        out.append(f"{info.plural} ({', '.join(aliases)})")
    return ", ".join(out)


@click.command()
@click.argument("kind")
@click.argument("name", required=False)
@output_option
@click.option(
    "-n", "--namespace", default="default", show_default=True, help="Namespace (namespaced kinds)."
)
@click.option(
    "-A", "--all-namespaces", is_flag=True, help="List across all namespaces (namespaced kinds)."
)
@click.option(
    "--all-clusters",
    is_flag=True,
    help="Ask the host and every member (serviceexports, serviceimports); adds a CLUSTER column.",
)
@pass_cli
def get(
    cli_ctx: CliContext,
    *,
    kind: str,
    name: str | None,
    output: str,
    namespace: str,
    all_namespaces: bool,
    all_clusters: bool,
) -> None:
    """Show Kosmos objects of the host, as kubectl prints them.

    KIND is a kind, plural, singular or short name (clusters, cluster, ...).

    Tables are rendered by the apiserver, exactly as kubectl shows them; -o wide adds the
    lower-priority columns, -o json/yaml prints the objects.
    """
    try:
        model = crds.kind_by_name(kind)
    except KeyError:
        raise click.ClickException(f"unknown kind {kind!r}; valid kinds: {valid_kinds()}") from None
    if name and all_namespaces:
        raise click.UsageError("a resource cannot be retrieved by name across all namespaces")
    resource = kind_info(model).resource
    ns = namespace if resource.namespaced and not all_namespaces else None
    if all_clusters:
        if kind_info(model).group != names.MCS_GROUP:
            raise click.UsageError("--all-clusters: only serviceexports and serviceimports")
        _get_all_clusters(cli_ctx, model, name, ns, output)
        return
    if output in ("json", "yaml"):
        data = cli_ctx.run(_objects(cli_ctx, model, name, ns))
        if output == "json":
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return
    result = cli_ctx.run(_table(cli_ctx, model, name, ns))
    show_namespace = resource.namespaced and ns is None
    headers, rows = render_table(result, wide=output == "wide", show_namespace=show_namespace)
    if not rows:
        where = f" in {ns} namespace" if resource.namespaced and ns else ""
        click.echo(f"No resources found{where}.", err=True)
        return
    click.echo(table(headers, rows))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_table(
    result: Obj, *, wide: bool, show_namespace: bool
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a meta.k8s.io Table as kubectl prints them.

    kubectl hides priority>0 columns unless -o wide, and prefixes NAMESPACE when listing
    across namespaces (from each row's object metadata, which the server includes).
    """
    columns = result.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(columns) if wide or not c.get("priority")]
    headers = [columns[i]["name"] for i in keep]
    rows = []
    for row in result.get("rows") or []:
        cells = row.get("cells") or []
        out = [_cell(cells[i]) if i < len(cells) else "" for i in keep]
        if show_namespace:
            meta = (row.get("object") or {}).get("metadata") or {}
            out.insert(0, str(meta.get("namespace", "")))
        rows.append(out)
    if show_namespace:
        headers.insert(0, "namespace")
    return headers, rows


async def _table(cli_ctx: CliContext, model: type[Any], name: str | None, ns: str | None) -> Obj:
    client = await cli_ctx.client()
    resource = kind_info(model).resource
    try:
        return await client.table(resource, ns, name)
    except NotFound as exc:
        raise _not_found(client, model, name, exc) from exc


async def _objects(cli_ctx: CliContext, model: type[Any], name: str | None, ns: str | None) -> Obj:
    client = await cli_ctx.client()
    resource = kind_info(model).resource
    try:
        if name:
            return strip(await client.get(resource, name, ns))
        items = (await client.list(resource, ns)).items
    except NotFound as exc:
        raise _not_found(client, model, name, exc) from exc
    return {"apiVersion": "v1", "kind": "List", "items": [strip(i) for i in items]}


def _not_found(client: Client, model: type[Any], name: str | None, exc: NotFound) -> Exception:
    """A missing object is the apiserver's message; a missing kind means no CRD installed."""
    info = kind_info(model)
    if name and exc.reason == "NotFound" and exc.details.get("name") == name:
        return exc
    return click.ClickException(
        f"cluster {client.cluster}: {info.plural}.{info.group} is not served: "
        "the Kosmos CRDs are not installed (run kosmosctl install)"
    )


def _get_all_clusters(
    cli_ctx: CliContext, model: type[Any], name: str | None, ns: str | None, output: str
) -> None:
    """Every cluster's table (or objects) with the cluster's name in front."""
    found = cli_ctx.run(
        _each_cluster(cli_ctx, model, name, ns, structured=output in ("json", "yaml"))
    )
    if output in ("json", "yaml"):
        items = []
        for cluster, result in found:
            for item in result.get("items") or []:
                # ObjectMeta's retired clusterName field: says where each object was read
                item["metadata"]["clusterName"] = cluster
                items.append(item)
        data = {"apiVersion": "v1", "kind": "List", "items": items}
        click.echo(
            json.dumps(data, indent=2)
            if output == "json"
            else yaml.safe_dump(data, sort_keys=False),
            nl=output == "json",
        )
        return
    headers: list[str] = []
    rows: list[list[str]] = []
    for cluster, result in found:
        heads, cluster_rows = render_table(result, wide=output == "wide", show_namespace=ns is None)
        headers = headers or ["cluster", *heads]
        rows.extend([cluster, *row] for row in cluster_rows)
    if not rows:
        where = f" in {ns} namespace" if ns else ""
        click.echo(f"No resources found{where} in any cluster.", err=True)
        return
    click.echo(table(headers, rows))


async def _each_cluster(
    cli_ctx: CliContext, model: type[Any], name: str | None, ns: str | None, *, structured: bool
) -> list[tuple[str, Obj]]:
    resource = kind_info(model).resource
    out = []
    async with services.clusterset(await cli_ctx.client()) as members:
        for member in members:
            if member.client is None:
                click.echo(f"cluster {member.name}: skipped, {member.problem}", err=True)
                continue
            try:
                if structured:
                    if name:
                        objs = [await member.client.get(resource, name, ns)]
                    else:
                        objs = (await member.client.list(resource, ns)).items
                    out.append((member.name, {"items": [strip(o) for o in objs]}))
                else:
                    out.append((member.name, await member.client.table(resource, ns, name)))
            except NotFound as exc:
                if not (name and exc.details.get("name") == name):
                    click.echo(f"cluster {member.name}: {resource.plural} not served", err=True)
            except KubeError as exc:
                click.echo(f"cluster {member.name}: skipped, {exc}", err=True)
    return out
