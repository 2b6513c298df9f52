"""The timing rounds' rule jobs: one per system and round runs every configuration of that
system once, each in its own environment's python (reproscope.runtime.rounds); round r
needs round r-1's results, so rounds never overlap."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pandas as pd

from reproscope.plan import jobs
from reproscope.plan.inference import Wildcards, inference_inputs
from reproscope.plan.results import table_rows
from reproscope.plan.study import Study, round_runtime_minutes
from reproscope.runtime import layout


class Rounds:
    def __init__(
        self, study: Study, latency_rows: pd.DataFrame, python: Callable[[str], str], code: str
    ) -> None:
        self.study = study
        self.latency_rows = latency_rows  # the job table's timing points
        self.python = python  # env -> the interpreter its jobs run
        self.latency_inputs = inference_inputs(study, "latency", code)
        self._configs: dict[str, list[tuple[str, str, str]]] = {}
        self._inputs: dict[str, dict[str, str]] = {}

    def configs(self, system: str) -> list[tuple[str, str, str]]:
        """(manifest, env, device) of every configuration timed on a system."""
        if system not in self._configs:
            rows = self.latency_rows[self.latency_rows["system"] == system]
            self._configs[system] = sorted(set(table_rows(rows, "manifest", "env", "device")))
        return self._configs[system]

    def runtime(self, system: str) -> int:
        """Minutes a round job of a system may take (SLURM's time limit)."""
        return round_runtime_minutes(self.study.settings, len(self.configs(system)))

    def configuration_inputs(self, system: str) -> dict[str, str]:
        """What the configurations of a system's rounds read, each file once (they share
        their environments' locks and the settings and code stamps)."""
        if system not in self._inputs:
            found: dict[str, str] = {}
            for manifest, env, _device in self.configs(system):
                wildcards = SimpleNamespace(manifest=manifest, env=env)
                for key, path in self.latency_inputs(wildcards).items():
                    found.setdefault(path, f"{key}_{manifest}_{env}")
            self._inputs[system] = {key: path for path, key in found.items()}
        return self._inputs[system]

    def inputs(self, system: str) -> Callable[[Wildcards], dict[str, str]]:
        """What every configuration of a round reads, and the previous round's results."""

        def inputs(wildcards: Wildcards) -> dict[str, str]:
            found = dict(self.configuration_inputs(system))
            repeat = int(wildcards.repeat)
            if repeat > 0:
                found["previous_round"] = layout.round_dir(system, repeat - 1)
            return found

        return inputs

    def plan(self, system: str) -> Callable[[Wildcards, Any], str]:
        """The round's configurations, each a job of all its timing points, as JSON."""

        def plan(wildcards: Wildcards, output: Any) -> str:
            repeat = int(wildcards.repeat)
            return json.dumps({"round": repeat, "configs": self.round_configs(system, repeat)})

        return plan

    def round_configs(self, system: str, repeat: int) -> list[dict[str, Any]]:
        configs = []
        for manifest, env, device in self.configs(system):
            where = (system, manifest, env, device)
            configs.append(
                {
                    "name": f"{manifest}/{env}/{device}",
                    "python": self.python(env),
                    "job": jobs.round_job(self.study, *where, repeat).to_dict(),
                    "log": layout.round_log(*where, repeat),
                }
            )
        return configs
