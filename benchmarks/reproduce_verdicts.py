"""Do two back-to-back runs of a study's performance jobs give the same verdicts?

Runs the study up to aggregation (building what is missing), keeps its comparisons.csv and
runs.csv, forces the timing rounds to run again, and compares: every verdict of the two
comparisons.csv, and each point's p50 (largest run-to-run difference). Prints both tables.

Usage: ``python benchmarks/reproduce_verdicts.py [--configfile config/config.yaml]
[--cores 2]`` from the repository root (the default study: about 2 x 10 minutes on 2 cores
once environments exist). Exit status 0 when every verdict is the same.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

SUMMARY = Path("results/summary")
POINT = ["manifest", "env", "device", "system", "scenario", "batch_size", "repeat"]
PAIR = ["kind", "scenario", "batch_size", "manifest_a", "env_a", "manifest_b", "env_b"]
PAIR += ["device_a", "device_b", "system_a", "system_b"]


def snakemake(configfile: str, cores: int, *extra: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--configfile", configfile, "--cores", str(cores)]
    subprocess.run([*cmd, "--until", "aggregate", *extra], check=True)


def round_rules(configfile: str) -> list[str]:
    config = yaml.safe_load(Path(configfile).read_text())
    systems = config["study"].get("systems") or list(config.get("systems", {}))[:1]
    return [f"latency_round_{s}" for s in systems]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    tables = []
    for run in range(2):
        force = ["--forcerun", *round_rules(args.configfile)] if run else []
        snakemake(args.configfile, args.cores, *force)
        tables.append((pd.read_csv(SUMMARY / "comparisons.csv"), pd.read_csv(SUMMARY / "runs.csv")))
    (cmp_a, runs_a), (cmp_b, runs_b) = tables
    pairs = cmp_a.merge(cmp_b, on=PAIR, suffixes=("_1", "_2"))
    pd.set_option("display.width", 200)
    cols = ["ratio_b_over_a", "ci95_low", "ci95_high", "verdict"]
    shown = PAIR[:5] + PAIR[6:7] + [f"{c}_{r}" for r in (1, 2) for c in cols]
    print(pairs[shown].to_string(index=False))
    points = runs_a.merge(runs_b, on=POINT, suffixes=("_1", "_2"))
    points["p50_change_pct"] = 100 * (points["latency_ms_p50_2"] / points["latency_ms_p50_1"] - 1)
    print(points[[*POINT, "latency_ms_p50_1", "latency_ms_p50_2", "p50_change_pct"]].to_string())
    worst = points.loc[points["p50_change_pct"].abs().idxmax()]
    same = (pairs["verdict_1"] == pairs["verdict_2"]).all() and len(pairs) == len(cmp_a)
    print(
        f"\n{len(pairs)} comparisons, verdicts {'identical' if same else 'DIFFER'}; "
        f"largest p50 change {worst['p50_change_pct']:+.1f} % "
        f"({worst['manifest']} {worst['env']} {worst['scenario']} bs {worst['batch_size']})"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
