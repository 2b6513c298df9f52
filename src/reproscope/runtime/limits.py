"""The machine's own limits, measured in one environment at one thread count:
``python -m reproscope.runtime.limits JOB.json|'{...}'``.

A limits job (rules/limits.smk starts one per environment and thread count of a system and
device) measures

* the best float32 GEMM of every framework it names, over a sweep of square sizes
  (512 ... 4096): torch.mm, tf.linalg.matmul, or a one-node ONNX Runtime MatMul session
  (reproscope.runtime.peak), at the job's thread count; on CUDA these are cuBLAS's;
* with ``memory_threads``: the sustained host memory bandwidth, numpy copy and triad over
  arrays well beyond the last-level cache, split across that many threads;
* on CUDA, with PyTorch in the environment: device-memory bandwidth (a device-to-device
  copy), and host-to-device / device-to-host bandwidth with pinned and pageable host
  buffers at each size in ``transfer_bytes`` (the study's batches): the interconnect.

Each figure is the best of ``repeats`` timings (the least disturbed run) with the spread
over them. Sizes whose predicted cost exceeds what is left of ``budget_s`` are recorded as
skipped, never measured half. Env-side: standard library, numpy and the frameworks only.

A peak measured while another process used the job's CPUs is low, and every point of the
study then reads above its bound (Figure 1 with a `pip install` beside its 2-thread limits
job: GEMM peak 99 GFLOP/s, ONNX Runtime's ResNet-50 at 180). So each size's timings are
watched (other processes' share of the job's CPUs and steal, reproscope.runtime.noise, past
``NOISE_THRESHOLD``): a disturbed size waits for the CPUs to be quiet (at most
``QUIET_WAIT_S``) and is measured again, up to ``REMEASURE`` more times while the process
has spent less than ``REMEASURE_BUDGET_S`` on that. Disturbance only slows a GEMM, so the
size's figure is the best of its attempts; a figure whose best attempt was disturbed keeps
``disturbed`` (the reasons), and limits.csv names it (``gemm_disturbed``).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np

from reproscope.runtime import launch
from reproscope.runtime.atomic import write_text
from reproscope.runtime.launch import command, interpreter
from reproscope.runtime.noise import (
    NOISE_THRESHOLD,
    CpuSnapshot,
    cpu_shares,
    job_cpus,
    pin_cpus,
    share_reasons,
    wait_for_quiet,
)
from reproscope.runtime.peak import (
    best_seconds,
    gemm_operand,
    measure_peak_gflops,
    onnx_matmul_model,
)

SIZES = (512, 1024, 2048, 4096)
REPEATS = 3
MIN_TIMING_S = 0.05
#: Arrays this many times the last-level cache (each), so that no pass is served from it.
LLC_MULTIPLE = 4
#: Used when the cache size cannot be read: beyond any LLC of a current CPU divided by 4.
FALLBACK_ARRAY_BYTES = 256 * 2**20
MIN_ARRAY_BYTES = 64 * 2**20
DEVICE_COPY_BYTES = 512 * 2**20
CACHE_SYSFS = "/sys/devices/system/cpu/cpu0/cache"

#: Re-measurement of a disturbed size (module docstring).
REMEASURE = 2
QUIET_WAIT_S = 3.0
REMEASURE_BUDGET_S = 8.0

Product = tuple[Callable[[], Any], str]
FRAMEWORK_MODULES = {"pytorch": "torch", "tensorflow": "tensorflow", "onnxruntime": "onnxruntime"}


# ----------------------------------------------------------------------------- GEMM


def gemm_product(framework: str, device: str, n: int, threads: int) -> Product:
    """A product of two n x n float32 matrices through framework on device, waiting for
    its result, and how it is done. Device or provider not really in use: RuntimeError."""
    if framework == "pytorch":
        import torch

        torch.set_num_threads(threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        a = torch.from_numpy(gemm_operand(n)).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def product() -> None:
            torch.mm(a, a)
            sync()

        library = "cuBLAS" if device == "cuda" else "CPU"
        return product, f"torch.mm {torch.__version__} {device} ({library})"
    if framework == "tensorflow":
        import tensorflow as tf

        _tensorflow_threads(tf, threads)
        name = "/GPU:0" if device == "cuda" else "/CPU:0"
        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise RuntimeError("TensorFlow lists no GPU")
        with tf.device(name):
            a = tf.constant(gemm_operand(n))

        def product() -> Any:
            with tf.device(name):
                # one element back to the host: waits for the device, copies 4 bytes
                return tf.linalg.matmul(a, a)[0, 0].numpy()

        return product, f"tf.linalg.matmul {tf.__version__} {name}"
    if framework == "onnxruntime":
        return _onnxruntime_product(device, n, threads)
    raise ValueError(f"no GEMM for framework {framework!r}")


def _tensorflow_threads(tf: Any, threads: int) -> None:
    """TensorFlow takes its thread counts once, before its first operation (one limits
    process per thread count)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            raise


def _onnxruntime_product(device: str, n: int, threads: int) -> Product:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    session = ort.InferenceSession(onnx_matmul_model(n), options, providers=[provider])
    if session.get_providers()[0] != provider:
        raise RuntimeError(f"ONNX Runtime fell back to {session.get_providers()[0]}")
    how = f"onnxruntime MatMul session {ort.__version__} {provider}"
    x = gemm_operand(n)
    if device != "cuda":
        feed = {"A": x, "B": x}
        return (lambda: session.run(None, feed)), how
    # Operands and result stay on the device: the product times no copy.
    operand = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input("A", operand)
    binding.bind_ortvalue_input("B", operand)
    binding.bind_output("C", "cuda", 0)

    def product() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return product, f"{how} (I/O bound on the device)"


def predicted_seconds(previous: dict[str, Any] | None, n: int, repeats: int) -> float:
    """What measuring size n will take, from the last size measured (GEMM time grows as
    n^3): a warm-up call plus ``repeats`` timings of at least MIN_TIMING_S each."""
    if previous is None:
        return 0.0
    per_product = previous["seconds_per_product"] * (n / previous["n"]) ** 3
    return per_product + repeats * max(MIN_TIMING_S, per_product)


def disturbance(before: CpuSnapshot, after: CpuSnapshot) -> str | None:
    """Why a timing between two snapshots of the job's CPUs was disturbed, or None."""
    reasons = share_reasons(cpu_shares(before, after), job_cpus(), NOISE_THRESHOLD)
    return "; ".join(reasons) or None


def watched_peak(product: Product, repeats: int, n: int, spent: list[float]) -> dict[str, Any]:
    """measure_peak_gflops, measured again while disturbed (module docstring): the best
    attempt, with ``attempts`` and, when that attempt was disturbed, ``disturbed``."""
    attempts: list[dict[str, Any]] = []
    for attempt in range(1 + REMEASURE):
        started = time.perf_counter()
        if attempt:
            if spent[0] >= REMEASURE_BUDGET_S:
                break
            wait_for_quiet(job_cpus(), NOISE_THRESHOLD, QUIET_WAIT_S)
        before = CpuSnapshot.take(job_cpus())
        peak = measure_peak_gflops(product, repeats, n, MIN_TIMING_S)
        peak["disturbed"] = disturbance(before, CpuSnapshot.take(job_cpus()))
        attempts.append(peak)
        if attempt:
            spent[0] += time.perf_counter() - started
        if peak["disturbed"] is None:
            break
    best = max(attempts, key=lambda a: a["peak_gflops"])
    return {**best, "attempts": len(attempts)}


def gemm_sweep(
    make: Callable[[int], Product],
    sizes: Iterable[int],
    repeats: int,
    budget_s: float,
    spent: list[float] | None = None,
) -> list[dict[str, Any]]:
    """One row per size: GFLOP/s (best of repeats), spread and how; or, for a size whose
    predicted cost exceeds what is left of budget_s, ``status`` skipped and why. ``spent``:
    the process's seconds of re-measurement so far (REMEASURE_BUDGET_S), updated."""
    spent = [0.0] if spent is None else spent
    rows: list[dict[str, Any]] = []
    # re-measurement has its own budget: the sweep's is what the first attempts took
    started, spent_before = time.perf_counter(), spent[0]
    previous = None
    for n in sorted(sizes):
        left = budget_s - (time.perf_counter() - started - (spent[0] - spent_before))
        need = predicted_seconds(previous, n, repeats)
        if need > left:
            rows.append(
                {
                    "n": n,
                    "status": "skipped",
                    "reason": f"predicted {need:.1f} s, {max(left, 0):.1f} s of the budget left",
                }
            )
            continue
        peak = watched_peak(make(n), repeats, n, spent)
        previous = {
            "n": n,
            "seconds_per_product": 2.0 * n**3 / (peak["peak_gflops"] * 1e9),
        }
        rows.append(
            {
                "n": n,
                "status": "ok",
                "gflops": peak["peak_gflops"],
                "spread": peak["spread"],
                "method": peak["method"],
                "seconds": peak["seconds"],
                "attempts": peak["attempts"],
                "disturbed": peak["disturbed"],
            }
        )
    return rows


def measure_gemms(
    frameworks: list[str],
    device: str,
    threads: int,
    sizes: Iterable[int],
    repeats: int,
    budget_s: float,
) -> list[dict[str, Any]]:
    """Every framework's sweep; the budget left is shared evenly by the frameworks still
    to run (imports are not on it). A framework that cannot run on the device is a row
    that says why."""
    rows: list[dict[str, Any]] = []
    spent = 0.0
    remeasured = [0.0]
    for i, framework in enumerate(frameworks):
        base = {"framework": framework, "device": device, "threads": threads}
        try:
            importlib.import_module(FRAMEWORK_MODULES[framework])  # not on the budget
        except ImportError as exc:
            rows.append({**base, "status": "unavailable", "reason": str(exc)})
            continue
        started = time.perf_counter()
        share = (budget_s - spent) / (len(frameworks) - i)
        try:
            sweep = gemm_sweep(
                lambda n, f=framework: gemm_product(f, device, n, threads),
                sizes,
                repeats,
                share,
                remeasured,
            )
        except (ImportError, RuntimeError) as exc:
            rows.append({**base, "status": "unavailable", "reason": str(exc)})
            continue
        finally:
            spent += time.perf_counter() - started
        rows.extend({**base, **row} for row in sweep)
    return rows


# ----------------------------------------------------------------------------- memory


def last_level_cache_bytes(sysfs: str = CACHE_SYSFS) -> int | None:
    """The largest cache of CPU 0 in bytes (sysfs `index*/size`, e.g. 32768K), or None."""
    sizes = []
    for index in sorted(Path(sysfs).glob("index*")):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
        digits = text.rstrip("KMGkmg")
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes) if sizes else None


def array_bytes(llc: int | None) -> int:
    """Each stream array's size: LLC_MULTIPLE times the last-level cache, at least
    MIN_ARRAY_BYTES; FALLBACK_ARRAY_BYTES when the cache size is unknown."""
    if llc is None:
        return FALLBACK_ARRAY_BYTES
    return max(MIN_ARRAY_BYTES, LLC_MULTIPLE * llc)


def _chunks(n: int, parts: int) -> list[slice]:
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def stream_bandwidth(threads: int, nbytes: int, repeats: int = REPEATS) -> dict[str, Any]:
    """Sustained memory bandwidth (GB/s) of numpy copy (a = b) and triad (a = b + 3 c, as
    numpy does it: two passes) over float64 arrays of nbytes each, each split in ``threads``
    parts run at once (numpy releases the GIL for both). Bytes counted as moved: copy
    2 arrays, triad 5 (multiply reads c and writes a; add reads a and b and writes a)."""
    n = max(1, nbytes // 8)
    a, b, c = np.zeros(n), np.full(n, 1.0), np.full(n, 2.0)
    parts = _chunks(n, threads)

    def copy(s: slice) -> None:
        np.copyto(a[s], b[s])

    def triad(s: slice) -> None:
        np.multiply(c[s], 3.0, out=a[s])
        np.add(a[s], b[s], out=a[s])

    out: dict[str, Any] = {"threads": threads, "array_bytes": n * 8}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for name, kernel, arrays in (("copy", copy, 2), ("triad", triad, 5)):

            def run(kernel: Callable[[slice], None] = kernel) -> None:
                list(pool.map(kernel, parts))

            run()  # first touch: page faults are not bandwidth

            seconds, spread = best_seconds(run, repeats, MIN_TIMING_S)
            out[f"{name}_gbps"] = arrays * n * 8 / seconds / 1e9
            out[f"{name}_spread"] = spread
    best = max(("copy", "triad"), key=lambda k: out[f"{k}_gbps"])
    out.update(
        bandwidth_gbps=out[f"{best}_gbps"],
        spread=out[f"{best}_spread"],
        method=(
            f"numpy {best} over {n * 8 / 2**20:.0f} MiB float64 arrays, {threads} thread(s), "
            f"best of {repeats}"
        ),
    )
    return out


# ----------------------------------------------------------------------------- CUDA

#: (direction, pinned) pairs measured at each transfer size.
TRANSFERS = (("h2d", True), ("h2d", False), ("d2h", True), ("d2h", False))


def transfer_bandwidths(
    make_copy: Callable[[str, bool, int], Callable[[], None]],
    sizes: Iterable[int],
    repeats: int = REPEATS,
) -> list[dict[str, Any]]:
    """One row per transfer size, direction and host buffer kind: GB/s (best of repeats)
    and spread. make_copy(direction, pinned, nbytes) returns a copy of nbytes that waits
    for its end."""
    rows = []
    for nbytes in sorted(set(sizes)):
        for direction, pinned in TRANSFERS:
            seconds, spread = best_seconds(make_copy(direction, pinned, nbytes), repeats, 0.01)
            rows.append(
                {
                    "bytes": nbytes,
                    "direction": direction,
                    "pinned": pinned,
                    "gbps": nbytes / seconds / 1e9,
                    "spread": spread,
                }
            )
    return rows


def best_transfer(rows: list[dict[str, Any]], direction: str, pinned: bool) -> float | None:
    """The highest bandwidth of one direction and buffer kind over the sizes measured."""
    found = [r["gbps"] for r in rows if r["direction"] == direction and r["pinned"] == pinned]
    return max(found) if found else None


def torch_copy(direction: str, pinned: bool, nbytes: int) -> Callable[[], None]:
    """A host<->device copy of nbytes with PyTorch: from or into a pinned (page-locked)
    or pageable host buffer, waiting for it to finish."""
    import torch

    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    device = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    source, target = (host, device) if direction == "h2d" else (device, host)

    def copy() -> None:
        target.copy_(source, non_blocking=pinned)
        torch.cuda.synchronize()

    return copy


def cuda_limits(transfer_bytes: list[int], repeats: int = REPEATS) -> dict[str, Any]:
    """Device-memory bandwidth (a device-to-device copy: read + write) and the
    interconnect, with PyTorch."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    src = torch.empty(DEVICE_COPY_BYTES, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)

    def device_copy() -> None:
        dst.copy_(src)
        torch.cuda.synchronize()

    seconds, spread = best_seconds(device_copy, repeats, MIN_TIMING_S)
    transfers = transfer_bandwidths(torch_copy, transfer_bytes, repeats)
    return {
        "device_name": torch.cuda.get_device_name(0),
        "device_memory_gbps": 2 * DEVICE_COPY_BYTES / seconds / 1e9,
        "device_memory_spread": spread,
        "device_memory_method": (
            f"torch {torch.__version__} device-to-device copy of {DEVICE_COPY_BYTES // 2**20} "
            f"MiB, read + write, best of {repeats}"
        ),
        "transfers": transfers,
        **{
            f"{d}_{'pinned' if p else 'pageable'}_gbps": best_transfer(transfers, d, p)
            for d, p in TRANSFERS
        },
    }


# ----------------------------------------------------------------------------- job


def run_limits(job: dict[str, Any]) -> dict[str, Any]:
    """Everything a limits job asks for; each part that cannot run says why."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "job": job,
        "cpu_set": pin_cpus(max(job["threads"], job.get("memory_threads") or 0)),
        "gemm": measure_gemms(
            job["frameworks"],
            job["device"],
            job["threads"],
            job.get("sizes", SIZES),
            job.get("repeats", REPEATS),
            job["budget_s"],
        ),
        "memory": None,
        "cuda": None,
    }
    if job.get("memory_threads"):
        llc = last_level_cache_bytes()
        record["memory"] = {
            **stream_bandwidth(job["memory_threads"], array_bytes(llc), job.get("repeats", 3)),
            "llc_bytes": llc,
        }
    if job.get("cuda_limits"):
        try:
            record["cuda"] = cuda_limits(job.get("transfer_bytes", []), job.get("repeats", 3))
        except (ImportError, RuntimeError) as exc:
            record["cuda"] = {"reason": str(exc)}
    record["seconds"] = time.perf_counter() - started
    return record


#: Seconds of GEMM sweeps per system and device, shared by its limits processes (the
#: budget of the whole job, imports and the memory test included, is 30 s on 2 cores: with
#: 12 s here, Figure 1's 2-thread system, two processes each importing three frameworks,
#: took 30.4 s; each process spends ~7 s besides its sweeps).
GEMM_BUDGET_S = 10.0
MODULE = "reproscope.runtime.limits"


def system_jobs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The limits processes of a system and device (a plan of
    reproscope.plan.targets.limits_plan): one per environment and thread count. Memory
    bandwidth is measured once, at the system's thread count; the CUDA limits once, in the
    first environment with PyTorch."""
    threads = plan["threads"]
    envs = list(plan["envs"])
    jobs = []
    with_torch = [e for e in envs if "pytorch" in plan["envs"][e]]
    for t in threads:
        for env in envs:
            at_system = t == threads[0]
            jobs.append(
                {
                    "env": env,
                    "frameworks": plan["envs"][env],
                    "device": plan["device"],
                    "threads": t,
                    "sizes": list(plan.get("sizes", SIZES)),
                    "repeats": plan.get("repeats", REPEATS),
                    "budget_s": plan.get("budget_s", GEMM_BUDGET_S) / (len(threads) * len(envs)),
                    "memory_threads": t if at_system and env == envs[0] else 0,
                    "cuda_limits": plan["device"] == "cuda" and at_system and env in with_torch[:1],
                    "transfer_bytes": plan.get("transfer_bytes", []),
                }
            )
    return jobs


def measure_system(
    plan: dict[str, Any], pythons: dict[str, str], src: str, log: IO[str], work: Path
) -> dict[str, Any]:
    """Run a system and device's limits processes one after another, each in its
    environment's python (pythons: env -> interpreter as the workflow names it), and merge
    their records; a process that fails is a part that says so."""
    started = time.perf_counter()
    parts = []
    for i, job in enumerate(system_jobs(plan)):
        job = {**job, "out": str(work / f"part{i}.json")}
        log.write(f"limits: {job['env']} at {job['threads']} thread(s)\n")
        log.flush()
        proc = subprocess.run(
            command(interpreter(pythons[job["env"]]), MODULE, json.dumps(job)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": src},
        )
        if proc.returncode:
            parts.append({"job": job, "failed": f"exit {proc.returncode} (see the log)"})
        else:
            parts.append(json.loads(Path(job["out"]).read_text()))
    gemm = [{**row, "env": part["job"]["env"]} for part in parts for row in part.get("gemm", [])]
    return {
        "system": plan["system"],
        "device": plan["device"],
        "threads": plan["threads"][0],
        "repeats": plan.get("repeats", REPEATS),
        "gemm": gemm,
        "memory": next((p["memory"] for p in parts if p.get("memory")), None),
        "cuda": next((p["cuda"] for p in parts if p.get("cuda")), None),
        "failed": [
            f"{p['job']['env']} at {p['job']['threads']}: {p['failed']}"
            for p in parts
            if "failed" in p
        ],
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str]) -> int:
    text = launch.job_argument(argv, "reproscope.runtime.limits")
    if text is None:
        return 2
    job = json.loads(text)
    record = run_limits(job)
    out = Path(job["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(record, indent=1, sort_keys=True) + "\n")
    for row in record["gemm"]:
        figure = f"{row['gflops']:.1f} GFLOP/s" if row["status"] == "ok" else row["reason"]
        if row.get("attempts", 1) > 1:
            figure += f" (best of {row['attempts']} attempts; disturbed: {row['disturbed']})"
        print(f"{row['framework']} n={row.get('n', '-')} {row['threads']} thread(s): {figure}")
    print(f"limits: {record['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
