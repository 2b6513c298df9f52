"""Ablations and diagnosis on the tiny study: real Snakemake runs, a real tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reproscope.acquire.preprocess import geometric_spec
from reproscope.report.compare import holm
from tests import tinystudy
from tests.test_workflow import dry_run_edited, planned_jobs, snakemake

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study plus a deliberately wrong manifest (it says BGR for an RGB model)."""
    root = tmp_path_factory.mktemp("ablations")
    tinystudy.build(root, batch_sizes=(1,))
    good = yaml.safe_load((root / "manifests" / "tiny-pytorch.yaml").read_text())
    wrong = {**good, "name": "tiny-wrong-bgr"}
    wrong["inputs"] = {**good["inputs"], "color_order": "BGR"}
    wrong["claims"] = {**good["claims"], "top1": 83.3, "tolerance": 5.0}
    (root / "manifests" / "tiny-wrong-bgr.yaml").write_text(yaml.safe_dump(wrong))
    # two mis-stated fields: colour order and normalisation (pixels left in 0..255)
    two = {**wrong, "name": "tiny-wrong-two"}
    two["inputs"] = {
        **wrong["inputs"],
        "normalize": {"scale": 1.0, "mean": [0.0] * 3, "std": [1.0] * 3, "arithmetic": "float32"},
    }
    (root / "manifests" / "tiny-wrong-two.yaml").write_text(yaml.safe_dump(two))
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["study"]["models"] = ["tiny-pytorch", "tiny-onnx", "tiny-wrong-bgr", "tiny-wrong-two"]
    config["ablations"] = {
        "model": "tiny-onnx",
        "variants": {
            "color-bgr": {"overrides": {"inputs.color_order": "BGR"}},
            "crop-ratio-1.0": {"overrides": {"inputs.crop_ratio": 1.0}},
            "label-offset-1": {"overrides": {"outputs.label_offset": 1}},
            "nhwc-reshaped": {"overrides": {"inputs.layout_conversion": "reshape"}},
        },
    }
    config["diagnose"] = ["tiny-wrong-bgr", "tiny-wrong-two"]
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def test_ablation_table(study: Path) -> None:
    table = pd.read_csv(study / "results" / "summary" / "ablations.csv")
    ablations = table[table["kind"] == "ablation"].set_index("variant")
    assert set(ablations.index) == {
        "color-bgr",
        "crop-ratio-1.0",
        "label-offset-1",
        "nhwc-reshaped",
    }
    assert (ablations["n_images"] == 24).all()
    # Flips explain the change exactly: delta = (gained - lost) / n.
    expected = 100.0 * (ablations["gained"] - ablations["lost"]) / ablations["n_images"]
    assert (abs(ablations["delta_top1"] - expected) < 1e-4).all()  # written to 4 decimals
    assert ablations.loc["color-bgr", "delta_top1"] < -20  # red/blue and cyan/yellow swap
    assert bool(ablations.loc["color-bgr", "significant"])
    assert ablations.loc["label-offset-1", "top1"] < 20
    assert abs(ablations.loc["crop-ratio-1.0", "delta_top1"]) < 10  # mean colour barely moves
    assert (study / "results" / "plots" / "ablations.png").stat().st_size > 1000
    # Holm over the 4 ablations, from the p-values as written (3 significant digits).
    adjusted = holm(ablations["p_value"])
    assert list(ablations["p_value_holm"]) == pytest.approx(list(adjusted), rel=0.01)
    assert (ablations["p_value_holm"] >= ablations["p_value"]).all()
    assert (ablations["significant_holm"] == (ablations["p_value_holm"] < 0.05)).all()
    # Floats are written to their meaningful digits (no -34.699999999999996).
    text = (study / "results" / "summary" / "ablations.csv").read_text()
    assert not re.search(r"\d\.\d{9,}", text), text


def test_diagnosis_points_at_the_colour_order(study: Path) -> None:
    diagnosis = pd.read_csv(study / "results" / "summary" / "diagnosis.csv")
    assert set(diagnosis["manifest"]) == {"tiny-wrong-bgr", "tiny-wrong-two"}
    diagnosis = diagnosis[diagnosis["manifest"] == "tiny-wrong-bgr"]
    top = diagnosis.sort_values("rank").iloc[0]
    assert bool(top["misses_claim"]) and bool(top["most_likely"])
    assert top["field"] == "inputs.color_order"
    assert top["gap_closed"] > 20
    assert diagnosis["most_likely"].sum() == 1


def test_greedy_diagnosis_names_both_mis_stated_fields(study: Path) -> None:
    greedy = pd.read_csv(study / "results" / "summary" / "diagnosis_greedy.csv")
    two = greedy[(greedy["manifest"] == "tiny-wrong-two") & greedy["chosen"]]
    assert set(two["field"]) == {"inputs.normalize", "inputs.color_order"}
    assert (two["gap_closed"] > 0).all() and list(two["round"]) == [1, 2]
    assert abs(two["top1"].iloc[-1] - 83.3) <= 5.0  # the claim is met after both fixes
    one = greedy[(greedy["manifest"] == "tiny-wrong-bgr") & greedy["chosen"]]
    assert list(one["field"]) == ["inputs.color_order"]


def test_adding_a_variant_reruns_only_its_jobs(study: Path) -> None:
    crop = {"overrides": {"inputs.crop_ratio": 0.8}}
    dry_run = dry_run_edited(
        study,
        study / "config.yaml",
        lambda c: c["ablations"]["variants"].update({"crop-0.8": crop}),
    )
    jobs = planned_jobs(dry_run)
    # a cache only this variant reads
    assert jobs.get("accuracy") == 1 and jobs.get("preprocess_variant") == 1
    assert "preprocess" not in jobs
    assert "latency" not in jobs and "aggregate" not in jobs, dry_run.stdout[-3000:]


def test_every_cache_keeps_its_chunks(study: Path) -> None:
    """Caches only variants read keep their pixels like the models' cache: a variant cache
    rebuilt for one reader would re-run every other reader of it. The study stays complete."""
    indexes = sorted((study / "results" / "preprocess").glob("*/*/cache.json"))
    # the four models share one geometry; the variants change it six ways
    assert len(indexes) == 7
    assert all((i.parent / "chunks").is_dir() for i in indexes)
    model = yaml.safe_load((study / "manifests" / "tiny-onnx.yaml").read_text())
    specs = [json.loads(i.read_text())["spec"] for i in indexes]
    assert geometric_spec(model["inputs"]) in specs
    result = snakemake(study, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_per_pixel_variant_shares_the_geometric_cache(study: Path) -> None:
    unit = {"overrides": {"inputs.normalize.mean": [0.0] * 3, "inputs.normalize.std": [1.0] * 3}}
    jobs = planned_jobs(
        dry_run_edited(
            study,
            study / "config.yaml",
            lambda c: c["ablations"]["variants"].update({"unit": unit}),
        )
    )
    assert jobs.get("accuracy") == 1 and "preprocess" not in jobs


def test_variant_with_a_bad_override_is_rejected(study: Path) -> None:
    bad = {"overrides": {"inputs.resize.method": "lanczos"}}
    result = dry_run_edited(
        study, study / "config.yaml", lambda c: c["ablations"]["variants"].update(bad=bad)
    )
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "ablations.variants.bad" in message and "inputs.resize.method" in message
