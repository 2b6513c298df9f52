"""One measurement round: `python -m reproscope.runtime.rounds ROUND.json`.

A study's timing is measured in rounds, per comparison group (one model's manifests,
environments and devices) and system. A round runs every configuration of its group (each
manifest in each of its environments on each device) once, one after another, each in a
fresh process of its own environment's python that measures all of that configuration's
timing points. A group's rounds are chained by the workflow (round r needs round r-1's
results), so they never overlap; locally, the `timing` resource keeps round jobs of
different groups from running at the same time.
So configurations are interleaved, A B C A B C ..., instead of measured in blocks (A A A B B
B ...): a slow drift of the machine then lands on all of them alike, and the comparison of
A and B pairs round r of A with round r of B. Round r starts at configuration r (mod n),
so that no configuration always runs first, right after the previous round's last.

A point measured while something disturbed it is measured again inside its round
(reproscope.runtime.latency); one test of that is its figure against the same point's earlier
rounds (:func:`earlier_figures`), which the chain guarantees are on disk.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from reproscope.runtime import launch, layout
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.launch import SRC_VARIABLE, run_inference

#: A timing point's figure, the one its comparisons compare, and whether lower is better.
SCENARIO_METRIC = {
    "FixedBatch": ("p50_ms", True),
    # MLPerf's metrics: LoadGen's early-stopping estimate of the p90 (SingleStream) and
    # the p99 (MultiStream); p50 stays a column of runs.csv
    "SingleStream": ("early_stopping_p90_ms", True),
    "MultiStream": ("early_stopping_p99_ms", True),
    "Offline": ("throughput_ips", False),
    "Server": ("server_max_qps", False),
}


def figure(metrics: dict[str, Any], scenario: str) -> float | None:
    """A point's figure (SCENARIO_METRIC) from its metrics, or None."""
    value = metrics.get(SCENARIO_METRIC[scenario][0])
    return float(value) if value else None


def earlier_figures(job: InferenceJob) -> list[float]:
    """The figures of the same point (configuration, scenario, batch size) in the earlier
    rounds of its group, those that were measured."""
    found = []
    for earlier in range(job.repeat or 0):
        path = Path(
            layout.latency_result(
                job.system,
                job.manifest,
                job.env,
                job.device,
                job.scenario,
                job.batch_size,
                earlier,
                job.group or job.model,
            )
        )
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        value = figure(record.get("metrics") or {}, job.scenario)
        if record.get("status") == "ok" and value:
            found.append(value)
    return found


def round_order(configs: list[Any], round_index: int) -> list[Any]:
    """The configurations of round ``round_index``: rotated by the round's number."""
    if not configs:
        return []
    shift = round_index % len(configs)
    return configs[shift:] + configs[:shift]


def run_round(plan: dict[str, Any]) -> int:
    """Run each configuration of a round plan in turn; returns the number that failed."""
    failed = 0
    # This checkout's package (the workflow exports it), for every environment's python.
    src = os.environ.get(SRC_VARIABLE) or os.environ.get("PYTHONPATH", "")
    for config in round_order(plan["configs"], plan["round"]):
        log = Path(config["log"])
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            proc = run_inference(config["python"], config["job"], src, out)
        where = f"{plan.get('group', '')}: {config['name']}".lstrip(": ")
        print(f"round {plan['round']}: {where}: exit {proc.returncode}", flush=True)
        failed += proc.returncode != 0
    return failed


def main(argv: list[str]) -> int:
    text = launch.job_argument(argv, "reproscope.runtime.rounds")
    if text is None:
        return 2
    return 1 if run_round(json.loads(text)) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
