from pathlib import Path

import pytest

from reproscope.runtime.atomic import replacing, write_text


def test_target_appears_whole_and_keeps_its_suffix(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    with replacing(target) as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [target]


def test_a_failed_write_leaves_the_old_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
