"""Greedy multi-field diagnosis: fix the field that closes most of the gap to the claim,
then search again from the fixed manifest, so that several mis-stated fields are named.

Round 1 is the single-field ranking (reproscope.plan.ablation.rank_diagnosis over the
`diagnose:` variants the workflow runs as ordinary jobs). Each later round applies every
fix so far and tries again each field with a candidate that did not move the top-1 away
from the claim by more than the claim's tolerance in the round before. A change within
the tolerance is no evidence that the stated value is right: a field may only help once
another is fixed (a crop on top of the wrong resize), or its effect may not show on a
small set. Fields that clearly made things worse are not retried, which keeps a round to
a few accuracy passes.

The search goes on while a candidate closes part of the remaining gap, also inside the
tolerance (the tolerance decides whether the claim is reproduced, not which fields are
wrong; a fix found there is marked in_tolerance), and stops when the gap is closed, no
candidate closes more of it, or after max_rounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from reproscope.acquire.preprocess import build_cache, geometric_spec, spec_hash, spec_of
from reproscope.plan.ablation import apply_overrides, diagnosis_candidates, field_of
from reproscope.plan.jobs import variant_accuracy_job
from reproscope.report.aggregate import image_hits
from reproscope.runtime.atomic import remove_tree
from reproscope.runtime.cache import INDEX
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.launch import run_inference
from reproscope.runtime.layout import cache_chunks
from reproscope.runtime.tensorize import tensor_spec

Evaluate = Callable[[dict[str, dict[str, Any]]], dict[str, float]]


def greedy_diagnosis(
    base: dict[str, Any],
    round1: pd.DataFrame,
    measured_top1: float,
    claimed_top1: float,
    tolerance: float,
    evaluate: Evaluate,
    max_rounds: int = 3,
) -> pd.DataFrame:
    """One row per candidate tried after round 1 plus round 1's rows; `chosen` marks the
    fix of each round and `gap_closed` is in points against that round's starting top-1.

    round1 has columns variant, field, overrides (JSON), top1. evaluate maps
    {name: manifest data} to {name: top-1 %}.
    """
    rows = []
    current, data, fixed = measured_top1, base, []
    retry: set[str] = set()
    tried = round1.assign(overrides=round1["overrides"].map(_as_dict))
    for round_no in range(1, max_rounds + 1):
        if round_no > 1:
            named = {
                name: overrides
                for name, overrides in diagnosis_candidates(data).items()
                if field_of(overrides) in retry and field_of(overrides) not in fixed
            }
            if not named:
                break
            variants = {n: apply_overrides(data, o) for n, o in named.items()}
            scores = evaluate(variants)
            tried = pd.DataFrame(
                [
                    {"variant": n, "field": field_of(o), "overrides": o, "top1": scores[n]}
                    for n, o in named.items()
                ]
            )
        gap = abs(current - claimed_top1)
        tried = tried.assign(
            round=round_no,
            fixed=" + ".join(fixed),
            start_top1=current,
            in_tolerance=gap <= tolerance,
            gap_closed=gap - (tried["top1"] - claimed_top1).abs(),
        ).sort_values(["gap_closed", "variant"], ascending=[False, True], ignore_index=True)
        best = tried.iloc[0]
        improves = gap > 0 and best["gap_closed"] > 0
        tried["chosen"] = [improves and i == 0 for i in range(len(tried))]
        rows.append(tried)
        if not improves:
            break
        fixed.append(best["field"])
        data = apply_overrides(data, best["overrides"])
        current = float(best["top1"])
        retry = set(tried.loc[tried["gap_closed"] >= -tolerance, "field"])
    table = pd.concat(rows, ignore_index=True)
    table["overrides"] = table["overrides"].map(lambda o: json.dumps(o, sort_keys=True))
    return table


def _as_dict(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def accuracy_evaluator(
    job: dict[str, Any],
    python: str,
    src: str,
    index: dict[str, Any],
    labels: str,
    caches: Path,
    work: Path,
    workers: int,
    log: Any,
) -> Evaluate:
    """Top-1 of manifest variants, each by an accuracy pass in the base's environment
    (python as the workflow names it): a variant of job, the base's accuracy job, on a
    geometric cache: the study's own under caches/<spec hash> when its chunks exist, else
    one built under work and removed after the candidate's pass."""
    base = InferenceJob.from_dict(job)

    def evaluate(variants: dict[str, dict[str, Any]]) -> dict[str, float]:
        scores = {}
        for name, data in variants.items():
            spec = spec_of(data["inputs"])
            key = spec_hash(geometric_spec(data["inputs"]))
            cache = caches / key / INDEX
            built = None
            # absent, or its chunks removed once the variants that read them were done
            if not Path(cache_chunks(str(cache))).is_dir():
                built = cache = work / "caches" / key / INDEX
                paths = [Path(index["root"]) / f for f in index["files"]]
                build_cache(paths, spec, cache.parent, workers=workers)
            out = work / "runs" / name
            out.mkdir(parents=True, exist_ok=True)
            variant = variant_accuracy_job(
                base, name, str(cache), tensor_spec(spec), data["outputs"]["top_k"], str(out)
            )
            run_inference(python, variant.to_dict(), src, log, check=True)
            if built is not None:  # one candidate's pixels on disk at a time
                remove_tree(built.parent)
            record = json.loads((out / "accuracy.json").read_text())
            if record["status"] != "ok":
                scores[name] = float("nan")
            else:
                info = {"labels": labels, "label_offset": data["outputs"]["label_offset"]}
                hits, _ = image_hits(out / "accuracy.json", index, info)
                scores[name] = 100.0 * float(hits.mean())
            log.write(f"{name}: top-1 {scores[name]:.2f}\n")
            log.flush()
        return scores

    return evaluate
