"""Plots: the seed's Figure 1 (latency and throughput against batch size) and accuracy vs claim."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reproscope.report.compare import log_mean_ci  # noqa: E402


def _round_ci(values: pd.Series) -> tuple[float, float, float]:
    """Centre over rounds and its 95 % CI (report.compare's method); one round: no bar."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return (float("nan"),) * 3
    centre, low, high = log_mean_ci(list(values))
    return (centre, centre, centre) if np.isnan(low) else (centre, low, high)


def latency_throughput(runs: pd.DataFrame, out: Path) -> None:
    """FixedBatch runs (the seed paper's Figure 1): geometric mean over rounds with its 95 % CI;
    red crosses mark unstable or noisy runs; the third panel is achieved / measured peak."""
    ok = runs[(runs["status"] == "ok") & (runs["scenario"] == "FixedBatch")]
    fig, (ax_lat, ax_tp, ax_peak) = plt.subplots(1, 3, figsize=(17, 4.5))
    keys = ["model", "framework", "env", "device", "system"]
    for key, group in ok.groupby(keys):
        rows = []
        for bs, at in group.groupby("batch_size"):
            p50 = _round_ci(at["latency_ms_p50"])
            tp = _round_ci(at["throughput_ips"])
            fraction = pd.to_numeric(at.get("peak_fraction"), errors="coerce").median()
            flagged = (
                at["unstable"].astype(bool).any()
                or at.get("noisy", pd.Series(False)).astype(bool).any()
            )
            rows.append((bs, *p50, *tp, fraction, flagged))
        per_bs = pd.DataFrame(
            rows, columns=["bs", "p50", "p50_lo", "p50_hi", "tp", "tp_lo", "tp_hi", "peak", "bad"]
        ).set_index("bs")
        label = "/".join(map(str, key))
        x = per_bs.index
        for ax, col in ((ax_lat, "p50"), (ax_tp, "tp")):
            ax.errorbar(
                x,
                per_bs[col],
                yerr=[per_bs[col] - per_bs[f"{col}_lo"], per_bs[f"{col}_hi"] - per_bs[col]],
                marker="o",
                capsize=3,
                label=label,
            )
        ax_peak.plot(x, 100 * per_bs["peak"], marker="o", label=label)
        flagged = per_bs[per_bs["bad"]]
        ax_lat.scatter(flagged.index, flagged["p50"], marker="x", s=80, color="red", zorder=5)
    for ax, title, ylabel in (
        (ax_lat, "Latency per batch (p50, 95 % CI over rounds; x = unstable/noisy)", "ms"),
        (ax_tp, "Throughput (95 % CI over rounds)", "images/s"),
        (ax_peak, "Achieved share of the measured GEMM peak", "% of peak GFLOP/s"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    if len(ok):
        ax_tp.legend(fontsize=7, loc="best")
    _save(fig, out)


def latency_breakdown(runs: pd.DataFrame, out: Path) -> None:
    """Stacked median parts of one batch's end-to-end latency, per batch size and device."""
    parts = ["preprocess_ms", "h2d_ms", "compute_ms", "d2h_ms", "postprocess_ms"]
    columns = [f"breakdown_{p}" for p in parts]
    ok = runs[(runs["status"] == "ok") & (runs["scenario"] == "FixedBatch")]
    ok = ok.dropna(subset=columns)
    table = ok.groupby(["framework", "env", "device", "system", "batch_size"])[columns].median()
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(table) + 2), 4.8))
    bottom = pd.Series(0.0, index=table.index)
    for part, column in zip(parts, columns, strict=True):
        ax.bar(range(len(table)), table[column], bottom=bottom, label=part.removesuffix("_ms"))
        bottom += table[column]
    ax.set_xticks(
        range(len(table)),
        [f"{fw}/{env}/{dev}/{sys_}\nbs {bs}" for fw, env, dev, sys_, bs in table.index],
        fontsize=6,
        rotation=90,
    )
    ax.set_ylabel("ms per batch")
    ax.set_title("End-to-end latency breakdown (CPU: copies are zero)")
    ax.legend(fontsize=8)
    _save(fig, out)


def accuracy_vs_claim(accuracy: pd.DataFrame, out: Path) -> None:
    ok = accuracy[(accuracy["status"] == "ok") & accuracy["top1"].notna()].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(ok) + 2), 4.5))
    labels = [f"{r.manifest}\n{r.env}/{r.device}/{r.system}" for r in ok.itertuples()]
    x = range(len(ok))
    ax.bar([i - 0.2 for i in x], ok["top1"], width=0.4, label="measured top-1")
    ax.bar([i + 0.2 for i in x], ok["claimed_top1"], width=0.4, label="claimed / reference top-1")
    for i, r in enumerate(ok.itertuples()):
        ax.annotate(
            f"{r.top1:.1f}\n({r.delta_top1:+.1f})",
            (i - 0.2, r.top1),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 105)
    dataset = ok["dataset"].iloc[0] if len(ok) else "?"
    ax.set_title(f"Accuracy on {dataset} against the claim")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, out)


def ablation_deltas(variants: pd.DataFrame, out: Path) -> None:
    """Horizontal bars of top-1 change per variant against its base, sorted; hatched when
    the exact McNemar test finds no significant difference."""
    ok = variants[variants["top1"].notna()].sort_values("delta_top1")
    fig, ax = plt.subplots(figsize=(8, max(3, 0.32 * len(ok) + 1.5)))
    labels = [f"{r.variant} ({r.kind}, {r.framework})" for r in ok.itertuples()]
    colours = ["tab:red" if d < 0 else "tab:green" for d in ok["delta_top1"]]
    bars = ax.barh(range(len(ok)), ok["delta_top1"], color=colours)
    for bar, significant in zip(bars, ok["significant"], strict=True):
        if not bool(significant):
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    ax.set_yticks(range(len(ok)), labels, fontsize=7)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("top-1 change against the base manifest (points); hatched: not significant")
    ax.set_title("Effect of each evaluation choice")
    _save(fig, out)


def system_ranking(table: pd.DataFrame, out: Path) -> None:
    """Per pair of systems: time of b over a by compute alone and end to end against batch
    size; below 1 b is faster. Red rings mark batch sizes where the two rankings disagree."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    pairs = ["model", "framework", "system_a", "device_a", "env_a", "system_b", "device_b", "env_b"]
    for key, group in table.groupby(pairs):
        model, framework, sa, da, _ea, sb, db, _eb = key
        label = f"{model}/{framework}: {sb}/{db} over {sa}/{da}"
        group = group.sort_values("batch_size")
        x = group["batch_size"]
        compute = group["compute_ms_b"] / group["compute_ms_a"]
        e2e = group["end_to_end_ms_b"] / group["end_to_end_ms_a"]
        (line,) = ax.plot(x, e2e, marker="o", label=f"{label} (end to end)")
        ax.plot(
            x,
            compute,
            marker="s",
            linestyle="--",
            color=line.get_color(),
            label=f"{label} (compute)",
        )
        flagged = group["rankings_disagree"].astype(bool)
        ax.scatter(x[flagged], e2e[flagged], s=160, facecolors="none", edgecolors="red", zorder=5)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("time of b / time of a")
    ax.set_title("Whole-system check: compute-only vs end-to-end ranking (red: disagree)")
    ax.grid(True, which="both", alpha=0.3)
    if len(table):
        ax.legend(fontsize=7, loc="best")
    _save(fig, out)


def _save(fig: plt.Figure, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
