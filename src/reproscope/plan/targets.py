"""Which files a study asks the workflow for, and which names each rule makes."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from reproscope.plan.study import Study, timing_points
from reproscope.runtime import layout
from reproscope.runtime.limits import GEMM_BUDGET_S

FULL_BUDGET_AT_S = 0.25


def names_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly names (none: a pattern nothing matches)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


def sourced(study: Study, kind: str) -> list[str]:
    """The needed manifests whose source is of kind (derived, random_init)."""
    return [n for n in study.needed_manifests() if kind in study.manifest(n).source]


def fetched(study: Study) -> list[str]:
    """The needed manifests whose artifact is downloaded."""
    made = {*sourced(study, "derived"), *sourced(study, "random_init")}
    return [n for n in study.needed_manifests() if n not in made]


def flops_files(study: Study) -> list[str]:
    """An operation count per model, from the first ONNX artifact of each model family."""
    found: dict[str, str] = {}
    for name in study.needed_manifests():
        m = study.manifest(name)
        if m.artifact_suffix == "onnx" and name in study.settings["models"]:
            found.setdefault(m.model, layout.flops(name))
    return sorted(found.values())


def limits_points(study: Study) -> list[tuple[str, str]]:
    """(system, device) of every timing job: each gets one limits job."""
    jobs = study.jobs
    if not len(jobs):
        return []
    timed = jobs[jobs["mode"] == "latency"]
    return sorted(set(zip(timed["system"], timed["device"], strict=True)))


def limits_plan(study: Study, system: str, device: str) -> dict[str, Any]:
    """What a system and device's limits job measures: the thread counts (the system's and,
    on the CPU, 1), each environment its timing jobs use with their frameworks, on CUDA the
    bytes of one input batch at each of the study's batch sizes (its largest input), and
    the GEMM sweeps' time budget: reproscope.runtime.limits.GEMM_BUDGET_S for a study
    whose points last FULL_BUDGET_AT_S or more (timing.min_duration_s), less in proportion."""
    jobs = study.jobs
    timed = jobs[
        (jobs["mode"] == "latency") & (jobs["system"] == system) & (jobs["device"] == device)
    ]
    envs: dict[str, list[str]] = {}
    for env, framework in sorted(set(zip(timed["env"], timed["framework"], strict=True))):
        envs.setdefault(env, []).append(framework)
    threads = study.threads_of(system)
    image_bytes = max(
        (_input_bytes(study.manifest(name).inputs) for name in set(timed["manifest"])), default=0
    )
    sizes = sorted({bs for _, bs in timing_points(study.settings)})
    # A quick study (points of a few tens of ms) gets quick limits too.
    quick = min(1.0, study.settings["timing"]["min_duration_s"] / FULL_BUDGET_AT_S)
    return {
        "system": system,
        "device": device,
        "budget_s": GEMM_BUDGET_S * quick,
        # on CUDA the host's thread count does not bound the device's GEMM
        "threads": sorted({threads, 1}, reverse=True) if device == "cpu" else [threads],
        "envs": envs,
        "transfer_bytes": [bs * image_bytes for bs in sizes] if device == "cuda" else [],
    }


def _input_bytes(inputs: dict[str, Any]) -> int:
    """One image's input tensor: 3 channels of the manifest's size in its dtype."""
    return 3 * math.prod(inputs["size"]) * {"float32": 4, "float16": 2}[inputs["dtype"]]


def all_outputs(study: Study) -> list[str]:
    """The study's tables and plots: the workflow's default target."""
    variants = [
        layout.summary("ablations.csv"),
        layout.summary("diagnosis.csv"),
        *([layout.summary("diagnosis_greedy.csv")] if study.config.get("diagnose") else []),
        layout.plot("ablations.png"),
    ]
    return [
        *map(layout.summary, ("runs.csv", "accuracy.csv", "agreement.csv")),
        *map(layout.summary, ("repeats.csv", "environments.csv", "comparisons.csv")),
        layout.summary("system_ranking.csv"),
        layout.summary("limits.csv"),
        layout.plot("system_ranking.png"),
        layout.plot("comparisons_forest.png"),
        layout.plot("latency_throughput.png"),
        layout.plot("accuracy_vs_claim.png"),
        layout.plot("latency_breakdown.png"),
        *(
            [layout.server_latency_plot()]
            if "Server" in study.settings.get("scenarios", [])
            else []
        ),
        *(variants if study.variants else []),
    ]
