"""The timing rounds' rule jobs: one per system, comparison group and round runs every
configuration of that group once, each in its own environment's python
(reproscope.runtime.rounds); round r needs round r-1's results, so a group's rounds never
overlap. A group (reproscope.plan.jobs.timing_group: one model's manifests, environments and
devices) holds every pair comparisons.csv compares in paired rounds, so its job reads and
names only that group: an edit outside the group leaves its rounds untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pandas as pd

from reproscope.plan import jobs
from reproscope.plan.inference import Wildcards, inference_inputs
from reproscope.plan.results import GROUP, table_rows
from reproscope.plan.study import Study, round_runtime_minutes, timing_points
from reproscope.runtime import layout
from reproscope.runtime.jobs import InferenceJob

#: The global resource every round job takes one unit of. The workflow makes one unit of it
#: available when run locally (round jobs of different groups never share the cores); on a
#: cluster it is scoped to each submitted job, so groups run on their nodes in parallel.
TIMING_RESOURCE = "timing"


class Rounds:
    def __init__(
        self,
        study: Study,
        latency_rows: pd.DataFrame,
        python: Callable[[str], str],
        code: str,
        point_jobs: dict[str, InferenceJob] | None = None,
    ) -> None:
        self.study = study
        # result path -> its point's job (Results.jobs): a round's job is made from them
        # rather than built again (a big study plans thousands of round jobs)
        self.point_jobs = point_jobs or {}
        self.timing_points = timing_points(study.settings)
        self.python = python  # env -> the interpreter its jobs run
        self.latency_inputs = inference_inputs(study, "latency", code)
        self._configs: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for system, group, *config in table_rows(
            latency_rows, "system", GROUP, "manifest", "env", "device"
        ):
            self._configs.setdefault((system, group), []).append(tuple(config))
        self._configs = {key: sorted(set(found)) for key, found in self._configs.items()}
        self._inputs: dict[tuple[str, str], dict[str, str]] = {}

    def configs(self, system: str, group: str) -> list[tuple[str, str, str]]:
        """(manifest, env, device) of every configuration of a group timed on a system."""
        return self._configs.get((system, group), [])

    def runtime(self, system: str) -> Callable[[Wildcards], int]:
        """Minutes a round job of a system's group may take (SLURM's time limit)."""

        def runtime(wildcards: Wildcards) -> int:
            n_configs = len(self.configs(system, wildcards.group))
            return round_runtime_minutes(self.study.settings, n_configs)

        return runtime

    def configuration_inputs(self, system: str, group: str) -> dict[str, str]:
        """What the configurations of a group's rounds read, each file once (they share
        their environments' locks and the settings and code stamps)."""
        key = (system, group)
        if key not in self._inputs:
            found: dict[str, str] = {}
            for manifest, env, _device in self.configs(system, group):
                wildcards = SimpleNamespace(manifest=manifest, env=env)
                for name, path in self.latency_inputs(wildcards).items():
                    found.setdefault(path, f"{name}_{manifest}_{env}")
            self._inputs[key] = {name: path for path, name in found.items()}
        return self._inputs[key]

    def inputs(self, system: str) -> Callable[[Wildcards], dict[str, str]]:
        """What every configuration of a group's round reads, and the group's previous
        round's results."""

        def inputs(wildcards: Wildcards) -> dict[str, str]:
            found = dict(self.configuration_inputs(system, wildcards.group))
            repeat = int(wildcards.repeat)
            if repeat > 0:
                found["previous_round"] = layout.round_dir(system, wildcards.group, repeat - 1)
            return found

        return inputs

    def plan(self, system: str) -> Callable[[Wildcards, Any], str]:
        """The round's configurations, each a job of all its timing points, as JSON."""

        def plan(wildcards: Wildcards, output: Any) -> str:
            repeat = int(wildcards.repeat)
            configs = self.round_configs(system, wildcards.group, repeat)
            return json.dumps({"round": repeat, "group": wildcards.group, "configs": configs})

        return plan

    def round_configs(self, system: str, group: str, repeat: int) -> list[dict[str, Any]]:
        configs = []
        for manifest, env, device in self.configs(system, group):
            where = (system, manifest, env, device)
            configs.append(
                {
                    "name": f"{manifest}/{env}/{device}",
                    "python": self.python(env),
                    "job": self.round_job(where, group, repeat).to_dict(),
                    "log": layout.round_log(*where, repeat),
                }
            )
        return configs

    def round_job(self, where: tuple[str, str, str, str], group: str, repeat: int) -> InferenceJob:
        """One configuration's job in a round: from its points' jobs where they are known,
        else built (the same job: jobs.round_job)."""
        points = [
            self.point_jobs.get(layout.latency_result(*where, scenario, bs, repeat, group))
            for scenario, bs in self.timing_points
        ]
        if points and all(points):
            return jobs.round_of(points)
        return jobs.round_job(self.study, *where, repeat)
