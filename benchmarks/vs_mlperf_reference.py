"""reproscope against MLPerf's own reference application, on the same ONNX model.

MLPerf Inference's reference classification application
(``vision/classification_and_detection/python/main.py`` of a checkout of mlcommons/inference,
``--profile resnet50-onnxruntime``) and reproscope's LoadGen scenarios
(``python -m reproscope.runtime.infer``) run the same ONNX model on the same images, each
run in a fresh process, the two tools interleaved (A B, B A, ...) for ``--rounds`` rounds,
every process pinned to the same ``--threads`` CPUs. Both load LoadGen's mlperf.conf for
``resnet50`` and hold the same number of samples resident (the dataset's size, at most
1,024), and both run ``--time`` seconds per point. The reference app runs with each worker
count of ``--workers`` (its default is 2); the table compares reproscope with the reference
app at its best worker count.

Printed: LoadGen's own figures of every run (SingleStream: QPS and the early-stopping p90;
Offline: samples per second), validity, and the ratios reproscope / reference (median and
min-max over rounds), then what differs between the two set-ups.

Usage::

    git clone https://github.com/mlcommons/inference /tmp/inference   # or the fetch tool
    python benchmarks/vs_mlperf_reference.py --inference /tmp/inference \\
        --model results/models/efficientnet-lite0-onnx/model.onnx \\
        --images ../shared/data/imagenet-sample [--rounds 4] [--time 15] [--threads 2] \\
        [--scenarios SingleStream,Offline] [--batch 32] [--workers 1,2]

Needs the reference application's own requirements (opencv, onnxruntime, mlcommons-loadgen:
all in reproscope's host environment). Writes nothing outside a temporary directory
(``--keep`` keeps it and prints where).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from reproscope.runtime.scenarios.loadgen import loadgen_result, read_detail_log

BENCHMARK = "resnet50"  # the reference profile's mlperf.conf model name; reproscope names it too
MANIFEST = "manifests/efficientnet-lite0-onnx.yaml"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}

DIFFERENCES = """What differs between the two set-ups:
- Preprocessing (outside the timed window in both): the reference app's VGG-style resize
  and crop and its ImageNet mean subtraction; reproscope the manifest's own. The tensors
  have the same shape and dtype, so the model does the same work.
- Thread pools: the reference app's ONNX Runtime session keeps ORT's default intra-op
  threads (one per core of the process's CPU set); reproscope sets ``--threads``. Both run
  pinned to the same CPUs.
- SingleStream: the reference app hands each query to a worker thread (RunnerBase, inline
  in LoadGen's thread only for one worker); reproscope runs it inline in LoadGen's issue
  thread.
- Offline: the reference app splits its one query over ``--workers`` threads in batches of
  ``--max-batchsize``; reproscope runs it in one thread in batches of ``--batch``.
- Durations: the reference app's ``--time`` sets LoadGen's min and max duration directly;
  reproscope writes the same into its generated user.conf. It runs its short profile, so
  LoadGen's log thread is at SCHED_IDLE (both listed in its ``deviations``).
"""


def dataset(images: Path, tmp: Path) -> tuple[Path, list[Path]]:
    """The images as the reference app reads an ImageNet folder: links and a val_map.txt
    (labels do not matter to a performance run)."""
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    root = tmp / "imagenet"
    root.mkdir()
    for path in files:
        (root / path.name).symlink_to(path.resolve())
    (root / "val_map.txt").write_text("".join(f"{p.name} 0\n" for p in files))
    return root, files


def reproscope_cache(files: list[Path], tmp: Path) -> tuple[Path, dict[str, Any]]:
    """The uint8 cache of the images under the lite0 manifest's spec, and its tensor stages."""
    from reproscope.acquire.preprocess import build_cache, spec_of
    from reproscope.runtime.tensorize import tensor_spec

    inputs = yaml.safe_load(Path(MANIFEST).read_text())["inputs"]
    spec = spec_of(inputs)
    build_cache(files, spec, tmp / "cache")
    return tmp / "cache" / "cache.json", tensor_spec(spec)


def pinned(cpus: list[int]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cpus))]


def run_reproscope(
    args: argparse.Namespace, scenario: str, cache: Path, tensor: dict, out: Path
) -> dict[str, Any]:
    batch = args.batch if scenario == "Offline" else 1
    job = {
        "mode": "latency",
        "framework": "onnxruntime",
        "manifest": "efficientnet-lite0-onnx",
        "model": "efficientnet-lite0",
        "system": "local",
        "env": "current",
        "device": "cpu",
        "threads": args.threads,
        "artifact": str(args.model),
        "inputs": str(cache),
        "tensor": tensor,
        "env_lock": str(out / "lock.json"),  # never written: no environment identity
        "architecture": None,
        "unsafe_pickle": False,
        "top_k": 5,
        "batch_size": batch,
        "scenario": scenario,
        "repeat": 0,
        "mlperf_benchmark": BENCHMARK,
        "timing": {
            "warmup": 10,
            "min_duration_s": float(args.time),
            "min_queries": 1,
            "max_duration_s": float(args.time),
        },
        "result_out": str(out / "result.json"),
        "loadgen_dir": str(out / "loadgen"),
    }
    proc = subprocess.run(
        [*pinned(args.cpus), sys.executable, "-m", "reproscope.runtime.infer", json.dumps(job)],
        capture_output=True,
        text=True,
    )
    record = json.loads((out / "result.json").read_text()) if proc.returncode == 0 else {}
    if record.get("status") != "ok":
        raise RuntimeError(f"reproscope failed: {record.get('reason')} {proc.stderr[-2000:]}")
    return figures(record["metrics"], scenario)


def run_reference(
    args: argparse.Namespace, scenario: str, root: Path, n_images: int, workers: int, out: Path
) -> dict[str, Any]:
    app = args.inference / "vision" / "classification_and_detection" / "python"
    user_conf = out / "user.conf"
    # the same library as reproscope's: the dataset's size, at most mlperf.conf's 1,024
    user_conf.write_text(
        f"{BENCHMARK}.*.performance_sample_count_override = {min(n_images, 1024)}\n"
    )
    import onnxruntime

    output_name = (
        args.output_name
        or onnxruntime.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
        .get_outputs()[0]
        .name
    )
    command = [
        *pinned(args.cpus),
        sys.executable,
        "main.py",
        "--profile",
        "resnet50-onnxruntime",
        "--model",
        str(args.model.resolve()),
        "--dataset-path",
        str(root),
        "--scenario",
        scenario,
        "--threads",
        str(workers),
        "--time",
        str(args.time),
        "--max-batchsize",
        str(args.batch if scenario == "Offline" else 1),
        "--outputs",
        output_name,
        "--user_conf",
        str(user_conf),
        "--cache_dir",
        str(out.parent / "reference-cache"),
        "--cache",
        "1",
        "--output",
        str(out / "output"),
    ]
    env = {**os.environ, "USE_GPU": "no", "PYTHONPATH": str(app)}
    proc = subprocess.run(command, cwd=app, capture_output=True, text=True, env=env)
    detail = out / "output" / "mlperf_log_detail.txt"
    if proc.returncode != 0 or not detail.exists():
        raise RuntimeError(f"the reference app failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return figures(loadgen_result(read_detail_log(detail)), scenario)


def figures(result: dict[str, Any], scenario: str) -> dict[str, Any]:
    """LoadGen's own figures of one run."""
    effective = result.get("settings_effective") or {}
    return {
        "validity": result["validity"],
        "qps": result.get("qps_with_loadgen_overhead"),
        "samples_per_s": result.get("samples_per_second"),
        "early_stopping_p90_ms": result.get("early_stopping_p90_ms"),
        "p90_ms": result.get("p90_ms"),
        "performance_sample_count": effective.get("effective_performance_sample_count"),
        "samples_per_query": effective.get("effective_samples_per_query"),
    }


def headline(scenario: str) -> tuple[str, bool]:
    """The figure compared, and whether higher is better."""
    return ("qps", True) if scenario == "SingleStream" else ("samples_per_s", True)


def ratio_line(name: str, ratios: list[float]) -> str:
    return (
        f"  {name}: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} rounds)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inference", type=Path, required=True, help="mlcommons/inference checkout")
    ap.add_argument("--model", type=Path, required=True, help="the ONNX model")
    ap.add_argument("--images", type=Path, required=True, help="a folder of JPEG images")
    ap.add_argument("--output-name", help="the model's output to fetch (default: its first)")
    ap.add_argument("--scenarios", default="SingleStream,Offline")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--time", type=int, default=15, help="seconds per point")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="Offline batch size")
    ap.add_argument("--workers", default="1,2", help="the reference app's worker counts")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    worker_counts = [int(w) for w in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="vs-mlperf-"))
    try:
        root, files = dataset(args.images, tmp)
        cache, tensor = reproscope_cache(files, tmp)
        runs: list[dict[str, Any]] = []
        for scenario in args.scenarios.split(","):
            for r in range(args.rounds):
                tools = [("reproscope", 0)] + [("reference", w) for w in worker_counts]
                if r % 2:
                    tools.reverse()  # interleaved: A B, B A, ...
                for tool, workers in tools:
                    out = tmp / f"{scenario}-r{r}-{tool}{workers or ''}"
                    out.mkdir()
                    if tool == "reproscope":
                        found = run_reproscope(args, scenario, cache, tensor, out)
                    else:
                        found = run_reference(args, scenario, root, len(files), workers, out)
                    runs.append(
                        {
                            "scenario": scenario,
                            "round": r,
                            "tool": tool,
                            "workers": workers,
                            **found,
                        }
                    )
                    print(json.dumps(runs[-1]), flush=True)
        print()
        for scenario in args.scenarios.split(","):
            metric, _ = headline(scenario)
            here = [x for x in runs if x["scenario"] == scenario]
            ref_best = max(
                worker_counts,
                key=lambda w: statistics.median(
                    x[metric] for x in here if x["tool"] == "reference" and x["workers"] == w
                ),
            )
            ours = {x["round"]: x for x in here if x["tool"] == "reproscope"}
            theirs = {
                x["round"]: x for x in here if x["tool"] == "reference" and x["workers"] == ref_best
            }
            print(f"{scenario}: reference app at its best worker count ({ref_best})")
            print(
                ratio_line(
                    f"{metric} reproscope / reference",
                    [ours[r][metric] / theirs[r][metric] for r in ours],
                )
            )
            if scenario == "SingleStream":
                print(
                    ratio_line(
                        "early-stopping p90 reproscope / reference",
                        [
                            ours[r]["early_stopping_p90_ms"] / theirs[r]["early_stopping_p90_ms"]
                            for r in ours
                        ],
                    )
                )
            libraries = {x["performance_sample_count"] for x in here}
            print(
                f"  sample libraries: {sorted(libraries)}; validity: "
                f"{sorted({x['validity'] for x in here})}"
            )
        print()
        print(DIFFERENCES)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
