"""Which files a study asks the workflow for, and which names each rule makes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from reproscope.plan.study import Study
from reproscope.runtime import layout


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
        layout.plot("system_ranking.png"),
        layout.plot("latency_throughput.png"),
        layout.plot("accuracy_vs_claim.png"),
        layout.plot("latency_breakdown.png"),
        *(variants if study.variants else []),
    ]
