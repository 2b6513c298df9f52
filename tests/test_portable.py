"""Results that move with the project, and stale results that never reach a table:
real Snakemake runs of the tiny study."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import tinystudy
from tests.test_workflow import planned, planned_jobs

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def snakemake(project: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(project / "Snakefile")]
    command += ["-d", str(root), "--configfile", str(root / "config.yaml"), "--cores", "2"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=900)


def copy_project(dest: Path) -> Path:
    """This checkout's files that git tracks or would track, with fresh file times as a
    `git clone` gives them (uncommitted changes included, unlike a clone)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=tinystudy.REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = tinystudy.REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    tinystudy.build(root)
    result = snakemake(tinystudy.REPO, root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def test_moved_project_and_results_have_nothing_to_do(finished: Path, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "elsewhere" / "project")
    root = tmp_path / "elsewhere" / "study"
    shutil.copytree(finished, root, symlinks=True)
    assert (root / ".snakemake").is_dir()
    result = snakemake(project, root, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    # Nothing in a result or job names the directory it was made in.
    results = [*(root / "results" / "inference").rglob("*.json")]
    results += (root / "results" / "timing").rglob("*.json")
    assert any("_bs" in p.name for p in results)  # timing points are among them
    for path in results:
        assert str(finished) not in path.read_text(), path


def copy_without_metadata(finished: Path, root: Path) -> Path:
    shutil.copytree(finished, root, symlinks=True)
    shutil.rmtree(root / ".snakemake")
    return root


def test_edited_preprocessing_without_metadata_is_replanned(finished: Path, tmp_path: Path) -> None:
    root = copy_without_metadata(finished, tmp_path / "study")
    manifest = root / "manifests" / "tiny-onnx.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["inputs"]["resize"]["method"] = "bicubic"
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    result = snakemake(tinystudy.REPO, root, "-n")
    jobs = planned_jobs(result)
    # The group's timing round re-runs whole: its configurations are measured together,
    # paired (both manifests are one model: one comparison group, one round job per round).
    assert jobs["preprocess"] == 1 and jobs["accuracy"] == 1 and jobs["latency_round_local"] == 1
    assert jobs["aggregate"] == 1 and "convert_model" not in jobs
    manifests = {w.get("manifest") for _, w in planned(result)} - {None}
    assert manifests == {"tiny-onnx"}, manifests


def test_stale_result_is_refused_at_aggregation(finished: Path, tmp_path: Path) -> None:
    """A result whose recorded hashes no longer match what it was made from (here the
    environment's identity, its lock's sha256, changed but lock.json kept its file time,
    so nothing is re-planned) never reaches a table."""
    root = copy_without_metadata(finished, tmp_path / "study")
    lock = root / "results" / "envs" / "host" / "lock.json"
    times = lock.stat()
    record = json.loads(lock.read_text())
    record["lock_sha256"] = "0" * 64  # as if built from another lock
    lock.write_text(json.dumps(record))
    os.utime(lock, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert "accuracy" not in planned_jobs(snakemake(tinystudy.REPO, root, "-n"))
    result = snakemake(tinystudy.REPO, root, "--forcerun", "aggregate")
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "inference/local/tiny-onnx/host/cpu/accuracy.json: field 'env_lock_sha256'" in message
    assert "Fix: delete" in message
    log = (root / "results" / "logs" / "aggregate.log").read_text()  # where Snakemake points
    assert "accuracy.json: field 'env_lock_sha256'" in log
    # Snakemake removed the failed job's old tables: none shows the stale results.
    assert not (root / "results" / "summary" / "accuracy.csv").exists()


def test_one_environment_mechanism_per_run(tmp_path: Path) -> None:
    """Without --sdm conda no conda environment is wired: the jobs run the interpreter
    build_env provides (here the host's), named without a path. --sdm conda on a machine
    without conda/mamba stops with a clear error."""
    tinystudy.build(tmp_path)
    result = snakemake(tinystudy.REPO, tmp_path, "-n", "-p")
    assert result.returncode == 0, result.stderr[-3000:]
    commands = [
        line for line in result.stdout.splitlines() if "-m reproscope.runtime.infer" in line
    ]
    assert commands and all(
        'PYTHONPATH="$REPROSCOPE_SRC" "$REPROSCOPE_HOST_PYTHON" -m' in line for line in commands
    ), commands[:2]
    assert str(tinystudy.REPO) not in "\n".join(commands)
    if not (shutil.which("conda") or shutil.which("mamba")):
        result = snakemake(tinystudy.REPO, tmp_path, "-n", "--sdm", "conda")
        assert result.returncode != 0
        message = result.stdout + result.stderr
        assert "needs mamba or conda on PATH" in message and "Fix:" in message
