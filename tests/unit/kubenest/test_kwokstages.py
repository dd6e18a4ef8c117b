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


def _sets(root: Path, tag: str) -> None:
    for stage_set in kwokstages.STAGE_SETS:
        (root / stage_set).mkdir(parents=True)
        (root / stage_set / f"{tag}.yaml").write_text(f"kind: Stage\nmetadata: {{name: {tag}}}\n")


def test_the_image_s_copy_comes_before_the_module_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOSMOS_KWOK_STAGES", raising=False)
    _stage(tmp_path / "cache" / "sigs.k8s.io" / "kwok@v0.8.0", "node/fast", "module.yaml")
    image = tmp_path / "image"
    assert b"module" in kwokstages.documents(tmp_path / "cache", image)
    _sets(image, "image")
    text = kwokstages.documents(tmp_path / "cache", image).decode()
    assert text.count("name: image") == 3 and "module" not in text


def test_the_environment_names_the_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sets(tmp_path / "image", "image")
    _sets(tmp_path / "mine", "mine")
    monkeypatch.setenv("KOSMOS_KWOK_STAGES", str(tmp_path / "mine"))
    assert kwokstages.documents(tmp_path, tmp_path / "image").count(b"name: mine") == 3
    monkeypatch.setenv("KOSMOS_KWOK_STAGES", str(tmp_path / "nothing"))
    with pytest.raises(ProviderError, match="nothing holds none of node/fast"):
        kwokstages.documents(tmp_path, tmp_path / "image")
