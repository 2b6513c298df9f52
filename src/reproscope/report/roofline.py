"""The roofline: every timing point against the machine's measured limits, and the limit
that accounts for a ranking that compute alone gets wrong.

The limits (results/limits/<system>/<device>.json, reproscope.runtime.limits) become one
row of ``limits.csv`` per system and device: the best float32 GEMM over the study's
framework environments at the system's thread count and at 1 thread, with the framework
and shape that reached it; the theoretical peak where the CPU states it; the host memory
bandwidth; on CUDA the device memory bandwidth and the interconnect (H2D, D2H, pinned and
pageable).

A timing point's bound is ``min(compute roof, intensity x memory roof)``, with the
arithmetic intensity counted from the ONNX graph (reproscope.report.flops: FLOPs over the
bytes of the weights plus every activation read and written, at the point's batch size).
``roofline_share = achieved / bound``. A point above its bound gets no share: the limits
were measured as the best of several repeats of every size and framework (the re-measure),
and a point that still beats them says ``above measured limit`` with both figures. Limits
are not measured again after the timing rounds: a job cannot re-run its own input in the
workflow, and the figures of both measurements stand in the row for the reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reproscope.errors import InputError

WITHIN = "within measured limit"
ABOVE = "above measured limit"
NO_LIMIT = "no measured limit"
NOT_ACHIEVED = "no achieved GFLOP/s (not run, or no FLOP count)"
UNKNOWN = "unknown"

LIMITS_COLUMNS = [
    "system",
    "device",
    "threads",
    "gemm_gflops",
    "gemm_framework",
    "gemm_env",
    "gemm_shape",
    "gemm_spread",
    "gemm_1thread_gflops",
    "gemm_1thread_framework",
    "gemm_1thread_env",
    "gemm_1thread_shape",
    "gemm_1thread_spread",
    "gemm_disturbed",
    "theoretical_peak_gflops",
    "theoretical_peak",
    "memory_bandwidth_gbps",
    "memory_spread",
    "memory_method",
    "device_memory_gbps",
    "h2d_pinned_gbps",
    "h2d_pageable_gbps",
    "d2h_pinned_gbps",
    "d2h_pageable_gbps",
    "interconnect_by_batch",
    "repeats",
    "gemm_sweep",
    "method",
    "failed",
    "seconds",
]


# ----------------------------------------------------------------------------- limits


def best_gemm(rows: list[dict[str, Any]], threads: int) -> dict[str, Any] | None:
    """The fastest measured GEMM at a thread count, over frameworks, environments, sizes."""
    ok = [r for r in rows if r.get("status") == "ok" and r["threads"] == threads]
    return max(ok, key=lambda r: r["gflops"]) if ok else None


def limits_row(record: dict[str, Any], theoretical: tuple[float | None, str]) -> dict[str, Any]:
    """One row of limits.csv from a system and device's limits record; theoretical is
    (peak GFLOP/s or None, how or why not) for the system's thread count."""
    row: dict[str, Any] = {k: record.get(k) for k in ("system", "device", "threads", "repeats")}
    bests = []
    for prefix, threads in (("gemm", record["threads"]), ("gemm_1thread", 1)):
        best = best_gemm(record["gemm"], threads)
        bests.append(best)
        row.update(
            {
                f"{prefix}_gflops": best["gflops"] if best else None,
                f"{prefix}_framework": best["framework"] if best else None,
                f"{prefix}_env": best["env"] if best else None,
                f"{prefix}_shape": f"{best['n']}x{best['n']}x{best['n']}" if best else None,
                f"{prefix}_spread": best["spread"] if best else None,
            }
        )
    # a peak whose best attempt was disturbed is low: every bound from it is too
    row["gemm_disturbed"] = (
        "; ".join(
            f"{best['framework']}@{best['threads']}t n={best['n']}: {best['disturbed']}"
            for best in {id(b): b for b in bests if b and b.get("disturbed")}.values()
        )
        or None
    )
    peak, how = theoretical
    row["theoretical_peak_gflops"] = peak
    row["theoretical_peak"] = how if peak is not None else f"{UNKNOWN}: {how}"
    memory = record.get("memory") or {}
    row["memory_bandwidth_gbps"] = memory.get("bandwidth_gbps")
    row["memory_spread"] = memory.get("spread")
    row["memory_method"] = memory.get("method")
    cuda = record.get("cuda") or {}
    row["device_memory_gbps"] = cuda.get("device_memory_gbps")
    for kind in ("h2d_pinned", "h2d_pageable", "d2h_pinned", "d2h_pageable"):
        row[f"{kind}_gbps"] = cuda.get(f"{kind}_gbps")
    by_batch: dict[str, dict[str, float]] = {}
    for t in cuda.get("transfers", []):
        kind = f"{t['direction']}_{'pinned' if t['pinned'] else 'pageable'}_gbps"
        by_batch.setdefault(str(t["bytes"]), {})[kind] = round(t["gbps"], 3)
    row["interconnect_by_batch"] = json.dumps(by_batch, sort_keys=True) if by_batch else None
    row["gemm_sweep"] = " ".join(
        f"{r['framework']}@{r['threads']}t:n{r.get('n', '-')}="
        + (f"{r['gflops']:.1f}" if r.get("status") == "ok" else r.get("status", "?"))
        for r in record["gemm"]
    )
    cuda_how = cuda.get("device_memory_method") or cuda.get("reason")
    row["method"] = "; ".join(
        filter(
            None,
            [
                f"float32 GEMM, best of {record.get('repeats')} per size and framework",
                "sizes over the time budget skipped (gemm_sweep)",
                cuda_how and f"CUDA: {cuda_how}",
            ],
        )
    )
    row["failed"] = "; ".join(record.get("failed", [])) or None
    row["seconds"] = record.get("seconds")
    return row


def limits_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LIMITS_COLUMNS).sort_values(
        ["system", "device"], ignore_index=True
    )


def roofs(limits: pd.Series) -> tuple[float | None, float | None]:
    """(compute roof GFLOP/s, memory roof GB/s) of a limits row: on CUDA the device's."""
    compute = _number(limits.get("gemm_gflops"))
    column = "device_memory_gbps" if limits.get("device") == "cuda" else "memory_bandwidth_gbps"
    return compute, _number(limits.get(column))


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


# ----------------------------------------------------------------------------- roofline


def traffic(flops_files: list[str]) -> dict[str, dict[str, float]]:
    """Per model, from its operation count (counted at one batch size): FLOPs, activation
    and input bytes per image, and weight bytes per batch (read once whatever its size)."""
    out = {}
    for path in flops_files:
        counted = json.loads(Path(path).read_text())
        if "activation_bytes" not in counted:
            raise InputError(
                path,
                "activation_bytes",
                "the operation count predates byte counting, so no intensity can be derived",
                "re-count it: snakemake --forcerun count_flops",
            )
        per = counted["batch_size"]
        out[counted["model"]] = {
            "flops_per_image": counted["flops"] / per,
            "activation_bytes_per_image": counted["activation_bytes"] / per,
            "input_bytes_per_image": counted["input_bytes"] / per,
            "weight_bytes": counted["weight_bytes"],
        }
    return out


def bound(intensity: float, compute: float | None, bandwidth: float | None) -> tuple[float, str]:
    """The roofline's bound in GFLOP/s at an arithmetic intensity (FLOP/byte), and which
    roof sets it."""
    memory = intensity * bandwidth if bandwidth else math.inf
    compute = compute or math.inf
    return (compute, "compute") if compute <= memory else (memory, "memory")


def share_and_status(achieved: float | None, limit: float | None) -> tuple[float | None, str]:
    """achieved / limit, never above 1: a point above its bound has no share and says so
    with both figures."""
    if limit is None or not math.isfinite(limit):
        return None, NO_LIMIT
    if achieved is None or not math.isfinite(achieved):
        return None, NOT_ACHIEVED
    if achieved > limit:
        return None, f"{ABOVE}: achieved {achieved:.2f} GFLOP/s, bound {limit:.2f} GFLOP/s"
    return achieved / limit, WITHIN


ROOFLINE_COLUMNS = [
    "input_bytes_per_image",
    "predicted_h2d_ms",
    "bytes_per_batch",
    "arithmetic_intensity",
    "compute_roof_gflops",
    "memory_roof_gbps",
    "bound_gflops",
    "bound_by",
    "roofline_share",
    "roofline_status",
]


def add_roofline(runs: pd.DataFrame, limits: pd.DataFrame, flops_files: list[str]) -> pd.DataFrame:
    """runs with each point's intensity, roofs, bound, share (<= 1) and status, and on
    CUDA its batch's predicted H2D time at the measured bandwidth."""
    counts = traffic(flops_files)
    by_config = {(r["system"], r["device"]): r for _, r in limits.iterrows()}
    rows = []
    for _, run in runs.iterrows():
        out = dict.fromkeys(ROOFLINE_COLUMNS)
        model = counts.get(run["model"])
        limit = by_config.get((run["system"], run["device"]))
        if model is not None:
            bs = int(run["batch_size"])
            moved = model["weight_bytes"] + bs * model["activation_bytes_per_image"]
            out["input_bytes_per_image"] = model["input_bytes_per_image"]
            out["bytes_per_batch"] = moved
            out["arithmetic_intensity"] = bs * model["flops_per_image"] / moved if moved else None
        if limit is not None and model is not None:
            # beside the measured breakdown_h2d_ms (CUDA only)
            batch_bytes = int(run["batch_size"]) * model["input_bytes_per_image"]
            out["predicted_h2d_ms"] = predicted_h2d_ms(batch_bytes, limit)
        if limit is None or out["arithmetic_intensity"] is None:
            out["roofline_status"] = NO_LIMIT
            rows.append(out)
            continue
        compute, bandwidth = roofs(limit)
        limit_gflops, by = bound(out["arithmetic_intensity"], compute, bandwidth)
        out.update(compute_roof_gflops=compute, memory_roof_gbps=bandwidth)
        out.update(bound_gflops=limit_gflops if math.isfinite(limit_gflops) else None)
        out["bound_by"] = by if math.isfinite(limit_gflops) else None
        share, status = share_and_status(_number(run.get("achieved_gflops")), limit_gflops)
        out.update(roofline_share=share, roofline_status=status)
        rows.append(out)
    added = pd.DataFrame(rows, columns=ROOFLINE_COLUMNS, index=runs.index)
    return pd.concat([runs.drop(columns=ROOFLINE_COLUMNS, errors="ignore"), added], axis=1)


# ----------------------------------------------------------------------------- rankings

COPIES = ["breakdown_h2d_ms", "breakdown_d2h_ms"]
HOST = ["breakdown_preprocess_ms", "breakdown_postprocess_ms"]
CONTESTANT = ["system", "device", "env"]
EXPLAIN_COLUMNS = ["predicted_h2d_ms_a", "predicted_h2d_ms_b", "limit_explaining", "explanation"]


def predicted_h2d_ms(batch_bytes: float, limits: pd.Series | None) -> float | None:
    """A batch's host-to-device copy at the measured bandwidth (pageable: what the runners
    copy from), at the measured size nearest the batch's, else the best over sizes."""
    if limits is None or limits.get("device") != "cuda":
        return None
    gbps = _number(limits.get("h2d_pageable_gbps"))
    by_batch = limits.get("interconnect_by_batch")
    if isinstance(by_batch, str) and by_batch:
        measured = {int(k): v for k, v in json.loads(by_batch).items()}
        if measured:
            nearest = min(measured, key=lambda b: abs(b - batch_bytes))
            gbps = _number(measured[nearest].get("h2d_pageable_gbps")) or gbps
    return batch_bytes / (gbps * 1e9) * 1e3 if gbps else None


def _parts(runs: pd.DataFrame) -> dict[tuple, dict[str, float]]:
    """Median breakdown of every (model, framework, batch size, system, device, env)."""
    columns = [c for c in [*COPIES, *HOST] if c in runs.columns]
    ok = runs[(runs["status"] == "ok") & (runs["scenario"] == "FixedBatch")]
    keys = ["model", "framework", "batch_size", *CONTESTANT]
    extra = ["input_bytes_per_image"] if "input_bytes_per_image" in ok.columns else []
    medians = ok.groupby(keys)[columns + extra].median(numeric_only=True)
    return {key: row.to_dict() for key, row in medians.iterrows()}


def explain_rankings(table: pd.DataFrame, runs: pd.DataFrame, limits: pd.DataFrame) -> pd.DataFrame:
    """The whole-system table with, per pair, each side's predicted H2D time (CUDA) and,
    where the two rankings disagree, the limit that accounts for it: the part outside
    compute in which the end-to-end winner gains most over the compute winner, named by
    the limit it is bound by (copies: interconnect; host pre- and post-processing:
    memory), with the measured limits of both sides."""
    parts = _parts(runs)
    by_config = {(r["system"], r["device"]): r for _, r in limits.iterrows()}
    rows = []
    for _, pair in table.iterrows():
        out: dict[str, Any] = dict.fromkeys(EXPLAIN_COLUMNS)
        side: dict[str, dict[str, Any]] = {}
        for s in "ab":
            contestant = tuple(pair[f"{k}_{s}"] for k in CONTESTANT)
            key = (pair["model"], pair["framework"], pair["batch_size"], *contestant)
            measured = parts.get(key, {})
            limit = by_config.get(contestant[:2])
            per_image = _number(measured.get("input_bytes_per_image"))
            predicted = (
                predicted_h2d_ms(pair["batch_size"] * per_image, limit) if per_image else None
            )
            out[f"predicted_h2d_ms_{s}"] = predicted
            side[s] = {"name": "/".join(map(str, contestant)), "parts": measured}
            side[s].update(limit=limit, predicted=predicted)
        if bool(pair.get("rankings_disagree")):
            out.update(_explain(pair, side))
        rows.append(out)
    added = pd.DataFrame(rows, columns=EXPLAIN_COLUMNS, index=table.index)
    return pd.concat([table.drop(columns=EXPLAIN_COLUMNS, errors="ignore"), added], axis=1)


def _time(parts: dict[str, float], columns: list[str], fallback: float | None = None) -> float:
    values = [_number(parts.get(c)) or 0.0 for c in columns]
    measured = sum(values)
    return measured if measured or fallback is None else fallback


def _explain(pair: pd.Series, side: dict[str, dict[str, Any]]) -> dict[str, str]:
    compute_winner = "a" if pair["faster_by_compute"] == side["a"]["name"] else "b"
    c, e = side[compute_winner], side["b" if compute_winner == "a" else "a"]
    lost = {
        "interconnect": _time(c["parts"], COPIES, c["predicted"])
        - _time(e["parts"], COPIES, e["predicted"]),
        "memory": _time(c["parts"], HOST) - _time(e["parts"], HOST),
    }
    name = max(lost, key=lost.get)
    if lost[name] <= 0:
        return {
            "limit_explaining": "compute",
            "explanation": (
                f"{e['name']} loses no time to {c['name']} outside compute: the rankings "
                "differ within compute's own round-to-round variation"
            ),
        }
    figure = {
        "interconnect": ("H2D pageable", "h2d_pageable_gbps", "GB/s"),
        "memory": ("host memory", "memory_bandwidth_gbps", "GB/s"),
    }[name]
    limits = [
        _number(x["limit"].get(figure[1])) if x["limit"] is not None else None for x in (c, e)
    ]
    measured = (
        f"; measured {figure[0]}: {_fmt(limits[0])} on {c['name']}, {_fmt(limits[1])} "
        f"{figure[2]} on {e['name']}"
        if any(limits)
        else ""
    )
    where = "copies (H2D + D2H)" if name == "interconnect" else "host pre- and post-processing"
    return {
        "limit_explaining": name,
        "explanation": (
            f"{c['name']} computes faster but spends {lost[name]:.3g} ms more per batch on "
            f"{where} than {e['name']}{measured}"
        ),
    }


def _fmt(value: float | None) -> str:
    return "unknown" if value is None or np.isnan(value) else f"{value:.3g}"


# ----------------------------------------------------------------------------- plot


def draw_roofline(ax: Any, runs: pd.DataFrame, limit: pd.Series) -> None:
    """One system and device's roofline on ax, log-log: the compute roof (best GEMM at the
    system's thread count; at 1 thread dashed; the theoretical peak dotted where the CPU
    states it), the memory roof (bandwidth x intensity), and every model x batch size point
    (median achieved GFLOP/s over rounds; a red cross: above its measured limit)."""
    at = runs[(runs["system"] == limit["system"]) & (runs["device"] == limit["device"])]
    needed = {"arithmetic_intensity", "achieved_gflops"}
    points = (
        at.dropna(subset=sorted(needed))
        .groupby(["model", "framework", "env", "batch_size"])[sorted(needed)]
        .median()
        .reset_index()
        if needed <= set(at.columns)
        else pd.DataFrame(columns=[*needed, "model", "framework", "env", "batch_size"])
    )
    compute, bandwidth = roofs(limit)
    xs = pd.to_numeric(points["arithmetic_intensity"], errors="coerce").dropna()
    low = float(xs.min()) / 4 if len(xs) else 1.0
    high = float(xs.max()) * 4 if len(xs) else 1000.0
    if compute and bandwidth:
        low = min(low, compute / bandwidth / 4)
        high = max(high, compute / bandwidth * 4)
    grid = np.geomspace(low, high, 200)
    if compute or bandwidth:
        roof = [bound(x, compute, bandwidth)[0] for x in grid]
        ax.plot(grid, roof, color="black", linewidth=2, label="measured roof")
    one = _number(limit.get("gemm_1thread_gflops"))
    if one and compute and one < compute:
        ax.plot(
            grid,
            [bound(x, one, bandwidth)[0] for x in grid],
            "k--",
            linewidth=1,
            label=f"1 thread: {one:.0f} GFLOP/s",
        )
    theoretical = _number(limit.get("theoretical_peak_gflops"))
    if theoretical:
        ax.axhline(theoretical, color="grey", linestyle=":", label="theoretical peak")
    for (model, framework, env), group in points.groupby(["model", "framework", "env"]):
        ax.plot(
            group["arithmetic_intensity"],
            group["achieved_gflops"],
            marker="o",
            linestyle="-",
            alpha=0.8,
            label=f"{model}/{framework}/{env}",
        )
        for r in group.itertuples():
            ax.annotate(
                str(r.batch_size),
                (r.arithmetic_intensity, r.achieved_gflops),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
            limit_gflops, _ = bound(r.arithmetic_intensity, compute, bandwidth)
            if r.achieved_gflops > limit_gflops:
                ax.scatter(
                    [r.arithmetic_intensity],
                    [r.achieved_gflops],
                    marker="x",
                    s=80,
                    color="red",
                    zorder=5,
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved, from the ONNX graph)")
    ax.set_ylabel("GFLOP/s")
    roofs_text = f"GEMM {_fmt(compute)} GFLOP/s, memory {_fmt(bandwidth)} GB/s"
    ax.set_title(f"Roofline {limit['system']}/{limit['device']}: {roofs_text}", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
