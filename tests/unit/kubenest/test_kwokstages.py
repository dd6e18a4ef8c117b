from __future__ import annotations

from pathlib import Path

import pytest

from kosmos.kubenest import kwokstages
from kosmos.kubenest.provider import ProviderError


def _stage(module: Path, stage_set: str, name: str) -> None:
    directory = module / "kustomize" / "stage" / stage_set
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(f"kind: Stage\nmetadata: {{name: {name}}}\n")
    (directory / "kustomization.yaml").write_text("resources: []\n")


def test_the_newest_module_s_stage_sets_in_order(tmp_path: Path) -> None:
    for version in ("v0.9.0", "v0.10.1"):
        module = tmp_path / "sigs.k8s.io" / f"kwok@{version}"
        for stage_set in kwokstages.STAGE_SETS:
            _stage(module, stage_set, f"{version}-{stage_set.replace('/', '-')}.yaml")
    _stage(tmp_path / "sigs.k8s.io" / "kwok@v0.10.1", "pod/chaos", "not-this.yaml")
    text = kwokstages.documents(tmp_path).decode()
    assert "v0.9.0" not in text and "not-this" not in text and "resources" not in text
    assert text.count("kind: Stage") == 3
    assert text.index("node-fast") < text.index("heartbeat") < text.index("pod-general")


def test_no_kwok_module_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="kwok's stage files are not under"):
        kwokstages.documents(tmp_path)
