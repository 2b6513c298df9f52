"""One module per kind of timing point, each with one ``run(runner, job, inputs) ->
metrics``; a job's scenario names its module here."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.scenarios import fixed_batch, loadgen, server_search

SCENARIOS: dict[str, ModuleType] = {
    "FixedBatch": fixed_batch,
    "SingleStream": loadgen,
    "MultiStream": loadgen,
    "Offline": loadgen,
    "Server": server_search,
}


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One timing point: its scenario's metrics, with the scenario and batch size."""
    metrics = SCENARIOS[job.scenario].run(runner, job, inputs)
    return {**metrics, "scenario": job.scenario, "batch_size": job.batch_size}
