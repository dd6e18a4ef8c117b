"""The operator command: its flags become Settings, and its build wires what the build holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from kosmos.kubenest import app
from kosmos.kubenest.settings import Settings, parse_port_range
from kosmos.launcher import COMPONENTS, cli


def test_the_launcher_knows_the_operator() -> None:
    assert COMPONENTS["virtual-cluster-operator"] == "kosmos.kubenest.app:command"


def test_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(app.component, "main", lambda *args, **_: args[2].close())
    monkeypatch.setattr(app, "builder", seen.append)
    args = ["virtual-cluster-operator", "--state-dir", "~/vc", "--port-range", "21000-21009"]
    args += ["--advertise-address", "192.0.2.7"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen == [
        Settings(
            provider="local",
            state_dir=Path("~/vc").expanduser(),
            binaries_dir=Path("~/.cache/kosmos/bin").expanduser(),
            port_range=(21000, 21009),
            advertise_address="192.0.2.7",
        )
    ]


def test_in_cluster_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(app.component, "main", lambda *args, **_: args[2].close())
    monkeypatch.setattr(app, "builder", seen.append)
    args = ["virtual-cluster-operator", "--provider", "in-cluster", "--image-repository", "r.io"]
    args += ["--control-plane-node-selector", "a=b", "--control-plane-node-selector", "c="]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen[0].provider == "in-cluster"
    assert seen[0].node_selector == (("a", "b"), ("c", ""))
    assert seen[0].image_repository == "r.io"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--port-range", "20000", "is not LOW-HIGH"),
        ("--port-range", "9-3", "1 <= LOW <= HIGH <= 65535"),
        ("--advertise-address", "example.com", "is not an IP address"),
        ("--provider", "incluster", "'incluster' is not one of 'local', 'in-cluster'"),
        ("--control-plane-node-selector", "role", "'role' is not KEY=VALUE"),
    ],
)
def test_bad_flags_are_refused_with_the_cause(flag: str, value: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["virtual-cluster-operator", flag, value])
    assert result.exit_code == click.UsageError.exit_code
    assert message in result.output


def test_port_range_parses() -> None:
    assert parse_port_range(" 20000-20999 ") == (20000, 20999)
    assert parse_port_range("7-7") == (7, 7)


SETTINGS = Settings("local", Path("/s"), Path("/b"), (1, 2), "127.0.0.1")


def test_build_hands_the_settings_to_the_controllers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(app.controllers, "build", lambda *args: calls.append(args))
    monkeypatch.setattr(app.globalnodes, "build", lambda runtime: calls.append(("pool",)))
    app.builder(SETTINGS)("runtime")  # type: ignore[arg-type]
    assert calls == [("pool",), ("runtime", SETTINGS)]
