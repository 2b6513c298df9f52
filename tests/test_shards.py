"""Sharded accuracy: K batch-aligned jobs per manifest, merged into the one result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reproscope.runtime.shards import shard_range
from tests import tinystudy
from tests.test_workflow import snakemake


@pytest.mark.parametrize(
    ("n", "batch", "shards", "ranges"),
    [
        (24, 8, 3, [(0, 8), (8, 16), (16, 24)]),
        (25, 8, 3, [(0, 16), (16, 25), (25, 25)]),  # 4 batches over 3 shards: 2, 2, 0
        (1000, 50, 4, [(0, 250), (250, 500), (500, 750), (750, 1000)]),
        (5, 50, 2, [(0, 5), (5, 5)]),
    ],
)
def test_shard_ranges_are_batch_aligned_and_cover_once(n, batch, shards, ranges) -> None:
    got = [shard_range(n, batch, k, shards) for k in range(shards)]
    assert got == ranges
    assert all(start % batch == 0 or start == n for start, _ in got)


def test_sharded_accuracy_equals_unsharded(tmp_path: Path) -> None:
    roots = {"whole": tmp_path / "whole", "sharded": tmp_path / "sharded"}
    tinystudy.build(roots["whole"], batch_sizes=(1,))
    config = tinystudy.build(
        roots["sharded"], batch_sizes=(1,), accuracy_shards=3, cache_chunk_images=5
    )
    # named as the manifests' claim names its dataset: the published claim is compared
    data = yaml.safe_load(config.read_text())
    data["datasets"] = {"synthetic": data["datasets"]["colours"]}
    data["study"]["dataset"] = "synthetic"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    for root in roots.values():
        result = snakemake(root, "--until", "aggregate")
        assert result.returncode == 0, result.stderr[-3000:]
    inference = {k: r / "results" / "inference" for k, r in roots.items()}
    npy = sorted(p.relative_to(inference["whole"]) for p in inference["whole"].rglob("*.npy"))
    assert npy
    for rel in npy:
        assert (inference["whole"] / rel).read_bytes() == (inference["sharded"] / rel).read_bytes()
    shards = sorted(inference["sharded"].rglob("accuracy_shard*.json"))
    assert len(shards) == 3 * len(list(inference["whole"].rglob("accuracy.json")))
    merged = json.loads(next(inference["sharded"].rglob("accuracy.json")).read_text())
    assert [s["metrics"]["n_images"] for s in merged["shards"]] == [8, 8, 8]
    log = next((roots["sharded"] / "results" / "logs").rglob("accuracy_shard2.log")).read_text()
    assert "accuracy: 8/8 images" in log  # progress is written to the job's log
    tables = [pd.read_csv(r / "results" / "summary" / "accuracy.csv") for r in roots.values()]
    columns = ["manifest", "n_images", "top1", "top5", "status"]
    pd.testing.assert_frame_equal(tables[0][columns], tables[1][columns])
    assert set(tables[0]["comparison"]) == {"published claim on synthetic, other dataset"}
    assert tables[0]["within_tolerance"].isna().all()
    assert set(tables[1]["comparison"]) == {"published claim, same dataset"}
    # decided against the claim by top1's interval (24 images: undetermined at 20 of 24)
    assert tables[1]["tolerance_check"].notna().all()
