"""``kosmosctl version``: this client's version, the host apiserver's, and what is installed.

The client version is always printed and the exit code is 0 even when the host cannot be
reached: "which version am I running" must be answerable without a cluster.
"""

from __future__ import annotations

import json

import click
import yaml

from kosmos.api import names
from kosmos.api.objects import Obj
from kosmos.api.resources import DEPLOYMENTS
from kosmos.cli.invocation import CliContext, pass_cli
from kosmos.cli.output import table
from kosmos.kube.errors import KubeError
from kosmos.ops import manifests


@click.command()
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="Print as JSON or YAML.")
@click.option(
    "-n",
    "--namespace",
    default=names.SYSTEM_NAMESPACE,
    show_default=True,
    help="Namespace of the Kosmos components.",
)
@pass_cli
def version(cli_ctx: CliContext, output: str | None, namespace: str) -> None:
    """Print the client, host apiserver and installed Kosmos versions."""
    data: Obj = {"clientVersion": {"gitVersion": manifests.default_version()}}
    error = ""
    try:
        data.update(cli_ctx.run(_server(cli_ctx, namespace)))
    except click.ClickException as exc:  # CliContext.run maps KubeError to this
        error = exc.message
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        click.echo(f"Client Version: {data['clientVersion']['gitVersion']}")
        if "serverVersion" in data:
            click.echo(f"Server Version: {data['serverVersion'].get('gitVersion', '?')}")
            components = data["kosmos"]["components"]
            if components:
                rows = [[c["name"], c["version"], c["image"]] for c in components]
                click.echo(table(["component", "version", "image"], rows))
            else:
                click.echo(f"Kosmos: not installed in namespace {namespace}")
    if error:
        click.echo(f"Server Version: unavailable: {error}", err=True)


def image_tag(image: str) -> str:
    """The tag (or digest) of an image reference; ``latest`` when it names neither."""
    if "@" in image:
        return image.partition("@")[2]
    last = image.rpartition("/")[2]
    return last.rpartition(":")[2] if ":" in last else "latest"


def kosmos_image(deployment: Obj) -> str:
    """The image of the container running ``kosmos`` (kosmos-scheduler's pod also runs the
    upstream kube-scheduler image, kosmos-coredns's our CoreDNS image: their tags are not a
    Kosmos version)."""
    spec = deployment["spec"]["template"]["spec"]
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    for container in containers:
        image = str(container.get("image", ""))
        named = image.rsplit("/", 1)[-1].split(":", 1)[0] == "kosmos"
        if named or (container.get("command") or [""])[0] == "kosmos":
            return image
    return str(containers[0].get("image", "")) if containers else ""


async def _server(cli_ctx: CliContext, namespace: str) -> Obj:
    client = await cli_ctx.client()
    server = await client.get_raw("/version")
    try:
        found = await client.list(
            DEPLOYMENTS,
            namespace,
            label_selector=f"app.kubernetes.io/part-of={manifests.PART_OF}",
        )
        deployments = found.items
    except KubeError:  # e.g. no permission to list Deployments: the server version still helps
        deployments = []
    components = []
    for deployment in deployments:
        image = kosmos_image(deployment)
        components.append(
            {"name": deployment["metadata"]["name"], "version": image_tag(image), "image": image}
        )
    return {
        "serverVersion": server,
        "kosmos": {"namespace": namespace, "components": components},
    }
