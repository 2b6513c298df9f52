"""Share of inference-job wall time spent in timed inference, with and without grouping.

Runs the smoke study's Offline timing jobs twice in temporary directories: one job (one
process) per batch size, then `group_batch_sizes: true` (one process per model,
environment and device). The share is the sum of the timed durations the jobs report
divided by the sum of the jobs' wall times measured by Snakemake's `benchmark:` files
(process start, imports and model loading included).

    python benchmarks/grouping.py [--profile profiles/slurm] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data" / "imagenet-sample"


def study_config(grouped: bool) -> dict:
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["manifests"] = str(REPO / "manifests")
    config["environments"] = {k: str(REPO / v) for k, v in config["environments"].items()}
    for dataset in config["datasets"].values():
        dataset["mirror"] = str(MIRROR)
    config["study"]["scenarios"] = ["Offline"]
    config["study"]["group_batch_sizes"] = grouped
    return config


def run(root: Path, grouped: bool, profile: str | None) -> dict[str, float]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(study_config(grouped)))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(root),
        "--configfile",
        str(root / "config.yaml"),
        "--cores",
        "2",
        "--quiet",
    ]
    if profile:
        cmd += ["--profile", str(REPO / profile)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    results = root / "results"
    timed = sum(
        json.loads(p.read_text())["metrics"]["duration_s"]
        for p in results.glob("inference/*/*/*/*/Offline_bs*_r*.json")
    )
    jobs = list(results.glob("benchmarks/latency/**/Offline_*.tsv"))
    job_wall = sum(float(next(csv.DictReader(p.open(), delimiter="\t"))["s"]) for p in jobs)
    return {
        "jobs": len(jobs),
        "timed_s": timed,
        "job_wall_s": job_wall,
        "share": timed / job_wall,
        "study_wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm")
    parser.add_argument("--keep", action="store_true", help="keep the temporary studies")
    args = parser.parse_args()
    if not MIRROR.is_dir():
        print(f"skipped: {MIRROR} is absent")
        return 0
    base = Path(tempfile.mkdtemp(prefix="reproscope-grouping-"))
    try:
        rows = {
            mode: run(base / mode, mode == "grouped", args.profile)
            for mode in ("per-batch-size", "grouped")
        }
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    where = args.profile or "local"
    print(
        f"{'mode':<16}{'jobs':>6}{'timed s':>10}{'job wall s':>12}{'share':>8}"
        f"{'study wall s':>14}   ({where})"
    )
    for mode, row in rows.items():
        print(
            f"{mode:<16}{row['jobs']:>6}{row['timed_s']:>10.1f}{row['job_wall_s']:>12.1f}"
            f"{row['share']:>8.1%}{row['study_wall_s']:>14.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
