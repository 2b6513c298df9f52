"""Does a study survive a disturbance? The timing rounds, undisturbed and then disturbed.

Runs the study up to aggregation (building what is missing), then runs its timing rounds
twice: once undisturbed, and once with a CPU burner (a process spinning on one of the timing
jobs' CPUs) for ``--burn-s`` seconds (60) in the middle of one round (``--round``, the middle
one by default, of the group ``--group``, the first by default). The burner starts when that
round's job starts plus half of what the round took undisturbed beyond the burn.

It reports:
- each round's wall time in both runs (Snakemake's benchmark of each round job) and their
  ratio; acceptance: the disturbed round at most 1.5x its undisturbed time;
- every point re-measured, with why, and every point an attempt of which overlapped the
  burner: each must be flagged and re-measured (acceptance);
- the longest Server trial of each run (LoadGen's own clock: the first and last
  ``time_ms`` of a trial's ``mlperf_log_detail.txt``);
- every comparison whose outcome changed, and whether both runs' CIs lie clear of the
  outcome boundaries (1 and 1 +- min_effect): those must not change (acceptance).

Usage, from the root of a scratch clone (it writes that checkout's results/):
``python benchmarks/disturbance.py [--configfile config/config.yaml] [--cores 2]
[--burn-s 60] [--round R] [--group G] [--json OUT.json]``; for a study elsewhere add
``--snakefile PATH --directory DIR``. The default study takes about 2 x 15 minutes on 2
cores once its environments exist. Exit status 0 when every acceptance check holds.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from reproscope.runtime import layout

PAIR = ["kind", "scenario", "batch_size", "manifest_a", "env_a", "manifest_b", "env_b"]
PAIR += ["device_a", "device_b", "system_a", "system_b"]
POINT = ["manifest", "env", "device", "system", "scenario", "batch_size", "repeat"]
ROUND_RATIO_LIMIT = 1.5


class Study:
    """The study's Snakemake command line and where its results lie."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.root = Path(args.directory or ".")
        self.base = [sys.executable, "-m", "snakemake", "--configfile", args.configfile]
        self.base += ["--cores", str(args.cores)]
        if args.snakefile:
            self.base += ["--snakefile", args.snakefile]
        if args.directory:
            self.base += ["--directory", args.directory]

    def run(self, *extra: str) -> str:
        # stdout kept (--list-rules); Snakemake logs to stderr, which is shown as it runs
        done = subprocess.run([*self.base, *extra], check=True, stdout=subprocess.PIPE, text=True)
        return done.stdout

    def path(self, relative: str) -> Path:
        return self.root / relative

    def round_rules(self) -> list[str]:
        return [n for n in self.run("--list-rules").split() if n.startswith("latency_round")]


def round_times(study: Study, runs: pd.DataFrame) -> pd.DataFrame:
    """Wall time of every round job (system, group, round) of the study."""
    rows = []
    for (system, group, repeat), _ in runs.groupby(["system", "group", "repeat"]):
        bench = pd.read_csv(study.path(layout.round_benchmark(system, group, repeat)), sep="\t")
        rows.append({"system": system, "group": group, "repeat": repeat, "s": bench["s"].iloc[0]})
    return pd.DataFrame(rows)


def trial_seconds(detail: Path) -> float | None:
    """A LoadGen run's duration on its own clock: its log lines' first and last time_ms."""
    stamps = []
    for line in detail.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG"):
            try:
                stamp = float(json.loads(line.removeprefix(":::MLLOG").strip())["time_ms"])
            except (ValueError, KeyError):
                continue
            if 0 <= stamp < 1e9:  # some warnings carry a wrapped-around negative time
                stamps.append(stamp)
    return (max(stamps) - min(stamps)) / 1e3 if stamps else None


def longest_server_trial(study: Study) -> dict[str, Any] | None:
    found = None
    timing = study.path(f"{layout.RESULTS}/timing")
    for detail in timing.glob("**/Server_*_loadgen*/**/mlperf_log_detail.txt"):
        seconds = trial_seconds(detail)
        if seconds is not None and (found is None or seconds > found["s"]):
            found = {"s": seconds, "trial": str(detail.parent.relative_to(study.root))}
    return found


def point_records(study: Study) -> list[dict[str, Any]]:
    """Every timing point's result JSON of the study as it stands."""
    timing = study.path(f"{layout.RESULTS}/timing")
    point = re.compile(r"[A-Za-z]+_bs\d+_r\d+\.json")
    paths = sorted(p for p in timing.glob("**/*.json") if point.fullmatch(p.name))
    return [json.loads(p.read_text()) for p in paths]


def name(record: dict[str, Any]) -> str:
    job = record["job"]
    return (
        f"{job['manifest']}/{job['env']}/{job['device']} {job['scenario']} "
        f"bs{job['batch_size']} r{job['repeat']}"
    )


def remeasured(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for record in records:
        attempts = record.get("metrics", {}).get("attempts", [])
        if len(attempts) > 1:
            found.append(
                {
                    "point": name(record),
                    "attempts": len(attempts),
                    "counted": record["metrics"]["counted_attempt"],
                    "why": "; ".join(attempts[0]["disturbed_reasons"]),
                    "still": "; ".join(record["metrics"]["disturbed_reasons"]),
                }
            )
    return found


def overlapping(records: list[dict[str, Any]], window: tuple[float, float]) -> list[dict]:
    """Points an attempt of which ran while the burner did: was each such attempt flagged,
    was the point measured again, and did the counted attempt run clear of the burner?"""
    found = []
    for record in records:
        metrics = record.get("metrics", {})
        attempts = metrics.get("attempts", [])
        hit = [a for a in attempts if a["start_unix"] < window[1] and a["end_unix"] > window[0]]
        if hit:
            found.append(
                {
                    "point": name(record),
                    "flagged": all(a["disturbed_reasons"] for a in hit),
                    "re_measured": len(attempts) > 1,
                    "counted_clear": metrics["counted_attempt"] not in {a["attempt"] for a in hit},
                    "remeasure_stopped": metrics.get("remeasure_stopped"),
                }
            )
    return found


def changed_outcomes(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Comparisons whose outcome differs between the runs; ``clear``: both runs' CIs lie
    clear of every outcome boundary (1, 1 / (1 + m), 1 + m), so the change is a failure."""
    outcome = "outcome" if "outcome" in first.columns else "verdict"
    shown = ["ratio_b_over_a", "ci95_low", "ci95_high", outcome]
    merged = first[[*PAIR, *shown, "min_effect"]].merge(
        second[[*PAIR, *shown]], on=PAIR, suffixes=("_1", "_2")
    )
    changed = merged[merged[f"{outcome}_1"] != merged[f"{outcome}_2"]].copy()

    def clear(row: pd.Series, run: int) -> bool:
        margin = row["min_effect"]
        low, high = row[f"ci95_low_{run}"], row[f"ci95_high_{run}"]
        return not any(low <= b <= high for b in (1.0, 1 / (1 + margin), 1 + margin))

    changed["clear"] = [clear(r, 1) and clear(r, 2) for _, r in changed.iterrows()]
    return changed


def burn(cpu: int, seconds: float) -> subprocess.Popen:
    code = (
        "import os, time\n"
        f"os.sched_setaffinity(0, {{{cpu}}})\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--snakefile")
    ap.add_argument("--directory")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--burn-s", type=float, default=60.0)
    ap.add_argument("--round", type=int, help="the round disturbed (default: the middle one)")
    ap.add_argument("--group", help="the comparison group disturbed (default: the first)")
    ap.add_argument("--cpu", type=int, help="the burner's CPU (default: the round's first)")
    ap.add_argument("--json", help="write the report here too")
    args = ap.parse_args()
    study = Study(args)
    summary = study.path(f"{layout.RESULTS}/summary")
    study.run("--until", "aggregate")  # what is missing, environments included
    force = ["--until", "aggregate", "--forcerun", *study.round_rules()]

    study.run(*force)  # undisturbed
    runs_1 = pd.read_csv(summary / "runs.csv")
    comparisons_1 = pd.read_csv(summary / "comparisons.csv")
    times_1 = round_times(study, runs_1)
    records_1 = point_records(study)
    server_1 = longest_server_trial(study)

    chosen = runs_1 if args.group is None else runs_1[runs_1["group"] == args.group]
    system, group = chosen["system"].iloc[0], chosen["group"].iloc[0]
    cpu = args.cpu if args.cpu is not None else int(str(chosen["cpu_set"].iloc[0]).split()[0])
    repeat = args.round if args.round is not None else int(runs_1["repeat"].max() + 1) // 2
    undisturbed_s = float(
        times_1.query("system == @system and group == @group and repeat == @repeat")["s"].iloc[0]
    )
    started = study.path(layout.round_job_log(system, group, repeat))
    started.unlink(missing_ok=True)  # it appears when the disturbed run's round starts
    window: list[float] = []

    def disturb() -> None:
        while not started.exists():
            time.sleep(0.2)
        time.sleep(max(0.0, (undisturbed_s - args.burn_s) / 2))
        window.append(time.time())
        burn(cpu, args.burn_s).wait()
        window.append(time.time())

    burner = threading.Thread(target=disturb, daemon=True)
    burner.start()
    study.run(*force)  # disturbed
    burner.join(timeout=args.burn_s + undisturbed_s)
    runs_2 = pd.read_csv(summary / "runs.csv")
    comparisons_2 = pd.read_csv(summary / "comparisons.csv")
    times_2 = round_times(study, runs_2)
    records_2 = point_records(study)
    server_2 = longest_server_trial(study)

    times = times_1.merge(times_2, on=["system", "group", "repeat"], suffixes=("_1", "_2"))
    times["ratio"] = times["s_2"] / times["s_1"]
    disturbed = (
        (times["group"] == group) & (times["repeat"] == repeat) & (times["system"] == system)
    )
    times["disturbed"] = disturbed
    hit = overlapping(records_2, (window[0], window[1])) if len(window) == 2 else []
    changed = changed_outcomes(comparisons_1, comparisons_2)
    pd.set_option("display.width", 250)
    print(f"\nburner on CPU {cpu} for {args.burn_s:g} s in {system}/{group} round {repeat}")
    print("\nRound wall times (s):\n" + times.to_string(index=False))
    for label, records in (("undisturbed", records_1), ("disturbed", records_2)):
        again = pd.DataFrame(remeasured(records))
        print(f"\nRe-measured points, {label} run: {len(again)}")
        if len(again):
            print(again.to_string(index=False))
    print("\nPoints the burner overlapped:\n" + pd.DataFrame(hit).to_string(index=False))
    print(f"\nLongest Server trial: undisturbed {server_1}, disturbed {server_2}")
    print(f"\nOutcomes that changed: {len(changed)}")
    if len(changed):
        print(changed.to_string(index=False))
    checks = {
        "disturbed round <= 1.5x": bool((times[disturbed]["ratio"] <= ROUND_RATIO_LIMIT).all()),
        "burner overlapped a point": bool(hit),
        "every overlapped point flagged and re-measured": all(
            h["flagged"] and h["re_measured"] for h in hit
        ),
        "no outcome clear of the boundaries changed": not bool(changed["clear"].any()),
    }
    print("\n" + "\n".join(f"{'ok ' if ok else 'NO '} {check}" for check, ok in checks.items()))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "round_times": times.to_dict("records"),
                    "remeasured": {"undisturbed": remeasured(records_1)}
                    | {"disturbed": remeasured(records_2)},
                    "overlapped": hit,
                    "burner_window_unix": window,
                    "longest_server_trial": {"undisturbed": server_1, "disturbed": server_2},
                    "changed_outcomes": changed.to_dict("records"),
                    "checks": checks,
                },
                indent=1,
                default=str,
            )
        )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
