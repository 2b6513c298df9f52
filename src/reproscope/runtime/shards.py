"""Accuracy in shards: K jobs per manifest, each a batch-aligned range of the images, merged
into the one result (accuracy.json, logits.npy, topk.npy) an unsharded job writes.

Ranges start on batch boundaries, so every batch holds the images it holds unsharded and
the merged logits are byte-identical. Env-side: standard library and numpy only.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.cache import NpyWriter

ROWS = 4096  # rows copied at a time


def shard_range(n_images: int, batch_size: int, shard: int, shards: int) -> tuple[int, int]:
    """Images [start, stop) of shard (0-based) of shards."""
    batches = -(-n_images // batch_size)
    per_shard = -(-batches // shards) * batch_size
    start = min(shard * per_shard, n_images)
    return start, min(start + per_shard, n_images)


def _concatenate(parts: list[Path], out: Path) -> None:
    """Stack .npy files along axis 0, one part in memory at a time."""
    arrays = [np.load(p, mmap_mode="r") for p in parts]
    filled = [a for a in arrays if a.ndim > 1]
    if not filled:  # every shard failed or was empty
        np.save(out, np.zeros((0,), dtype=np.float32))
        return
    n = sum(len(a) for a in filled)
    merged = NpyWriter(out, filled[0].dtype, (n, *filled[0].shape[1:]))
    for a in filled:
        for at in range(0, len(a), ROWS):
            merged.write(a[at : at + ROWS])
    merged.close()


def merge_shards(
    records: list[str | Path], logits: list[str | Path], topk: list[str | Path], out: dict[str, str]
) -> dict[str, Any]:
    """One accuracy record from the shards' records (in shard order): ok only if every
    shard is; n_images and seconds summed, the largest peak memory; each shard kept."""
    shards = [json.loads(Path(r).read_text()) for r in records]
    merged = copy.deepcopy(shards[0])
    failed = [s for s in shards if s["status"] != "ok"]
    merged["status"] = failed[0]["status"] if failed else "ok"
    merged["reason"] = (
        "; ".join(f"shard {s['job']['shard']}: {s['reason']}" for s in failed) or None
    )
    merged["job"] = {k: v for k, v in merged["job"].items() if k != "shard"}
    merged["job"].update(logits_out=out["logits"], topk_out=out["topk"], result_out=out["result"])
    merged["shards"] = [
        {k: s.get(k) for k in ("status", "reason", "metrics", "peak_rss_bytes", "wall_s")}
        | {"shard": s["job"]["shard"]}
        for s in shards
    ]
    if not failed:
        merged["metrics"] = {
            "n_images": sum(s["metrics"]["n_images"] for s in shards),
            "first_image": 0,
            "seconds": sum(s["metrics"]["seconds"] for s in shards),
            "compute_seconds": sum(s["metrics"]["compute_seconds"] for s in shards),
        }
    merged["peak_rss_bytes"] = max(s["peak_rss_bytes"] for s in shards)
    merged["wall_s"] = sum(s["wall_s"] for s in shards)
    _concatenate([Path(p) for p in logits], Path(out["logits"]))
    _concatenate([Path(p) for p in topk], Path(out["topk"]))
    tmp = Path(out["result"]).with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=1, sort_keys=True, default=str))
    os.replace(tmp, out["result"])
    return merged
