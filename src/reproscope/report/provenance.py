"""Refuse stale results at aggregation, with or without Snakemake's metadata.

Each result records the job it ran (the manifest parts it used, as in reproscope.runtime.jobs) and
the sha256 of the artifact, input tensor and environment lock it read. Aggregation passes
the digest of the job the current study gives for each result; a result whose job or
hashes differ is stale and no table is written from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reproscope.errors import InputError, InputErrors
from reproscope.plan import jobs
from reproscope.runtime.cache import Cache
from reproscope.runtime.digests import env_identity, sha256_file
from reproscope.runtime.jobs import digest

if TYPE_CHECKING:
    from reproscope.plan.study import Study


class _Hashes:
    """sha256 of the current files, each read once; an input cache's is the digest of the
    chunk digests its preprocess job recorded (Cache.content_sha256), an environment's
    comes from the lock.json its build wrote."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def __call__(self, path: str, kind: str) -> str | None:
        if path not in self._known:
            self._known[path] = self._compute(path, kind)
        return self._known[path]

    @staticmethod
    def _compute(path: str, kind: str) -> str | None:
        if kind == "env_lock":
            # An environment's identity is its committed lock's sha256, which lock.json records.
            return env_identity(path)
        if not Path(path).is_file():
            return None
        if kind == "inputs":  # a geometric cache: the digest of its chunks' digests
            return Cache(path).content_sha256()
        return sha256_file(path)


HASHED = (
    ("artifact", "artifact_sha256"),
    ("inputs", "inputs_sha256"),
    ("env_lock", "env_lock_sha256"),
)


def stale_reasons(
    path: str, record: dict[str, Any], expected_digest: str | None, hashes: _Hashes
) -> list[InputError]:
    job = record.get("job", {})
    fix = f"delete {path} (or rerun with `snakemake --forcerun {rule_of(job)}`) and run the study"
    if expected_digest is None:
        return [InputError(path, "job", "the study has no such job", fix)]
    if digest(job) != expected_digest:
        return [
            InputError(
                path,
                "job",
                "it was run for a job the current manifests and config no longer give (the "
                "manifest's preprocessing, framework, architecture or top_k, or the "
                "study's timing or threads changed since)",
                fix,
            )
        ]
    errors = []
    for key, recorded_key in HASHED:
        current = hashes(job[key], key)
        if record.get(recorded_key) != current:
            errors.append(
                InputError(
                    path,
                    recorded_key,
                    f"it records {record.get(recorded_key)} but {job[key]} now has "
                    f"{current or 'no file'}",
                    fix,
                )
            )
    return errors


def rule_of(job: dict[str, Any]) -> str:
    if job.get("mode") == "accuracy":
        return "accuracy"
    # Timing points are measured by their system's round rule (rules/inference.smk).
    return "latency_round_" + re.sub(r"[^A-Za-z0-9_]", "_", job.get("system", ""))


def check_results(files: list[str], expected: dict[str, str]) -> None:
    """Raise InputErrors naming every stale result among files."""
    hashes = _Hashes()
    errors: list[InputError] = []
    for path in files:
        if not Path(path).is_file():  # a timing point its round's folder lacks
            fix = "rerun the round that writes it (`snakemake --forcerun` its rule)"
            errors.append(InputError(str(path), "file", "no such result", fix))
            continue
        record = json.loads(Path(path).read_text())
        errors.extend(stale_reasons(str(path), record, expected.get(str(path)), hashes))
    if errors:
        raise InputErrors(errors)


def expected_digests(study: Study) -> dict[str, str]:
    """result path -> digest of the job the current study gives it."""
    return {job.result_out: digest(job.to_dict()) for job in jobs.table_jobs(study)}
