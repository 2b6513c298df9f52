"""The result files a study's job table asks for, the job that writes each, and what
aggregation checks them against."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from reproscope.plan import jobs
from reproscope.plan.study import Study
from reproscope.runtime import layout
from reproscope.runtime.jobs import InferenceJob, digest

#: The job-table column that names a timing configuration's comparison group (its model:
#: reproscope.plan.jobs.timing_group).
GROUP = "model"
#: The job-table kinds of variant rows; each has its own table (compare_variants).
VARIANT_KINDS = ("ablation", "diagnosis")


def table_rows(rows: pd.DataFrame, *columns: str) -> Iterator[tuple[Any, ...]]:
    """The values of columns of job-table rows, row by row (each pandas column read whole:
    itertuples reads a string column one element at a time)."""
    return zip(*(rows[c].tolist() for c in columns), strict=True) if len(rows) else iter(())


def result_paths(rows: pd.DataFrame) -> list[str]:
    """The result file of each job-table row."""
    columns = ("mode", "system", "manifest", "env", "device")
    point = ("scenario", "batch_size", "repeat", GROUP)
    return [
        (
            layout.accuracy_result(*where)
            if mode == "accuracy"
            else layout.latency_result(*where, scenario, int(bs), int(repeat), group)
        )
        for mode, *where, scenario, bs, repeat, group in table_rows(rows, *columns, *point)
    ]


def beside(results: Iterable[str], of: Callable[[str], Path]) -> list[str]:
    """The files written beside accuracy results, of = layout.logits_of or layout.topk_of."""
    return [str(of(r)) for r in results]


class Results:
    """Every result of a study, its jobs built once (planning a big study builds tens of
    thousands)."""

    def __init__(self, study: Study) -> None:
        table = study.jobs
        self.table = table
        self.jobs: dict[str, InferenceJob] = {job.result_out: job for job in jobs.table_jobs(study)}
        self.latency_rows = table[table["mode"] == "latency"] if len(table) else table
        self.accuracy = self.accuracy_of(("study",))
        self.variants = self.accuracy_of(VARIANT_KINDS)
        self._variant_kinds = {name: v["kind"] for name, v in study.variants.items()}
        self._bases = {name: v["base"] for name, v in study.variants.items()}
        self.variant_bases: list[str] = self.bases_of(*VARIANT_KINDS)
        self.base_accuracy = self.accuracy_of(("study",), self.variant_bases)
        self.latency = result_paths(self.latency_rows)
        # The rounds' folders (one per system, comparison group and round): what consumers
        # of timing declare.
        rounds = set(table_rows(self.latency_rows, "system", GROUP, "repeat"))
        self.round_dirs = sorted(layout.round_dir(s, g, int(r)) for s, g, r in rounds)
        self.timed_systems: list[str] = sorted({s for s, _, _ in rounds})
        #: system -> its comparison groups
        self.groups: dict[str, list[str]] = {
            s: sorted({g for s2, g, _ in rounds if s2 == s}) for s in self.timed_systems
        }

    def accuracy_of(
        self, kinds: tuple[str, ...], manifests: Iterable[str] | None = None
    ) -> list[str]:
        """The accuracy results of job-table rows of kinds (study, ablation, diagnosis), of
        the given manifests only where named."""
        table = self.table
        if not len(table):
            return result_paths(table)
        chosen = (table["mode"] == "accuracy") & table["kind"].isin(kinds)
        if manifests is not None:
            chosen &= table["manifest"].isin(list(manifests))
        return result_paths(table[chosen])

    def bases_of(self, *kinds: str) -> list[str]:
        """The manifests that variants of kinds (ablation, diagnosis) change."""
        return sorted({self._bases[n] for n, k in self._variant_kinds.items() if k in kinds})

    def variant_tables(self, kind: str) -> tuple[list[str], list[str]]:
        """What the table of one kind of variant reads: its variants' results and its bases'
        results only, so that an edit of another model, or of the other kind's base, leaves
        it untouched."""
        return self.accuracy_of((kind,)), self.accuracy_of(("study",), self.bases_of(kind))

    def digests(self, results: Iterable[str]) -> dict[str, str]:
        """result path -> digest of its current job; aggregation refuses any other."""
        return {r: digest(self.jobs[r].to_dict()) for r in results}

    def dependencies(self, results: Iterable[str]) -> list[str]:
        """The environment locks, artifacts and caches results were made from, hashed at
        aggregation."""
        found: set[str] = set()
        for r in results:
            job = self.jobs[r]
            found.update((job.env_lock, job.artifact, job.inputs))
        return sorted(found)
