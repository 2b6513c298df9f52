"""The job contract between the workflow and the environment-side code.

The workflow builds each job from the study (one row of its job table) and passes it as
JSON on the command line; runtime.infer and runtime.convert.main read it back with
from_json. Every path in a job is relative to the workflow's working directory (see
layout). A job's digest identifies it in its result: aggregation compares the digest
recorded in a result with the one the current study gives (reproscope.report.provenance).
Env-side: standard library only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Job:
    def to_dict(self) -> dict[str, Any]:
        """The fields that apply to this job (None fields are left out)."""
        # vars(): the fields in their order, without dataclasses.fields' per-call cost
        # (planning builds tens of thousands of these)
        return {name: value for name, value in vars(self).items() if value is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class InferenceJob(_Job):
    """An accuracy pass, one timing point, or (points set) all timing points of one
    configuration in one round."""

    mode: str  # accuracy | latency
    framework: str
    manifest: str
    model: str
    system: str
    env: str
    device: str
    threads: int
    artifact: str
    inputs: str
    env_lock: str
    architecture: dict[str, Any] | None
    unsafe_pickle: bool
    top_k: int
    batch_size: int | None = None
    result_out: str | None = None
    logits_out: str | None = None
    topk_out: str | None = None
    timing: dict[str, Any] | None = None
    scenario: str | None = None
    repeat: int | None = None
    group: str | None = None  # a timing point's comparison group (its round job's)
    server: dict[str, Any] | None = None
    grouped: bool | None = None  # a point measured inside a round's process
    noise_threshold: float | None = None
    huge_pages: bool | None = None  # reproscope.runtime.memory's policy for the timing process
    loadgen_dir: str | None = None  # LoadGen's logs of an MLPerf scenario
    points: list[dict[str, Any]] | None = None  # a round: each point's own fields
    tensor: dict[str, Any] | None = None  # the per-pixel stages applied to the cache
    shard: list[int] | None = None  # [k, K]: the k-th of K accuracy shards
    mlperf_benchmark: str | None = None  # the manifest's: whose mlperf.conf LoadGen loads

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.setdefault("architecture", None)  # weight-free formats have none, say so
        return data

    def point_jobs(self) -> list[InferenceJob]:
        """A round's single-point jobs, as each point's result records it."""
        return [
            dataclasses.replace(self, points=None, grouped=True, **point)
            for point in self.points or []
        ]


@dataclass(frozen=True)
class ConversionJob(_Job):
    converter: str
    opset: int
    source: str
    output: str
    architecture: dict[str, Any] | None
    unsafe_pickle: bool
    input_size: list[int]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.setdefault("architecture", None)
        return data


@dataclass(frozen=True)
class RandomInitJob(_Job):
    """Seeded random weights of a manifest's architecture (reproscope.runtime.random_init)."""

    format: str
    random_init: dict[str, Any]
    architecture: dict[str, Any]
    output: str


def digest(job: dict[str, Any]) -> str:
    """sha256 of a job's canonical JSON: its identity in results."""
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
