"""Preprocessing rate: one process against the preprocess job's worker processes, same spec.

Builds the geometric cache of one manifest's spec over the same images with 1 worker
(the single-process rate) and with one worker per core (what the preprocess rule does),
alternating, `--repeats` times, and prints both rates side by side with their spread and
the ratio to the ideal `cores x single-process rate`, and the CPU time per image of each
(the job's overhead, which other load on the machine does not change).

    python benchmarks/preprocess_rate.py [--images DIR] [--n 300] [--repeats 3]
        [--manifest manifests/efficientnet-lite0-onnx.yaml] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from reproscope.acquire.preprocess import build_cache, spec_of  # noqa: E402

MIRROR = REPO.parent / "shared" / "data" / "imagenet-sample"


def rates(
    paths: list[Path], spec: dict, workers: int, repeats: int
) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Images/s and CPU milliseconds per image (this process and its workers) per mode."""
    measured: dict[int, list[float]] = {1: [], workers: []}
    cpu_ms: dict[int, list[float]] = {1: [], workers: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for w in (1, workers):
                before = os.times()
                index = build_cache(paths, spec, Path(tmp) / f"w{w}", workers=w)
                after = os.times()
                cpu = sum(after[:4]) - sum(before[:4])  # user + system, self and children
                measured[w].append(index["images_per_s"])
                cpu_ms[w].append(1000 * cpu / len(paths))
    return measured, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=MIRROR)
    parser.add_argument("--glob", default="*.JPEG")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--manifest", type=Path, default=REPO / "manifests/efficientnet-lite0-onnx.yaml"
    )
    args = parser.parse_args()
    paths = sorted(args.images.rglob(args.glob))[: args.n]
    if not paths:
        sys.exit(f"no image matches {args.glob} under {args.images}")
    spec = spec_of(yaml.safe_load(args.manifest.read_text())["inputs"])
    measured, cpu_ms = rates(paths, spec, args.workers, args.repeats)
    single, job = statistics.median(measured[1]), statistics.median(measured[args.workers])
    print(
        f"{len(paths)} images, spec of {args.manifest.name}, {args.repeats} repeats, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':24}{'median img/s':>14}{'min':>9}{'max':>9}")
    for label, values in (
        ("single process", measured[1]),
        (f"job ({args.workers} processes)", measured[args.workers]),
    ):
        print(f"{label:24}{statistics.median(values):14.1f}{min(values):9.1f}{max(values):9.1f}")
    print(
        f"job / single = {job / single:.2f}; job / ({args.workers} x single) = "
        f"{job / (args.workers * single):.2f} (target >= 0.8)"
    )
    # The job's own overhead, whatever else runs on the machine: CPU time per image. Equal
    # CPU per image with a lower rate means the cores were busy with other work.
    cpu_single = statistics.median(cpu_ms[1])
    cpu_job = statistics.median(cpu_ms[args.workers])
    print(
        f"CPU ms per image: single {cpu_single:.2f}, job {cpu_job:.2f} "
        f"(job's CPU efficiency {cpu_single / cpu_job:.2f}); the job's wall rate implies "
        f"{job * cpu_job / 1000:.2f} busy cores of {args.workers}"
    )


if __name__ == "__main__":
    main()
