"""Real-scale dataset benchmark: a synthetic ImageNet-val-sized JPEG set, its preprocessing
cache and the ONNX Runtime accuracy pass of EfficientNet-Lite0 over it.

Generates N JPEGs of ImageNet-like sizes (about 500x375, both orientations) outside the
repository, then measures: the preprocess job's wall time and images/s against the
single-process rate (measured on a sample of the same images, same spec), cache bytes
per image, and the accuracy job's wall time, images/s and peak RSS (the job's own
getrusage figure), and the share of the accuracy job spent checking the cache's chunks
against their recorded sha256 as it reads them (``verify_share_*``). The images are
noise-textured gradients with random labels: the accuracy number itself means nothing, the
costs are real.

    python benchmarks/dataset_scale.py [--n 50000] [--dir /tmp/reproscope-scale] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from harness_overhead import make_artifact  # noqa: E402

from reproscope.acquire.datasets import materialise  # noqa: E402
from reproscope.acquire.preprocess import build_cache, spec_of  # noqa: E402
from reproscope.plan.jobs import standalone_accuracy_job  # noqa: E402
from reproscope.plan.manifest import read_label_list  # noqa: E402
from reproscope.runtime.cache import Cache  # noqa: E402
from reproscope.runtime.integrity import record  # noqa: E402

MANIFEST = REPO / "manifests" / "efficientnet-lite0-onnx.yaml"
GRAIN = 512
SYNSETS = read_label_list(REPO / "manifests" / "labels" / "imagenet-1k-synsets.txt")


@functools.cache
def grain_tile() -> np.ndarray:
    """Sensor-like grain, drawn once per process: each image takes a window of it (drawing
    fresh normal noise per image would cost most of the generation time)."""
    return np.random.default_rng(12345).normal(0, 10, (GRAIN, GRAIN, 3)).astype(np.float32)


def make_image(args: tuple[Path, int]) -> None:
    """One JPEG: a smooth random colour field with grain, 400-500 x 300-375 pixels."""
    root, i = args
    rng = np.random.default_rng(i)
    w, h = int(rng.integers(400, 501)), int(rng.integers(300, 376))
    if rng.random() < 0.25:
        w, h = h, w
    coarse = rng.integers(0, 256, (h // 32 + 2, w // 32 + 2, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC))
    top, left = (int(x) for x in rng.integers(0, (GRAIN - h + 1, GRAIN - w + 1)))
    pixels = np.clip(field + grain_tile()[top : top + h, left : left + w], 0, 255)
    name = f"{SYNSETS[i % len(SYNSETS)]}_{i:06d}.JPEG"
    Image.fromarray(pixels.astype(np.uint8)).save(root / name, quality=90)


def generate(root: Path, n: int) -> float:
    root.mkdir(parents=True, exist_ok=True)
    missing = [
        i for i in range(n) if not (root / f"{SYNSETS[i % len(SYNSETS)]}_{i:06d}.JPEG").exists()
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        pool.map(make_image, [(root, i) for i in missing], chunksize=64)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()) / "reproscope-scale"
    )
    parser.add_argument(
        "--sample", type=int, default=400, help="images for the single-process rate"
    )
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--keep", action="store_true", help="keep the images and the cache")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    images, work = args.dir / "images", args.dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    figures: dict[str, float | int | str] = {"n_images": args.n, "cores": cores}
    figures["generate_s"] = generate(images, args.n)
    spec = spec_of(yaml.safe_load(MANIFEST.read_text())["inputs"])
    dataset = {
        "mirror": str(images),
        "content_digest": "generated",
        "files": "*.JPEG",
        "limit": args.n,
        "labels": {"filename_regex": r"^(n\d{8})_"},
    }
    t = time.perf_counter()
    index = materialise("scale", dataset, work / "dataset", "benchmark", io.StringIO())
    figures["index_and_digest_s"] = time.perf_counter() - t
    paths = [images / f for f in index["files"]]
    sample = paths[: args.sample]
    single = build_cache(sample, spec, work / "single", workers=1)
    parallel_sample = build_cache(sample, spec, work / "sample", workers=cores)
    shutil.rmtree(work / "single")
    shutil.rmtree(work / "sample")
    load = os.getloadavg()[0]
    job = build_cache(paths, spec, work / "cache", workers=cores)
    cache_bytes = sum(p.stat().st_size for p in (work / "cache" / "chunks").iterdir())
    figures.update(
        load_average_before_job=round(load, 1),
        single_process_img_s=single["images_per_s"],
        job_img_s_on_sample=parallel_sample["images_per_s"],
        preprocess_job_wall_s=job["wall_s"],
        preprocess_job_img_s=job["images_per_s"],
        job_over_cores_x_single=job["images_per_s"] / (cores * single["images_per_s"]),
        cache_bytes_per_image=cache_bytes / args.n,
        cache_chunks=len(job["chunks"]),
    )
    model = make_artifact("onnxruntime", work)
    (work / "lock").write_text('{"lock_sha256": "benchmark: the current interpreter"}')
    record(work / "lock")  # the digest the job checks its lock record against
    record_path = work / "accuracy.json"
    manifest = yaml.safe_load(MANIFEST.read_text())
    accuracy = standalone_accuracy_job(
        manifest,
        str(model),
        str(work / "cache" / "cache.json"),
        str(work),
        str(work / "lock"),
        args.threads,
        args.batch_size,
    ).to_json()
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reproscope.runtime.infer", accuracy],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    wall = time.perf_counter() - t
    result = json.loads(record_path.read_text())
    assert result["status"] == "ok", result["reason"]
    assert (
        len(np.load(work / "topk.npy", mmap_mode="r"))
        == args.n
        == len(Cache(work / "cache" / "cache.json"))
    )
    verify_s = result["metrics"]["verify_seconds"]
    figures.update(
        accuracy_job_wall_s=wall,
        accuracy_img_s=args.n / result["metrics"]["seconds"],
        # sha256 of every chunk as it is read (reproscope.runtime.cache), against the pass
        verify_s=verify_s,
        verify_share_of_accuracy_pass=verify_s / result["metrics"]["seconds"],
        verify_share_of_accuracy_job=verify_s / wall,
        accuracy_peak_rss_mb=result["peak_rss_bytes"] / 2**20,
        total_wall_s=figures["index_and_digest_s"] + job["wall_s"] + wall,
    )
    for key, value in figures.items():
        print(f"{key:28} {value:.3f}" if isinstance(value, float) else f"{key:28} {value}")
    if not args.keep:
        shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
