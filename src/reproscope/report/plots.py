"""Plots: the seed's Figure 1 (latency and throughput against batch size) and accuracy vs claim."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reproscope.report.compare import log_mean_ci  # noqa: E402
from reproscope.report.roofline import draw_roofline  # noqa: E402
from reproscope.runtime.atomic import replacing  # noqa: E402


def _round_ci(values: pd.Series) -> tuple[float, float, float]:
    """Centre over rounds and its 95 % CI (report.compare's method); one round: no bar."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return (float("nan"),) * 3
    centre, low, high = log_mean_ci(list(values))
    return (centre, centre, centre) if np.isnan(low) else (centre, low, high)


def latency_throughput(runs: pd.DataFrame, out: Path, limits: pd.DataFrame | None = None) -> None:
    """FixedBatch runs (the seed paper's Figure 1): geometric mean over rounds with its 95 % CI;
    red crosses mark unstable or noisy runs; then a log-log roofline per system and device
    of limits (reproscope.report.roofline.draw_roofline)."""
    ok = runs[(runs["status"] == "ok") & (runs["scenario"] == "FixedBatch")]
    limits = limits if limits is not None else pd.DataFrame(columns=["system", "device"])
    panels = 2 + len(limits)
    fig, axes = plt.subplots(1, panels, figsize=(5.7 * panels, 4.5), squeeze=False)
    ax_lat, ax_tp = axes[0][:2]
    for ax, (_, limit) in zip(axes[0][2:], limits.iterrows(), strict=True):
        draw_roofline(ax, ok, limit)
    keys = CONFIG_KEYS
    labels, common = config_labels(ok, keys)
    for key, group in ok.groupby(keys):
        rows = []
        for bs, at in group.groupby("batch_size"):
            p50 = _round_ci(at["latency_ms_p50"])
            tp = _round_ci(at["throughput_ips"])
            flagged = (
                at["unstable"].astype(bool).any()
                or at.get("noisy", pd.Series(False)).astype(bool).any()
            )
            rows.append((bs, *p50, *tp, flagged))
        per_bs = pd.DataFrame(
            rows, columns=["bs", "p50", "p50_lo", "p50_hi", "tp", "tp_lo", "tp_hi", "bad"]
        ).set_index("bs")
        label = labels[key]
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
        flagged = per_bs[per_bs["bad"]]
        ax_lat.scatter(flagged.index, flagged["p50"], marker="x", s=80, color="red", zorder=5)
    for ax, title, ylabel in (
        (ax_lat, "Latency per batch (p50, 95 % CI over rounds; x = unstable/noisy)", "ms"),
        (ax_tp, "Throughput (95 % CI over rounds)", "images/s"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        log_if_decades(ax)
    if len(ok):
        ax_lat.scatter([], [], marker="x", s=80, color="red", label="unstable or noisy")
        for ax in (ax_lat, ax_tp):
            ax.legend(fontsize=7, loc="best")
    if common:
        fig.suptitle(common, fontsize=10)
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
    keys = ["framework", "env", "device", "system"]
    labels, common = config_labels(table.index.to_frame(index=False), keys)
    ax.set_xticks(
        range(len(table)),
        [f"{labels[key[:-1]]}\nbs {key[-1]}" for key in table.index],
        fontsize=6,
        rotation=90,
    )
    ax.set_ylabel("ms per batch")
    title = "End-to-end latency breakdown (CPU: copies are zero)"
    ax.set_title(title + (f"\n{common}" if common else ""))
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
    size (over every round: report.ranking); below 1 b is faster. Red rings mark batch sizes
    where the two rankings disagree."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    pairs = ["model", "framework", "system_a", "device_a", "env_a", "system_b", "device_b", "env_b"]
    for key, group in table.groupby(pairs):
        model, framework, sa, da, _ea, sb, db, _eb = key
        label = f"{model}/{framework}: {sb}/{db} over {sa}/{da}"
        group = group.sort_values("batch_size")
        x = group["batch_size"]
        compute = group["compute_ratio_b_over_a"]
        e2e = group["end_to_end_ratio_b_over_a"]
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


#: What a comparison's label names of each side, by its kind (a framework pair compares
#: manifests: a model may have several in one framework).
_COMPARED = {"environment": "env", "framework": "manifest", "system": "system", "device": "device"}
_OUTCOME_COLOURS = {
    "faster beyond margin": "tab:green",
    "real difference, faster": "yellowgreen",
    "equivalent": "tab:blue",
    "real difference, slower": "orange",
    "slower beyond margin": "tab:red",
    "inconclusive": "tab:gray",
    "not enough rounds": "lightgray",
}


def comparisons_forest(comparisons: pd.DataFrame, out: Path, margin: float) -> None:
    """Forest plot of every comparison: ratio B/A with its 95 % CI (thin) and 90 % CI
    (thick), the margin band [1/(1+m), 1+m] shaded, coloured by outcome."""
    rows = comparisons.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.28 * len(rows) + 1.8)))
    band = (1 / (1 + margin), 1 + margin)
    ax.axvspan(*band, color="tab:blue", alpha=0.08, label=f"margin +-{margin:.0%}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    labels = []
    for y, r in enumerate(rows.itertuples()):
        side = _COMPARED.get(r.kind, "env")
        where = r.model_a if side == "manifest" else f"{r.manifest_a} {r.env_a}"
        labels.append(
            f"{where} {r.scenario} bs{r.batch_size}: "
            f"{getattr(r, f'{side}_b')} / {getattr(r, f'{side}_a')}"
        )
        colour = _OUTCOME_COLOURS.get(r.verdict, "black")
        ax.plot([r.ci95_low, r.ci95_high], [y, y], color=colour, linewidth=1.2)
        ax.plot([r.ci90_low, r.ci90_high], [y, y], color=colour, linewidth=3.5)
        ax.plot([r.ratio_b_over_a], [y], marker="o", color=colour, markersize=4)
    for outcome, colour in _OUTCOME_COLOURS.items():
        if outcome in set(rows["verdict"]):
            ax.plot([], [], color=colour, linewidth=3.5, label=outcome)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel(
        "ratio B / A (latency: below 1 is faster; throughput, rate: above 1 is faster)\n"
        "thin: 95 % CI, thick: 90 % CI (TOST)"
    )
    ax.set_title("Every comparison against the margin")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    if len(rows):
        ax.legend(fontsize=7, loc="best")
    _save(fig, out)


#: The fields that tell one measured configuration from another.
CONFIG_KEYS = ["model", "framework", "env", "device", "system"]
#: A Server configuration: also its batch size (the SUT's largest batch).
SERVER_KEYS = [*CONFIG_KEYS, "batch_size"]


def config_labels(frame: pd.DataFrame, keys: list[str]) -> tuple[dict[tuple, str], str]:
    """Legend labels of the configurations in frame (by the values of keys, as groupby gives
    them) and the text they share. A field equal for every configuration goes into the shared
    text, not into each label; the framework is left out where the environment's name starts
    with it (pytorch in torch-2.13, onnxruntime in onnxruntime-1.30)."""
    configs = frame[keys].drop_duplicates()
    varying = [k for k in keys if configs[k].nunique() > 1] if len(configs) > 1 else keys

    def parts(values: dict[str, object], fields: list[str]) -> list[str]:
        env = str(values.get("env", ""))
        return [
            f"bs {values[k]}" if k == "batch_size" else str(values[k])
            for k in fields
            if not (k == "framework" and "env" in keys and _env_names(env, str(values[k])))
        ]

    labels = {}
    for row in configs.itertuples(index=False):
        values = dict(zip(keys, row, strict=True))
        labels[tuple(row)] = " / ".join(parts(values, varying))
    shared = [k for k in keys if k not in varying]
    common = (
        " / ".join(parts(dict(zip(keys, configs.iloc[0], strict=True)), shared))
        if (shared and len(configs))
        else ""
    )
    return labels, common


def _env_names(env: str, framework: str) -> bool:
    """Whether an environment's name already says the framework: torch-2.13 for pytorch."""
    return env.split("-")[0] in {framework, framework.removeprefix("py")}


def log_if_decades(ax: plt.Axes, axis: str = "y") -> None:
    """A log scale on a linear axis whose plotted (positive) values span a decade or more."""
    low, high = ax.dataLim.intervaly if axis == "y" else ax.dataLim.intervalx
    scale = ax.get_yscale() if axis == "y" else ax.get_xscale()
    if scale == "linear" and np.isfinite([low, high]).all() and 0 < low and high >= 10 * low:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def server_trials(records: list[dict]) -> pd.DataFrame:
    """One row per LoadGen run of the Server points' searches and confirmations, from the
    timing points' records (metrics.server_trials): the configuration, round, offered load
    (target_qps), p99 latency, validity, and the point's latency bound and percentile."""
    columns = [*SERVER_KEYS, "repeat", "target_qps", "p99_ms", "validity"]
    columns += ["latency_bound_ms", "latency_percentile"]
    rows = []
    for record in records:
        job, metrics = record["job"], record.get("metrics") or {}
        if job.get("scenario") != "Server":
            continue
        point = {k: job[k] for k in SERVER_KEYS} | {
            "repeat": job.get("repeat", 0),
            "latency_bound_ms": metrics.get("latency_bound_ms"),
            "latency_percentile": (job.get("server") or {}).get("latency_percentile"),
        }
        rows += [point | t for t in metrics.get("server_trials") or []]
    return pd.DataFrame(rows).reindex(columns=columns)


def server_latency_curve(trials: pd.DataFrame, out: Path) -> None:
    """p99 latency against offered load for every Server trial, one colour per configuration
    (a line per round, in order of load); open markers are runs LoadGen called INVALID, dashed
    lines the latency bounds."""
    trials = trials.dropna(subset=["target_qps", "p99_ms"])
    fig, ax = plt.subplots(figsize=(8.5, 5))
    labels, common = config_labels(trials, SERVER_KEYS)
    for key, config in trials.groupby(SERVER_KEYS):
        colour = None
        for _, run in config.groupby("repeat"):
            run = run.sort_values("target_qps")
            (line,) = ax.plot(
                run["target_qps"],
                run["p99_ms"],
                marker="o",
                color=colour,
                label=labels[key] if colour is None else None,
            )
            colour = line.get_color()
            invalid = run[run["validity"] != "VALID"]
            ax.scatter(
                invalid["target_qps"],
                invalid["p99_ms"],
                s=60,
                facecolors="white",
                edgecolors=colour,
                zorder=4,
            )
    bounds = trials.drop_duplicates(["latency_bound_ms", "latency_percentile"]).dropna(
        subset=["latency_bound_ms"]
    )
    for bound in bounds.itertuples():
        share = (
            f"p{100 * bound.latency_percentile:g} " if pd.notna(bound.latency_percentile) else ""
        )
        ax.axhline(
            bound.latency_bound_ms,
            color="black",
            linestyle="--",
            linewidth=0.8,
            label=f"latency bound ({share}{bound.latency_bound_ms:g} ms)",
        )
    if len(trials):
        ax.scatter([], [], s=60, facecolors="white", edgecolors="black", label="INVALID run")
        ax.legend(fontsize=7, loc="best")
        log_if_decades(ax, "x")
        log_if_decades(ax, "y")
    else:
        ax.text(0.5, 0.5, "no Server trials in this study", ha="center", transform=ax.transAxes)
    ax.set_xlabel("offered load (LoadGen target, queries/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("Server: latency against offered load" + (f"\n{common}" if common else ""))
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, out)


def _save(fig: plt.Figure, out: Path) -> None:
    fig.tight_layout()
    with replacing(out) as tmp:  # whole or not at all (a kill, a full disk)
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
