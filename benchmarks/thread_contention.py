"""What do the frameworks' thread pools do when another process shares the cores?

EfficientNet-Lite0 (random weights: timing only) at batch 1 on ``--threads`` CPUs (2), in
PyTorch, ONNX Runtime and TensorFlow, under each thread-pool setting below, each measured
undisturbed and with a CPU burner (a process spinning on the first of those CPUs):

- PyTorch (GNU OpenMP in the CPU wheels): the default; ``OMP_WAIT_POLICY=PASSIVE`` (idle
  threads sleep at once) and ``ACTIVE`` (they spin); ``KMP_BLOCKTIME=0`` (Intel/LLVM
  OpenMP's spin time: no effect on libgomp, measured to show it); one intra-op thread.
- ONNX Runtime: the default (intra-op threads spin between ops); session option
  ``session.intra_op.allow_spinning=0``; one intra-op thread.
- TensorFlow: the default reproscope uses (intra-op = threads, inter-op = 1); one intra-op
  thread.

Each (setting, round) is a fresh process that pins itself as a timing job does, loads the
model, then times a closed loop for ``--seconds`` quiet and ``--seconds`` beside the burner
(order alternating by round). Settings run interleaved in a seeded random order per round,
``--rounds`` rounds (5). Per setting it reports the undisturbed p50, the disturbed/undisturbed
p50 ratio and the undisturbed cost against the framework's default, each a ratio with its
95 % CI paired by round (reproscope.report.compare.ratio_ci). A setting is worth adopting
when it keeps the disturbed ratio down and its undisturbed cost's CI lies below 1.02.

Usage: ``python benchmarks/thread_contention.py [--rounds 5] [--seconds 3] [--threads 2]
[--frameworks pytorch onnxruntime tensorflow] [--json OUT.json]``; about 7 settings x rounds x
(load + 2 x seconds): ~6 minutes with the defaults. Run it on a quiet machine (load < 1):
other work lands on the undisturbed figures too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS: dict[str, dict[str, Any]] = {
    "pytorch default": {"framework": "pytorch"},
    "pytorch OMP_WAIT_POLICY=PASSIVE": {
        "framework": "pytorch",
        "env": {"OMP_WAIT_POLICY": "PASSIVE"},
    },
    "pytorch OMP_WAIT_POLICY=ACTIVE": {
        "framework": "pytorch",
        "env": {"OMP_WAIT_POLICY": "ACTIVE"},
    },
    "pytorch KMP_BLOCKTIME=0": {"framework": "pytorch", "env": {"KMP_BLOCKTIME": "0"}},
    "pytorch 1 thread": {"framework": "pytorch", "threads": 1},
    "onnxruntime default": {"framework": "onnxruntime"},
    "onnxruntime allow_spinning=0": {"framework": "onnxruntime", "spinning": False},
    "onnxruntime 1 thread": {"framework": "onnxruntime", "threads": 1},
    "tensorflow default": {"framework": "tensorflow"},
    "tensorflow 1 thread": {"framework": "tensorflow", "threads": 1},
}
SIZE = 224


def torch_model() -> Any:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0").eval()


def load(setting: dict[str, Any], threads: int, onnx_path: str) -> Any:
    """The model in the setting's framework: a callable on one NCHW (NHWC for Keras) batch."""
    framework = setting["framework"]
    if framework == "pytorch":
        import torch

        torch.set_num_threads(threads)
        model = torch_model()

        def run(batch: np.ndarray) -> Any:
            with torch.inference_mode():
                return model(torch.from_numpy(batch))

        return run
    if framework == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if not setting.get("spinning", True):
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        return lambda batch: session.run(None, {session.get_inputs()[0].name: batch})
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from reproscope.runtime.convert.keras_efficientnet_lite import build_architecture

    model = build_architecture(SIZE)
    call = tf.function(lambda x: model(x, training=False))
    return lambda batch: call(tf.constant(batch.transpose(0, 2, 3, 1))).numpy()


def closed_loop_p50_ms(run: Any, batch: np.ndarray, seconds: float) -> float:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(latencies) < 5:
        t0 = time.perf_counter_ns()
        run(batch)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.median(latencies))


def burner(cpu: int) -> subprocess.Popen:
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def worker(request: dict[str, Any]) -> dict[str, float]:
    """One (setting, round): pinned, loaded, warmed up, then quiet and disturbed."""
    from reproscope.runtime.noise import pin_cpus

    cpus = pin_cpus(request["threads"])  # as a timing job pins itself, before any import
    setting = SETTINGS[request["setting"]]
    run = load(setting, setting.get("threads", request["threads"]), request["onnx"])
    batch = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE), np.float32)
    for _ in range(5):
        run(batch)
    found = {}
    for condition in request["order"]:
        proc = burner(cpus[0]) if condition == "disturbed" else None
        try:
            time.sleep(0.2 if proc else 0.0)
            found[condition] = closed_loop_p50_ms(run, batch, request["seconds"])
        finally:
            if proc:
                proc.kill()
                proc.wait()
    return found


def export_onnx(directory: Path) -> str:
    from reproscope.runtime.convert.torch_export import export_legacy

    path = directory / "lite0.onnx"
    export_legacy(torch_model(), path, (1, 3, SIZE, SIZE), 17)
    return str(path)


def summarise(results: list[dict[str, Any]], settings: list[str]) -> list[dict[str, Any]]:
    from reproscope.report.compare import ratio_ci

    rows = []
    for name in settings:
        mine = sorted((r for r in results if r["setting"] == name), key=lambda r: r["round"])
        quiet = [r["undisturbed"] for r in mine]
        busy = [r["disturbed"] for r in mine]
        default = f"{SETTINGS[name]['framework']} default"
        base = {r["round"]: r["undisturbed"] for r in results if r["setting"] == default}
        row = {"setting": name, "undisturbed_p50_ms": float(np.median(quiet))}
        row["disturbed_ratio"] = ratio_ci(quiet, busy)
        if base and name != default:
            row["cost_vs_default"] = ratio_ci([base[r["round"]] for r in mine], quiet)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frameworks", nargs="+", default=["pytorch", "onnxruntime", "tensorflow"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    settings = [n for n, s in SETTINGS.items() if s["framework"] in args.frameworks]
    rng = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx(Path(tmp)) if "onnxruntime" in args.frameworks else ""
        for round_ in range(args.rounds):
            order = ["undisturbed", "disturbed"][:: 1 if round_ % 2 == 0 else -1]
            for name in rng.sample(settings, len(settings)):
                request = {"setting": name, "threads": args.threads, "onnx": onnx}
                request.update(seconds=args.seconds, order=order)
                env = {**os.environ, **SETTINGS[name].get("env", {})}
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", json.dumps(request)],
                    env=env,
                    check=True,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                results.append({"setting": name, "round": round_, **measured})
                print(f"round {round_} {name}: {measured}", file=sys.stderr, flush=True)
    rows = summarise(results, settings)
    load_1m = os.getloadavg()[0]
    print(f"\nload average at the end: {load_1m:.2f} (figures mean little above 1)")
    print(f"{'setting':34} {'p50 ms':>8}  {'disturbed / undisturbed':>30}  {'cost vs default':>26}")
    for row in rows:
        ratio = "{:.3f} [{:.3f}, {:.3f}]".format(*row["disturbed_ratio"])
        cost = (
            "{:.3f} [{:.3f}, {:.3f}]".format(*row["cost_vs_default"])
            if "cost_vs_default" in row
            else ""
        )
        print(f"{row['setting']:34} {row['undisturbed_p50_ms']:8.2f}  {ratio:>30}  {cost:>26}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"load_average": load_1m, "results": results, "summary": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
