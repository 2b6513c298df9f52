"""Aggregate per-job results into tidy tables: runs, accuracy and cross-framework agreement."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reproscope.errors import InputError
from reproscope.plan.manifest import read_label_list
from reproscope.report.compare import (
    MIN_EFFECT,
    PAIRED,
    TEST_COLUMNS,
    UNPAIRED,
    clopper_pearson,
    paired_test,
    test_columns,
    welch_test,
    with_holm,
)
from reproscope.report.tables import rounded  # noqa: F401 (its former home: report.cli)
from reproscope.runtime import layout
from reproscope.runtime.rounds import SCENARIO_METRIC  # each scenario's figure
from reproscope.runtime.stats import trusted_percentile

RUN_STATS = [
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "std_ms",
    "cv",
    "iqr_over_median",
    "median_ci95_low_ms",
    "median_ci95_high_ms",
]


RUNS_FIRST = [
    "model",
    "framework",
    "env",
    "device",
    "system",
    "group",
    "scenario",
    "batch_size",
    "n_iterations",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "throughput_ips",
    "status",
]
ACCURACY_FIRST = [
    "model",
    "framework",
    "env",
    "device",
    "dataset",
    "n_images",
    "top1",
    "top5",
    "claimed_top1",
    "delta_top1",
    "comparison",
]


def _ordered(table: pd.DataFrame, first: list[str], by: list[str]) -> pd.DataFrame:
    """The issue's columns first, in its order, provenance columns after them; rows sorted
    by ``by``. A study without such jobs gets the header alone."""
    if table.empty:
        return pd.DataFrame(columns=first + [c for c in by if c not in first])
    ordered = table[first + [c for c in table.columns if c not in first]]
    return ordered.sort_values(by, ignore_index=True)


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    job, fp = record["job"], record.get("fingerprint", {})
    return {
        "model": job["model"],
        "manifest": job["manifest"],
        "framework": job["framework"],
        "env": job["env"],
        "device": job["device"],
        "system": job["system"],
        "hostname": fp.get("hostname"),
        "slurm_job_id": fp.get("slurm_job_id"),
        "cpu_model": fp.get("cpu_model"),
        "threads": job["threads"],
        "framework_version": record.get("runner", {}).get("framework_version"),
        "env_lock_sha256": record.get("env_lock_sha256"),
        "artifact_sha256": record.get("artifact_sha256"),
        "inputs_sha256": record.get("inputs_sha256"),
        # True only when a manifest opted in to loading a code-carrying pickle.
        "unsafe_pickle": bool(job.get("unsafe_pickle", False)),
    }


BREAKDOWN_PARTS = ["preprocess_ms", "h2d_ms", "compute_ms", "d2h_ms", "postprocess_ms"]


def runs_table(latency_files: list[str], flops_files: list[str] = ()) -> pd.DataFrame:
    """One row per timing job with its statistics, breakdown, resources and provenance.

    flops_files: per-model operation counts; they give achieved GFLOP/s per job.
    """
    flops = {}
    for path in flops_files:
        counted = _load(path)
        flops[counted["model"]] = counted["flops"] / counted["batch_size"]
    rows = []
    for path in latency_files:
        record = _load(path)
        job, metrics = record["job"], record.get("metrics", {})
        n_latencies = _latency_count(metrics)
        row = {
            **_identity(record),
            # the comparison group whose round jobs measured it (plan.jobs.timing_group)
            "group": job.get("group") or job["model"],
            "scenario": job.get("scenario", "FixedBatch"),
            "repeat": job.get("repeat", 0),
            "batch_size": job["batch_size"],
            "n_iterations": metrics.get("n_iterations"),
            "latency_ms_p50": metrics.get("p50_ms"),
            "latency_ms_p90": trusted_percentile(metrics.get("p90_ms"), n_latencies, 90),
            "latency_ms_p99": trusted_percentile(metrics.get("p99_ms"), n_latencies, 99),
            "throughput_ips": metrics.get("throughput_ips"),
            "status": record["status"],
            "reason": record["reason"],
        }
        row.update(
            {
                f"latency_{k}": metrics.get(k)
                for k in RUN_STATS
                if k not in ("p50_ms", "p90_ms", "p99_ms")
            }
        )
        noise = metrics.get("noise", {})
        row.update(
            loadgen_validity=metrics.get("validity"),
            loadgen_invalid_reason=metrics.get("invalid_reason"),
            early_stopping_p90_ms=metrics.get("early_stopping_p90_ms"),
            early_stopping_p99_ms=metrics.get("early_stopping_p99_ms"),
            loadgen_settings=json.dumps(metrics["settings"], sort_keys=True)
            if "settings" in metrics
            else None,
            sut=json.dumps(metrics["sut"], sort_keys=True) if "sut" in metrics else None,
            unstable=metrics.get("unstable"),
            stopped_by=metrics.get("stopped_by"),
            noisy=noise.get("noisy"),
            noise_reason=noise.get("noise_reason"),
            # settings of the timing process known to add noise (runtime.fingerprint)
            system_warnings="; ".join(record.get("fingerprint", {}).get("system_warnings") or [])
            or None,
            steal_share=noise.get("steal_share"),
            calibration_drift=noise.get("calibration_drift"),
            other_cpu_share=noise.get("other_cpu_share"),
            # re-measurement (reproscope.runtime.latency): attempts made, the one counted,
            # why the first was disturbed, and what still disturbed the counted one
            attempts=len(metrics["attempts"]) if "attempts" in metrics else None,
            counted_attempt=metrics.get("counted_attempt"),
            remeasured_because="; ".join(metrics["attempts"][0]["disturbed_reasons"])
            if len(metrics.get("attempts", ())) > 1
            else None,
            disturbed_reasons="; ".join(metrics.get("disturbed_reasons") or []) or None,
            remeasure_stopped=metrics.get("remeasure_stopped"),
            huge_pages=record.get("memory", {}).get("huge_pages"),
            thp_mode=record.get("memory", {}).get("thp_mode"),
            cpu_set=" ".join(map(str, record.get("fingerprint", {}).get("cpu_set") or [])),
            # LoadGen's completed samples/s of a VALID confirmation run, and the rate asked
            server_max_qps=metrics.get("server_max_qps"),
            server_target_qps=metrics.get("server_target_qps"),
            server_search_reason=metrics.get("server_search_reason"),
            mlperf_benchmark=metrics.get("mlperf_benchmark"),
            performance_sample_count=metrics.get("performance_sample_count"),
            samples_per_query=metrics.get("samples_per_query"),
            # every setting that departs from how an MLPerf submission runs
            deviations="; ".join(metrics["deviations"]) if "deviations" in metrics else None,
            server_bracket_qps=" ".join(f"{v:.4g}" for v in metrics["server_bracket_qps"] if v)
            if metrics.get("server_bracket_qps")
            else None,
            latency_bound_ms=metrics.get("latency_bound_ms"),
            timed_share=metrics.get("timed_share"),
            peak_rss_mb=record.get("peak_rss_bytes", 0) / 2**20,
            wall_s=record.get("wall_s"),
            intra_op_threads=record.get("runner", {}).get("intra_op_threads"),
            inter_op_threads=record.get("runner", {}).get("inter_op_threads"),
        )
        breakdown = metrics.get("breakdown", {})
        row.update({f"breakdown_{k}": breakdown.get(k) for k in BREAKDOWN_PARTS})
        gpu = metrics.get("gpu", {})
        row.update(
            gpu_memory_max_mb=(gpu.get("memory_used_max_bytes") or 0) / 2**20 or None,
            gpu_utilisation_pct=gpu.get("utilisation_mean_pct"),
            gpu_power_mean_w=gpu.get("power_mean_w"),
            energy_per_inference_j=gpu.get("energy_per_inference_j"),
            energy_method=gpu.get("energy_method"),
        )
        per_image = _flops_for(flops, record)
        throughput = metrics.get("throughput_ips")
        achieved = per_image * throughput / 1e9 if per_image and throughput else None
        peak = record.get("fingerprint", {}).get("peak_gflops")
        row.update(
            flops_per_image=per_image,
            achieved_gflops=achieved,
            peak_gflops=peak,
            peak_method=record.get("fingerprint", {}).get("peak_method"),
        )
        rows.append(row)
    return _ordered(
        pd.DataFrame(rows),
        RUNS_FIRST,
        by=["model", "framework", "env", "device", "system", "scenario", "batch_size", "repeat"],
    )


def _latency_count(metrics: dict[str, Any]) -> int | None:
    """How many latencies a run's percentiles come from: LoadGen's Offline times each
    sample of its one query; the other scenarios time queries."""
    if metrics.get("scenario") == "Offline" and "settings_effective" in metrics:
        return metrics["settings_effective"].get("effective_samples_per_query")
    return metrics.get("n") or metrics.get("query_count") or metrics.get("n_iterations")


def _flops_for(flops: dict[str, float], record: dict[str, Any]) -> float | None:
    """The model's count: FLOPs do not depend on the framework that runs them."""
    return flops.get(record["job"]["model"])


def repeats_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Median and spread of each configuration across its repeats."""
    ok = runs[runs["status"] == "ok"]
    keys = ["model", "framework", "env", "device", "system", "scenario", "batch_size"]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "repeats"])
    grouped = ok.groupby(keys)
    table = grouped.agg(
        repeats=("repeat", "count"),
        latency_ms_p50_median=("latency_ms_p50", "median"),
        latency_ms_p50_min=("latency_ms_p50", "min"),
        latency_ms_p50_max=("latency_ms_p50", "max"),
        throughput_ips_median=("throughput_ips", "median"),
        throughput_ips_min=("throughput_ips", "min"),
        throughput_ips_max=("throughput_ips", "max"),
        any_unstable=("unstable", "any"),
    ).reset_index()
    table["latency_spread_pct"] = (
        100.0
        * (table["latency_ms_p50_max"] - table["latency_ms_p50_min"])
        / table["latency_ms_p50_median"]
    )
    return table


def environments_table(comparisons: pd.DataFrame, agreement: pd.DataFrame) -> pd.DataFrame:
    """The same manifest in two environments: the FixedBatch latency ratios and verdicts of
    comparisons.csv, with the two environments' prediction agreement."""
    rows = []
    envs = comparisons[
        (comparisons["kind"] == "environment") & (comparisons["scenario"] == "FixedBatch")
    ]
    for c in envs.itertuples():
        pair = agreement[
            agreement["env_a"].isin([c.env_a, c.env_b])
            & agreement["env_b"].isin([c.env_a, c.env_b])
            & (agreement["framework_a"] == agreement["framework_b"])
        ]
        rows.append(
            {
                "manifest": c.manifest_a,
                "framework": c.framework_a,
                "device": c.device_a,
                "system": c.system_a,
                "env_a": c.env_a,
                "env_b": c.env_b,
                "batch_size": c.batch_size,
                "rounds": c.rounds,
                "latency_ms_p50_a": c.value_a,
                "latency_ms_p50_b": c.value_b,
                "latency_ratio_b_over_a": c.ratio_b_over_a,
                "ratio_ci95_low": c.ci95_low,
                "ratio_ci95_high": c.ci95_high,
                "verdict": c.verdict,
                "top1_agreement": pair["top1_agreement"].iloc[0] if len(pair) else None,
                "max_abs_logit_diff": pair["max_abs_logit_diff"].iloc[0] if len(pair) else None,
            }
        )
    columns = [
        "manifest",
        "framework",
        "device",
        "system",
        "env_a",
        "env_b",
        "batch_size",
        "rounds",
        "latency_ms_p50_a",
        "latency_ms_p50_b",
        "latency_ratio_b_over_a",
        "ratio_ci95_low",
        "ratio_ci95_high",
        "verdict",
        "top1_agreement",
        "max_abs_logit_diff",
        "logit_spread",
        "relative_max_abs_logit_diff",
        "distinct_top1_a",
    ]
    return pd.DataFrame(rows, columns=columns)


CONFIG = ["model", "manifest", "framework", "env", "device", "system"]


def pair_kind(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """What a study compares between two configurations, or None when they differ in more
    than that one respect."""
    same = {k: a[k] == b[k] for k in CONFIG}
    if same["manifest"] and same["device"] and same["system"] and not same["env"]:
        return "environment"
    if same["model"] and same["device"] and same["system"] and not same["framework"]:
        return "framework"
    if same["manifest"] and same["env"] and same["device"] and not same["system"]:
        return "system"
    if same["manifest"] and same["env"] and same["system"] and not same["device"]:
        return "device"
    return None


def comparisons_table(latency_files: list[str], min_effect: float = MIN_EFFECT) -> pd.DataFrame:
    """Every pair the study compares, at each scenario and batch size: the ratio B/A of
    their medians over paired rounds (the same comparison group on one system) or, between
    groups, unpaired (Welch on the logs of the per-round figures; ``pairing`` says which),
    its 95 % and 90 % CIs, its p-value and Holm's adjustment of it over every row, and the
    outcome against the margin ``min_effect`` (see reproscope.report.compare)."""
    measured: dict[tuple, dict[int, float]] = {}
    configs: dict[tuple, dict[str, Any]] = {}
    groups: dict[tuple, tuple[str, str]] = {}  # (system, comparison group) of each
    for path in latency_files:
        record = _load(path)
        job, metrics = record["job"], record.get("metrics", {})
        scenario = job.get("scenario", "FixedBatch")
        metric, _ = SCENARIO_METRIC[scenario]
        if record["status"] != "ok" or metrics.get(metric) is None:
            continue
        config = {k: job[k] for k in CONFIG}
        key = (*config.values(), scenario, job["batch_size"])
        configs[key] = config
        groups[key] = (job["system"], job.get("group") or job["model"])
        measured.setdefault(key, {})[job.get("repeat", 0)] = metrics[metric]
    pairs = []
    for key_a, key_b in itertools.combinations(sorted(measured), 2):
        kind = pair_kind(configs[key_a], configs[key_b]) if key_a[-2:] == key_b[-2:] else None
        # Paired by round only inside one round job's group on one system.
        paired = groups[key_a] == groups[key_b]
        rounds = sorted(set(measured[key_a]) & set(measured[key_b]))
        if kind is not None and (rounds or not paired):
            pairs.append((key_a, key_b, kind, rounds, paired))
    rows = []
    for key_a, key_b, kind, rounds, paired in pairs:
        a, b = configs[key_a], configs[key_b]
        scenario, batch_size = key_a[-2:]
        metric, lower_is_better = SCENARIO_METRIC[scenario]
        if paired:
            sides = [[measured[key][r] for r in rounds] for key in (key_a, key_b)]
            test = paired_test(*sides)
        else:
            sides = [list(measured[key].values()) for key in (key_a, key_b)]
            test = welch_test(*sides)
        rows.append(
            {
                "kind": kind,
                "pairing": PAIRED if paired else UNPAIRED,
                "scenario": scenario,
                "batch_size": batch_size,
                "metric": metric,
                **{f"{k}_a": a[k] for k in CONFIG},
                **{f"{k}_b": b[k] for k in CONFIG},
                "rounds": min(len(side) for side in sides),
                "value_a": float(np.median(sides[0])),
                "value_b": float(np.median(sides[1])),
                **test_columns(test, lower_is_better, min_effect),
            }
        )
    columns = ["kind", "pairing", "scenario", "batch_size", "metric"]
    configs = [f"{k}_{side}" for side in "ab" for k in CONFIG]
    return with_holm(rows, [*columns, *configs, "rounds", "value_a", "value_b", *TEST_COLUMNS])


def expected_indices(
    labels: list[str | int],
    label_list: list[str],
    offset: int,
    sources: list[str] | None = None,
    list_file: str = "the manifest's label list",
) -> np.ndarray:
    """Output index of each image's true class. A label is a class id (looked up in the
    model's label list) or a class index into that list (caffe's val.txt); one the list
    does not have is an error naming where the label was read."""
    position = {label: i for i, label in enumerate(label_list)}
    out = np.empty(len(labels), dtype=np.int64)
    for n, label in enumerate(labels):
        i = label if isinstance(label, int) else position.get(label, -1)
        if not 0 <= i < len(label_list):
            where = sources[n] if sources else f"image {n}"
            raise InputError(
                where,
                "label",
                f"label {label!r} is not in {list_file} ({len(label_list)} classes)",
                "fix the dataset's labels, or evaluate a model whose label list has the class",
            )
        out[n] = i + offset
    return out


def image_hits(
    result_path: str | Path, index: dict[str, Any], info: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: is the true class the top-1, and is it among the top-5 predictions."""
    topk = np.load(layout.topk_of(result_path))
    truth = expected_indices(
        index["labels"],
        read_label_list(Path(info["labels"])),
        info["label_offset"],
        index.get("label_sources"),
        info["labels"],
    )
    hits = topk == truth[:, None]
    return hits[:, 0], hits[:, :5].any(axis=1)


def claim_for(claims: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The number a result on dataset is compared with, and which comparison that is:
    the published claim when the study's dataset is the claim's own, else a reference
    measured on this dataset, else the published claim on its (different) dataset."""
    if claims["dataset"] == dataset:
        return {**claims, "comparison": "published claim, same dataset"}
    for reference in claims.get("references", []):
        if reference["dataset"] == dataset:
            return {**reference, "comparison": "reference on this dataset"}
    return {**claims, "comparison": f"published claim on {claims['dataset']}, other dataset"}


def accuracy_table(
    accuracy_files: list[str], index: dict[str, Any], manifests: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    rows = []
    for path in accuracy_files:
        record = _load(path)
        info = manifests[record["job"]["manifest"]]
        if info.get("claims") is None:
            rows.append(_not_applicable(record, index, path))
            continue
        claim = claim_for(info["claims"], index["dataset"])
        row = {
            **_identity(record),
            "dataset": index["dataset"],
            "dataset_digest": index["content_digest"],
            "n_images": None,
            "top1": None,
            "top5": None,
            **dict.fromkeys(ACCURACY_CI),
            "claimed_top1": claim["top1"],
            "claim_dataset": claim["dataset"],
            "claim_source": claim["source"],
            "comparison": claim["comparison"],
            "delta_top1": None,
            "tolerance": claim.get("tolerance"),
            "within_tolerance": None,
            "tolerance_check": None,
            "status": record["status"],
            "reason": record["reason"],
        }
        if record["status"] == "ok":
            top1_hits, top5_hits = image_hits(path, index, info)
            row["n_images"] = len(top1_hits)
            row["top1"] = 100.0 * top1_hits.mean()
            row["top5"] = 100.0 * top5_hits.mean()
            for k, hits in (("top1", top1_hits), ("top5", top5_hits)):
                low, high = clopper_pearson(int(hits.sum()), len(hits))
                row[f"{k}_ci95_low"], row[f"{k}_ci95_high"] = 100.0 * low, 100.0 * high
            row["delta_top1"] = row["top1"] - claim["top1"]
            if claim.get("tolerance") is not None and claim["dataset"] == index["dataset"]:
                row["within_tolerance"], row["tolerance_check"] = tolerance_check(
                    row["top1_ci95_low"], row["top1_ci95_high"], claim["top1"], claim["tolerance"]
                )
        rows.append(row)
    return _ordered(
        pd.DataFrame(rows), ACCURACY_FIRST, by=["model", "framework", "env", "device", "system"]
    )


#: The 95 % Clopper-Pearson interval of each accuracy, in %.
ACCURACY_CI = ["top1_ci95_low", "top1_ci95_high", "top5_ci95_low", "top5_ci95_high"]


def tolerance_check(
    low: float, high: float, claimed: float, tolerance: float
) -> tuple[bool | None, str]:
    """``within_tolerance`` and how it was decided: the measured top-1's 95 % interval
    ``[low, high]`` against the band ``claimed +- tolerance``. Inside it: True; wholly
    outside it: False (the claim is missed by more than its tolerance); overlapping its
    edge: None, the images cannot tell (1,000 images give about +-2.7 points)."""
    band = f"claim {claimed:g} +- {tolerance:g}"
    if claimed - tolerance <= low and high <= claimed + tolerance:
        return True, f"95 % CI of top1 inside {band}"
    if high < claimed - tolerance or low > claimed + tolerance:
        return False, f"95 % CI of top1 outside {band}"
    return None, f"undetermined: 95 % CI of top1 overlaps the edge of {band}"


NOT_APPLICABLE = "not applicable: random weights (source.random_init), performance only"


def _not_applicable(
    record: dict[str, Any], index: dict[str, Any], path: str | Path
) -> dict[str, Any]:
    """A performance-only manifest's accuracy row: it ran (its logits feed agreement.csv),
    but top-1 against labels means nothing for random weights."""
    return {
        **_identity(record),
        "dataset": index["dataset"],
        "dataset_digest": index["content_digest"],
        "n_images": len(np.load(layout.topk_of(path))) if record["status"] == "ok" else None,
        **dict.fromkeys(
            [
                *("top1", "top5", *ACCURACY_CI),
                *("claimed_top1", "claim_dataset", "delta_top1", "tolerance"),
            ]
        ),
        "claim_source": NOT_APPLICABLE,
        "comparison": NOT_APPLICABLE,
        "within_tolerance": None,
        "tolerance_check": None,
        "status": record["status"],
        "reason": record["reason"],
    }


def agreement_table(accuracy_files: list[str]) -> pd.DataFrame:
    """Every pair of successful accuracy runs of one model: same top-1 and logit distance."""
    runs = []
    for path in accuracy_files:
        record = _load(path)
        if record["status"] == "ok":
            runs.append((record["job"], Path(path)))
    rows = []
    for (job_a, path_a), (job_b, path_b) in itertools.combinations(runs, 2):
        if job_a["model"] != job_b["model"]:
            continue
        top_a, top_b = np.load(layout.topk_of(path_a)), np.load(layout.topk_of(path_b))
        logits_a = np.load(layout.logits_of(path_a))
        logits_b = np.load(layout.logits_of(path_b))
        same_shape = logits_a.shape == logits_b.shape
        rows.append(
            {
                "model": job_a["model"],
                "manifest_a": job_a["manifest"],
                "manifest_b": job_b["manifest"],
                "framework_a": job_a["framework"],
                "framework_b": job_b["framework"],
                "env_a": job_a["env"],
                "env_b": job_b["env"],
                "device_a": job_a["device"],
                "device_b": job_b["device"],
                "system_a": job_a["system"],
                "system_b": job_b["system"],
                "n_images": len(top_a),
                "top1_agreement": 100.0 * float(np.mean(top_a[:, 0] == top_b[:, 0])),
                "max_abs_logit_diff": float(np.max(np.abs(logits_a - logits_b)))
                if same_shape
                else None,
                # What the difference is measured against, and whether top-1 agreement
                # says anything (random weights can give every image the same class).
                "logit_spread": float(np.std(logits_a)),
                "relative_max_abs_logit_diff": float(
                    np.max(np.abs(logits_a - logits_b)) / np.std(logits_a)
                )
                if same_shape and np.std(logits_a) > 0
                else None,
                "distinct_top1_a": int(len(np.unique(top_a[:, 0]))),
            }
        )
    columns = [
        "model",
        "manifest_a",
        "manifest_b",
        "framework_a",
        "framework_b",
        "env_a",
        "env_b",
        "device_a",
        "device_b",
        "system_a",
        "system_b",
        "n_images",
        "top1_agreement",
        "max_abs_logit_diff",
        "logit_spread",
        "relative_max_abs_logit_diff",
        "distinct_top1_a",
    ]
    return pd.DataFrame(rows, columns=columns)
