"""Do back-to-back runs of a study's performance jobs give the same verdicts?

Runs the study up to aggregation (building what is missing), keeps its comparisons.csv and
runs.csv, then forces the timing rounds to run again, ``--runs`` times in all, and compares
every verdict of every run with the first run's, and each point's p50 (largest run-to-run
difference). With ``--expect VERDICT`` every comparison of every run must also have that
verdict: a self-comparison (config/self-comparison.yaml, one environment file under two
names) expects ``equivalent`` (reproscope.report.compare lists the outcomes).

Usage, from the root of a scratch clone (it writes that checkout's results/):
``python benchmarks/reproduce_verdicts.py [--configfile config/config.yaml] [--runs 2]
[--cores 2] [--expect equivalent]``. The default study takes about
2 x 10 minutes on 2 cores once its environments exist. Exit status 0 when every verdict is
the same in every run (and, with --expect, is the expected one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

SUMMARY = Path("results/summary")
POINT = ["manifest", "env", "device", "system", "scenario", "batch_size", "repeat"]
PAIR = ["kind", "scenario", "batch_size", "manifest_a", "env_a", "manifest_b", "env_b"]
PAIR += ["device_a", "device_b", "system_a", "system_b"]
SHOWN = ["ratio_b_over_a", "ci95_low", "ci95_high", "p_value", "verdict"]


def snakemake(configfile: str, cores: int, *extra: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--configfile", configfile, "--cores", str(cores)]
    # stdout kept (--list-rules); Snakemake logs to stderr, which is shown as it runs
    return subprocess.run([*cmd, *extra], check=True, stdout=subprocess.PIPE, text=True).stdout


def round_rules(configfile: str) -> list[str]:
    """The study's timing-round rules, as the workflow names them."""
    listed = snakemake(configfile, 1, "--list-rules").split()
    return [name for name in listed if name.startswith("latency_round")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--expect", help="the outcome every comparison must have, e.g. equivalent")
    args = ap.parse_args()
    comparisons, runs = [], []
    for run in range(args.runs):
        force = ["--forcerun", *round_rules(args.configfile)] if run else []
        snakemake(args.configfile, args.cores, "--until", "aggregate", *force)
        comparisons.append(pd.read_csv(SUMMARY / "comparisons.csv"))
        runs.append(pd.read_csv(SUMMARY / "runs.csv"))
    pd.set_option("display.width", 250)
    first, same = comparisons[0], True
    pairs = first[PAIR].copy()
    for i, table in enumerate(comparisons, start=1):
        merged = first[PAIR].merge(table, on=PAIR, how="left")
        pairs[[f"{c}_{i}" for c in SHOWN]] = merged[SHOWN].to_numpy()
        same &= len(table) == len(first) and (merged["verdict"] == first["verdict"]).all()
    print(pairs.drop(columns=["manifest_b", "device_a", "device_b"]).to_string(index=False))
    points = runs[0][[*POINT, "latency_ms_p50"]].rename(columns={"latency_ms_p50": "p50_1"})
    for i, table in enumerate(runs[1:], start=2):
        p50 = table[[*POINT, "latency_ms_p50"]].rename(columns={"latency_ms_p50": f"p50_{i}"})
        points = points.merge(p50, on=POINT)
    p50s = points[[f"p50_{i}" for i in range(1, args.runs + 1)]]
    points["largest_change_pct"] = 100 * (p50s.max(axis=1) / p50s.min(axis=1) - 1)
    print(points.to_string(index=False))
    worst = points.loc[points["largest_change_pct"].idxmax()]
    expected = args.expect is None or all((t["verdict"] == args.expect).all() for t in comparisons)
    print(
        f"\n{len(first)} comparisons x {args.runs} runs, verdicts "
        f"{'identical' if same else 'DIFFER'} across runs"
        + ("" if args.expect is None else f", all {args.expect!r}: {expected}")
        + f"; largest p50 change between runs {worst['largest_change_pct']:.1f} % "
        f"({worst['manifest']} {worst['env']} {worst['scenario']} bs {worst['batch_size']})"
    )
    return 0 if same and expected else 1


if __name__ == "__main__":
    sys.exit(main())
