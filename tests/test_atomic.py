import os
import subprocess
import sys
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


def test_a_full_disk_leaves_no_partial_file_and_says_so(tmp_path: Path) -> None:
    """Under a file-size limit (a full disk's stand-in) the write fails with NoRoom naming
    the target, and neither the target nor a temporary is left."""
    script = (
        "import resource, sys\n"
        "from reproscope.runtime.atomic import NoRoom, write_text\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "try:\n"
        "    write_text(sys.argv[1], 'x' * 5000)\n"
        "except NoRoom as exc:\n"
        "    print(exc)\n"
    )
    target = tmp_path / "runs.csv"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert f"{target}: not written: File too large" in done.stdout and "Fix:" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    (tmp_path / f".tmp-{dead}-runs.csv").write_text("half")
    alive = tmp_path / f".tmp-{os.getppid()}-runs.csv"
    alive.write_text("another writer's")
    write_text(target, "whole")
    assert sorted(tmp_path.iterdir()) == sorted([target, alive])
