"""The documentation site builds with no warning, and every link a reader can follow resolves.

``mkdocs build --strict`` with the ``validation:`` of mkdocs.yml turns every relative link to
a missing page, every missing anchor and every page left out of the nav into an error. What
mkdocs does not see is checked here: README.md (outside docs/) links into docs/ by file and
anchor; each tutorial names in its front matter the tests that run its steps, and they exist;
the external links, which cannot be fetched offline, are all listed on docs/site.md; every
``kosmosctl`` line of the shell examples names commands and flags the CLI has.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from kosmos.cli.main import cli
from tests.support import require

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
TUTORIALS = DOCS / "tutorials"
#: Tutorials whose steps no e2e test replays yet: named tests of other tiers back them. A page
#: leaves this set when an e2e test of its steps exists (the test below insists).
WITHOUT_E2E: frozenset[str] = frozenset()

LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = re.compile(r"\]\((https?://[^)\s]+)\)|<(https?://[^>\s]+)>")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
SHELL_BLOCK = re.compile(r"^```(?:shell|sh|bash)\n(.*?)^```", re.S | re.M)


def _mkdocs() -> None:
    require(
        importlib.util.find_spec("mkdocs") is not None
        and importlib.util.find_spec("material") is not None,
        "mkdocs and mkdocs-material (pip install -e '.[dev]'; scripts/bootstrap does)",
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _mkdocs()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, log
    return out


def test_site_builds_strict_with_every_page(site: Path) -> None:
    for page in DOCS.rglob("*.md"):
        built = _page_html(site, page)
        assert built.exists(), f"{page.relative_to(ROOT)} was not built ({built})"


def _page_html(site: Path, target: Path) -> Path:
    rel = target.relative_to(DOCS).with_suffix("")
    return site / (rel.parent if rel.name == "index" else rel) / "index.html"


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a ``](x)`` in a shell example is no link)."""
    return FENCE.sub("", text)


def test_readme_links_into_docs_resolve_to_files_and_anchors(site: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    checked = 0
    for target in LINK.findall(_prose(readme)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / path).resolve()
        assert file.exists(), f"README.md links to {target}: no such file"
        if anchor:
            assert file.is_relative_to(DOCS) and file.suffix == ".md", target
            html = _page_html(site, file).read_text()
            assert f'id="{anchor}"' in html, f"README.md links to {target}: no such anchor"
        checked += 1
    assert checked >= 10  # the README's map of docs/ pages


def _front_matter(page: Path) -> dict[str, object]:
    text = page.read_text()
    assert text.startswith("---\n"), f"{page.name}: no front matter (tested_by)"
    head, _, _ = text[4:].partition("\n---\n")
    data = yaml.safe_load(head)
    assert isinstance(data, dict), page.name
    return data


def _defines(path: Path, qualname: str) -> bool:
    """``path`` defines the test ``qualname`` (``test_x`` or ``TestClass::test_x``)."""
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    *classes, func = qualname.split("::")
    for name in classes:
        found = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == name]
        if not found:
            return False
        scope = found[0].body
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == func for n in scope
    )


def _tutorials() -> list[Path]:
    return sorted(p for p in TUTORIALS.glob("*.md") if p.name != "index.md")


def test_every_tutorial_names_tests_that_exist() -> None:
    assert len(_tutorials()) >= 10
    for page in _tutorials():
        tests = _front_matter(page).get("tested_by")
        assert isinstance(tests, list) and tests, f"{page.name}: tested_by lists no test"
        for test in tests:
            file, sep, qualname = str(test).partition("::")
            assert sep and (ROOT / file).is_file(), f"{page.name}: {test}: no such file"
            assert _defines(ROOT / file, qualname), f"{page.name}: {test}: no such test"


def test_tutorials_are_backed_by_e2e_tests_except_the_listed_ones() -> None:
    for page in _tutorials():
        named = _front_matter(page).get("tested_by")
        tests = [str(t) for t in named] if isinstance(named, list) else []
        e2e = [t for t in tests if t.startswith("tests/e2e/")]
        if page.name in WITHOUT_E2E:
            assert not e2e, f"{page.name} has an e2e test now: take it out of WITHOUT_E2E"
        else:
            assert e2e, f"{page.name}: no e2e test among {tests}"


def test_the_tutorials_index_links_every_tutorial() -> None:
    index = (TUTORIALS / "index.md").read_text()
    for page in _tutorials():
        assert f"]({page.name})" in index, f"tutorials/index.md does not link {page.name}"


def test_every_external_link_is_listed_on_the_site_page() -> None:
    listed = (DOCS / "site.md").read_text()
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for groups in EXTERNAL.findall(_prose(page.read_text())):
            url = next(g for g in groups if g)
            assert url in listed, f"{page.relative_to(ROOT)}: {url} is not listed in docs/site.md"


def _kosmosctl_lines(text: str) -> list[list[str]]:
    """Each ``kosmosctl ...`` (or ``netctl ...``) command of the page's shell blocks, as argv
    after the program, up to a shell operator or comment."""
    found = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for match in re.finditer(
                r'(?:^|[\s;&|(])(?:\S*/)?(kosmosctl|netctl)\s+([^#;&|)"]*)', line
            ):
                program, rest = match.groups()
                words = [w for w in rest.split() if not w.startswith(("<", "$", "'"))]
                found.append(["netdoctor", *words] if program == "netctl" else words)
    return found


def _check_argv(argv: list[str]) -> None:
    """Every subcommand exists, and every ``--flag`` is one the command (or a parent) has."""
    command: click.Command = cli
    options = {o: p for p in cli.params for o in p.opts + p.secondary_opts}
    words = iter(argv)
    for word in words:
        if word.startswith("-"):
            name, _, value = word.partition("=")
            option = options.get(name)
            assert option is not None, f"kosmosctl {' '.join(argv)}: no option {name}"
            takes_value = isinstance(option, click.Option) and not (option.is_flag or option.count)
            if takes_value and not value:
                next(words, None)
        elif isinstance(command, click.Group):
            sub = command.commands.get(word)
            assert sub is not None, f"kosmosctl {' '.join(argv)}: no command {word!r}"
            command = sub
            options |= {o: p for p in command.params for o in p.opts + p.secondary_opts}


def test_kosmosctl_commands_in_the_docs_use_existing_commands_and_flags() -> None:
    """The shell examples of README.md and docs/ (``kosmosctl``, ``netctl``) name commands and
    flags the CLI has: a renamed flag fails here, not in a user's terminal."""
    checked = 0
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for argv in _kosmosctl_lines(page.read_text()):
            _check_argv(argv)
            checked += 1
    assert checked >= 60
