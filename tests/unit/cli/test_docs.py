from pathlib import Path

from kosmos.cli import docs
from kosmos.cli.main import cli

DOCS = Path(__file__).parents[3] / "docs" / "cli.md"


def test_committed_cli_reference_is_what_the_command_tree_generates():
    assert DOCS.exists() and DOCS.read_text() == docs.render(), (
        "docs/cli.md is stale (regenerate: python -m kosmos.cli.docs)"
    )


def test_reference_covers_every_command_with_usage_and_options():
    text = docs.render()
    for command, ctx in docs.walk(cli, "kosmosctl"):
        assert f"## `{ctx.command_path}`" in text
        assert ctx.get_usage() in text
        del command
    assert "| `--image-repository, --private-image-registry TEXT` |" in text
    assert "{table\\|wide\\|json\\|yaml}" in text or "[table\\|wide\\|json\\|yaml]" in text
