"""What the accuracy rules (rules/inference.smk) read, the job each runs and the SLURM
resources each asks for, as Snakemake input, params and resource functions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from reproscope.plan import jobs
from reproscope.plan.study import Study
from reproscope.runtime import layout
from reproscope.runtime.jobs import InferenceJob

Wildcards = Any  # Snakemake's wildcards (attribute access) or any namespace like them


def inference_inputs(study: Study, mode: str, code: str) -> Callable[[Wildcards], dict[str, str]]:
    """Artifact, geometric cache (index and chunks), the environment lock of a job, the
    stamps of what it uses of its manifest and the study settings, and code, the stamp
    of the command that runs it."""

    def inputs(wildcards: Wildcards) -> dict[str, str]:
        cache = jobs.preprocessed_of(study, wildcards.manifest)
        return {
            "model": jobs.artifact_of(study, wildcards.manifest),
            "inputs": cache,
            "chunks": layout.cache_chunks(cache),
            "lock": layout.env_lock(wildcards.env),
            "manifest_stamp": layout.manifest_stamp(wildcards.manifest),
            "settings_stamp": layout.settings_stamp(mode),
            "code": code,
        }

    return inputs


def where(wildcards: Wildcards) -> tuple[str, str, str, str]:
    return (wildcards.system, wildcards.manifest, wildcards.env, wildcards.device)


class AccuracyJobs:
    """The job of each accuracy (or accuracy shard) rule job, as JSON."""

    def __init__(self, study: Study, table_jobs: dict[str, InferenceJob], shards: int) -> None:
        self.study = study
        self.table_jobs = table_jobs  # result path -> its job, as planned once
        self.shards = shards

    def job_json(self, wildcards: Wildcards, output: Any) -> str:
        if self.shards > 1:  # one shard of the job the table holds
            whole = jobs.inference_job(self.study, "accuracy", *where(wildcards))
            return dataclasses.replace(
                whole,
                shard=[int(wildcards.shard), self.shards],
                result_out=output.result,
                logits_out=output.logits,
                topk_out=output.topk,
            ).to_json()
        job = self.table_jobs.get(output[0])
        if job is None:  # a target outside the job table, asked for by name
            job = jobs.inference_job(self.study, "accuracy", *where(wildcards))
        return job.to_json()

    def shard_files(self, of: Callable[..., str]) -> Callable[[Wildcards], list[str]]:
        """One file per shard of a job, of = layout.shard_result (or _logits, _topk)."""

        def files(wildcards: Wildcards) -> list[str]:
            return [of(*where(wildcards), k) for k in range(self.shards)]

        return files


def slurm_resource(
    systems: dict[str, Any], key: str, cuda_only: bool = False
) -> str | Callable[[Wildcards], str]:
    """A SLURM resource taken from the job's system; a plain "" when no system sets it,
    which spares Snakemake a call per job."""
    if not any(key in spec for spec in systems.values()):
        return ""

    def value(wildcards: Wildcards) -> str:
        if cuda_only and wildcards.device != "cuda":
            return ""
        return systems.get(wildcards.system, {}).get(key, "")

    return value
