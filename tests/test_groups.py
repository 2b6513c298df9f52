"""Timing rounds per comparison group (issue 24): a real Snakemake run of a tiny study of two
models, then dry runs after adding a model and after editing one manifest's tensors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import tinystudy
from tests.test_workflow import planned, planned_jobs, snakemake

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPEATS = 2
#: What aggregation re-plans after any timing or accuracy result changes.
AGGREGATION = {"aggregate", "plot", "plot_comparisons", "system_ranking", "all"}


def add_model(root: Path, name: str) -> None:
    """A manifest of another model (the tiny weights under another model name)."""
    labels = root / "manifests" / "colours.txt"
    data = tinystudy.manifest(name, labels, root / "artifacts" / "tiny.pt", "pytorch")
    data["model"] = name
    (root / "manifests" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def list_models(root: Path, models: list[str]) -> None:
    path = root / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["study"]["models"] = models
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-pytorch and tiny-onnx (model tiny-colour) and tiny-solo (its own model), run."""
    root = tmp_path_factory.mktemp("groups")
    tinystudy.build(root, batch_sizes=(1,), repeats=REPEATS)
    add_model(root, "tiny-solo")
    list_models(root, ["tiny-pytorch", "tiny-onnx", "tiny-solo"])
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def dry_run_with(root: Path, change) -> subprocess.CompletedProcess[str]:
    """A dry run after change(root), with the manifests and config restored afterwards."""
    saved = {p: p.read_text() for p in [root / "config.yaml", *root.glob("manifests/*.yaml")]}
    try:
        change(root)
        return snakemake(root, "-n")
    finally:
        for path in set(root.glob("manifests/*.yaml")) - set(saved):
            path.unlink()
        for path, text in saved.items():
            path.write_text(text)


def test_rounds_run_per_group_and_name_it(study: Path) -> None:
    for group in ("tiny-colour", "tiny-solo"):
        for r in range(REPEATS):
            assert (study / "results" / "timing" / "local" / group / f"r{r}").is_dir()
    runs = pd.read_csv(study / "results" / "summary" / "runs.csv")
    assert set(zip(runs["manifest"], runs["group"], strict=True)) == {
        ("tiny-pytorch", "tiny-colour"),
        ("tiny-onnx", "tiny-colour"),
        ("tiny-solo", "tiny-solo"),
    }
    comparisons = pd.read_csv(study / "results" / "summary" / "comparisons.csv")
    framework = comparisons[comparisons["kind"] == "framework"]
    assert len(framework) and (framework["pairing"] == "paired").all()
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(study, "-n"))


def test_adding_a_model_plans_only_its_own_jobs(study: Path) -> None:
    def change(root: Path) -> None:
        add_model(root, "tiny-new")
        list_models(root, ["tiny-pytorch", "tiny-onnx", "tiny-solo", "tiny-new"])

    jobs = planned(dry_run_with(study, change))
    rounds = sorted((w["group"], w["repeat"]) for rule, w in jobs if rule.startswith("latency_"))
    assert rounds == [("tiny-new", str(r)) for r in range(REPEATS)]
    assert [w["manifest"] for rule, w in jobs if rule == "accuracy"] == ["tiny-new"]
    assert [w["manifest"] for rule, w in jobs if rule == "fetch_model"] == ["tiny-new"]
    rules = [rule for rule, _ in jobs]
    assert set(rules) == {"fetch_model", "accuracy", "latency_round_local", *AGGREGATION}
    assert all(rules.count(rule) == 1 for rule in AGGREGATION)  # the same pixels: no preprocess


def test_a_tensor_edit_replans_only_its_group(study: Path) -> None:
    def change(root: Path) -> None:
        path = root / "manifests" / "tiny-onnx.yaml"
        data = yaml.safe_load(path.read_text())
        data["inputs"]["normalize"]["mean"] = [127.0] * 3  # per-pixel: the same cache
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    result = dry_run_with(study, change)
    jobs = planned(result)
    rounds = sorted((w["group"], w["repeat"]) for rule, w in jobs if rule.startswith("latency_"))
    assert rounds == [("tiny-colour", str(r)) for r in range(REPEATS)]
    assert [w["manifest"] for rule, w in jobs if rule == "accuracy"] == ["tiny-onnx"]
    assert planned_jobs(result) == {
        "accuracy": 1,
        "latency_round_local": REPEATS,
        **dict.fromkeys(AGGREGATION, 1),
    }


def test_round_jobs_take_the_timing_resource(study: Path) -> None:
    """One unit of `timing` exists locally, and every round job takes it: round jobs of
    different groups never run at the same time on this machine's cores."""
    result = snakemake(study, "-n", "--forcerun", "latency_round_local")
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = result.stdout.rsplit("Job stats:", 1)[0].split("\nrule ")
    rounds = [b for b in blocks if b.startswith("latency_round_local")]
    assert len(rounds) == 2 * REPEATS
    assert all(re.search(r"resources: .*\btiming=1\b", b) for b in rounds)
