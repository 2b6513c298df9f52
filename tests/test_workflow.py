"""End-to-end: real Snakemake runs of a tiny study in a temporary directory."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import tinystudy

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SNAKEFILE = tinystudy.REPO / "Snakefile"


def snakemake_command(root: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "-d",
        str(root),
        "--configfile",
        str(root / "config.yaml"),
        "--cores",
        "2",
        *args,
    ]


def snakemake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        snakemake_command(root, *args), capture_output=True, text=True, timeout=900
    )


def dry_run_edited(
    root: Path, path: Path, edit: Callable[[dict], None]
) -> subprocess.CompletedProcess[str]:
    """A dry run with the YAML file at path edited in place, restored afterwards."""
    original = path.read_text()
    data = yaml.safe_load(original)
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        return snakemake(root, "-n")
    finally:
        path.write_text(original)


def planned(result: subprocess.CompletedProcess[str]) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job of a dry run: the job blocks lie between the first
    and the last 'Job stats:' table."""
    assert result.returncode == 0, result.stderr[-3000:]
    found = []
    for block in result.stdout.rsplit("Job stats:", 1)[0].split("\nrule ")[1:]:
        rule = block.split(":", 1)[0].strip()
        line = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        pairs = line.group(1).split(", ") if line else []
        found.append((rule, dict(p.split("=", 1) for p in pairs)))
    return found


def planned_jobs(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Job counts by rule from a dry run's 'Job stats' table."""
    table = result.stdout.split("Job stats:")[-1]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
        if m.group(1) != "total"
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    tinystudy.build(root)
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def test_study_produces_tables_and_plots(study: Path) -> None:
    summary = study / "results" / "summary"
    accuracy = pd.read_csv(summary / "accuracy.csv")
    assert set(accuracy["framework"]) == {"pytorch", "onnxruntime"}
    assert (accuracy["status"] == "ok").all()
    # Prototypes classify every colour image; the 4 grayscale images (of 24) lose colour.
    assert (accuracy["top1"] >= round(100.0 * 20 / 24, 4)).all()  # CSVs keep 4 decimals
    assert accuracy["top1"].nunique() == 1
    assert (accuracy["n_images"] == 24).all()
    runs = pd.read_csv(summary / "runs.csv")
    assert sorted(runs["batch_size"].unique()) == [1, 4]
    assert (runs["status"] == "ok").all()
    assert (runs["n_iterations"] >= 3).all()
    assert (runs["latency_ms_p50"] > 0).all() and runs["env_lock_sha256"].notna().all()
    agreement = pd.read_csv(summary / "agreement.csv")
    assert agreement["top1_agreement"].iloc[0] == 100.0
    assert agreement["max_abs_logit_diff"].iloc[0] < 1e-4
    for plot in ("latency_throughput.png", "accuracy_vs_claim.png"):
        assert (study / "results" / "plots" / plot).stat().st_size > 1000


def test_second_run_has_nothing_to_do(study: Path) -> None:
    result = snakemake(study, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_claim_edit_reruns_no_inference(study: Path) -> None:
    path = study / "manifests" / "tiny-pytorch.yaml"
    jobs = planned_jobs(dry_run_edited(study, path, lambda d: d["claims"].update(top1=99.0)))
    assert "aggregate" in jobs
    assert not {"accuracy", "latency_round_local", "preprocess", "convert_model"} & set(jobs)


def test_preprocessing_edit_reruns_only_that_model(study: Path) -> None:
    path = study / "manifests" / "tiny-onnx.yaml"
    result = dry_run_edited(study, path, lambda d: d["inputs"]["resize"].update(method="bicubic"))
    jobs = planned_jobs(result)
    # The group's timing round re-runs whole: its configurations are measured together,
    # paired (both manifests are one model: one comparison group, one round job per round).
    assert jobs["preprocess"] == 1 and jobs["accuracy"] == 1 and jobs["latency_round_local"] == 1
    manifests = {w.get("manifest") for _, w in planned(result)} - {None}
    assert manifests == {"tiny-onnx"}, manifests
    assert "convert_model" not in jobs


def test_report_is_generated(study: Path) -> None:
    report = study / "report.html"
    result = snakemake(study, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    assert report.stat().st_size > 10_000


def test_bad_manifest_stops_before_any_job(study: Path) -> None:
    path = study / "manifests" / "tiny-pytorch.yaml"
    result = dry_run_edited(study, path, lambda d: d["inputs"].update(color_order="RGBA"))
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "tiny-pytorch.yaml" in message and "inputs.color_order" in message
    assert "Fix:" in message
