"""The parse cache: manifests checked before are taken by content, and nothing else is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reproscope.errors import InputErrors
from reproscope.plan import parse_cache
from reproscope.plan.manifest import load_manifest
from reproscope.plan.parse_cache import ParseCache

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "efficientnet-lite0-onnx.yaml"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A copy of a shipped manifest, with the label list it names."""
    shutil.copytree(MANIFEST.parent / "labels", tmp_path / "labels")
    shutil.copy(MANIFEST, tmp_path / MANIFEST.name)
    return tmp_path / MANIFEST.name


def test_a_checked_manifest_is_taken_by_content(tmp_path: Path, path: Path) -> None:
    parsed = ParseCache(tmp_path / "parsed")
    first = load_manifest(path, parsed)
    assert len(list((tmp_path / "parsed").iterdir())) == 1
    # The entry is what is read: a planted change to it shows (the bytes did not change).
    (entry,) = (tmp_path / "parsed").iterdir()
    entry.write_text(entry.read_text().replace(first.name, "from-the-cache"))
    assert load_manifest(path, parsed).data["name"] == "from-the-cache"
    # Edited bytes miss the entry and are parsed and checked again.
    path.write_text(path.read_text() + "\n# edited\n")
    assert load_manifest(path, parsed).data == first.data
    assert len(list((tmp_path / "parsed").iterdir())) == 2


def test_a_refused_manifest_is_never_kept(tmp_path: Path, path: Path) -> None:
    path.write_text(MANIFEST.read_text().replace("framework:", "framwork:", 1))
    parsed = ParseCache(tmp_path / "parsed")
    for _ in range(2):
        with pytest.raises(InputErrors, match="framwork"):
            load_manifest(path, parsed)
    assert not (tmp_path / "parsed").exists()


def test_other_checking_code_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = ParseCache(tmp_path / "parsed")
    load_manifest(MANIFEST, parsed)
    monkeypatch.setattr(parse_cache, "checking_code_sha256", lambda: "other code")
    assert parsed.get(MANIFEST.read_bytes()) is None


def test_an_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    parsed = ParseCache(tmp_path / "parsed")
    load_manifest(MANIFEST, parsed)
    (entry,) = (tmp_path / "parsed").iterdir()
    entry.write_text("[1, 2")
    assert load_manifest(MANIFEST, parsed).name == "efficientnet-lite0-onnx"
