#!/usr/bin/env python3
"""Study-side checks for .ci/slurm/run_study.sh (run from the repository root).

check_study.py expect CONFIG PROFILE_DIR [--logdir DIR]
    Print check_jobcomp.py arguments, one per line: an --expect per SLURM log dir of
    rules accuracy/latency (rule_<rule>/<system>_<manifest>_<env>_<device>[_<bs>]/),
    mapped to the partition of that system in CONFIG; an --expect per log dir of the
    other rules, mapped to the profile's default slurm_partition; an --expect per
    system for its result JSONs (results/{inference,timing}/<system>/...); --json-id globs for
    those JSONs and --min-jobs. Fails (exit 1) unless every inference result JSON has
    a log dir for its wildcards holding <fingerprint.slurm_job_id>.log, i.e. every
    inference job went through SLURM and the log dirs cover them all.

check_study.py runs CONFIG [--csv results/summary/runs.csv]
    Fail unless runs.csv has rows for every system of study.systems and every row
    has hostname and slurm_job_id filled.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from pathlib import Path

import yaml

LATENCY_NAME = re.compile(r"^(FixedBatch|SingleStream|MultiStream|Server|Offline)_bs(\d+)_r(\d+)$")


def round_rule(system: str) -> str:
    """The rule that measures a system's timing rounds (rules/inference.smk)."""
    return "latency_round_" + re.sub(r"[^A-Za-z0-9_]", "_", system)


RESULTS = Path("results/inference")
TIMING = Path("results/timing")  # <system>/<group>/r<round>/<manifest>/<env>/<device>/<point>.json


def load_yaml(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def study_systems(config: dict) -> dict[str, str]:
    """system -> slurm partition ('' if the system names none) for study.systems."""
    systems = config.get("systems") or {}
    names = (config.get("study") or {}).get("systems") or list(systems)[:1]
    return {n: str((systems.get(n) or {}).get("slurm_partition", "")) for n in names}


#: Rules other than inference with a job per system (wildcards '<system>_<device>'), each
#: submitted to its system's partition: the machine's limits are measured where it times.
PER_SYSTEM_RULES = ("limits",)


def system_of(wildcard_dir: str, systems: list[str]) -> str | None:
    """The system a log dir belongs to: its wildcards start with '<system>_'."""
    hits = [s for s in systems if wildcard_dir.startswith(s + "_")]
    return max(hits, key=len) if hits else None


def result_jsons() -> list[tuple[str, Path]]:
    """(rule, path) of every inference result: accuracy results under RESULTS, timing
    points in their rounds' folders under TIMING."""
    out = [("accuracy", path) for path in sorted(RESULTS.glob("*/*/*/*/accuracy.json"))]
    for path in sorted(TIMING.glob("*/*/r*/*/*/*/*.json")):
        if LATENCY_NAME.match(path.stem):
            out.append((round_rule(path.parts[-7]), path))
    return out


def wildcard_dir(rule: str, path: Path) -> str:
    """The plugin's log dir name: the rule's wildcard values joined by '_'."""
    if rule != "accuracy":  # a round: its wildcards are the comparison group and the round
        return f"{path.parts[-6]}_{LATENCY_NAME.match(path.stem).group(3)}"
    return "_".join(path.parts[-5:-1]).replace("/", "_")


def cmd_expect(args: argparse.Namespace) -> int:
    config = load_yaml(args.config)
    partitions = study_systems(config)
    profile = load_yaml(Path(args.profile) / "config.yaml")
    default_part = str((profile.get("default-resources") or {}).get("slurm_partition", ""))
    logdir = Path(args.logdir)
    errors: list[str] = []
    out: list[str] = []
    n_logs = 0

    for system, part in partitions.items():
        if not part:
            errors.append(f"system {system!r} has no slurm_partition in {args.config}")
    if not logdir.is_dir():
        errors.append(f"no SLURM log dir {logdir}: did any job go through SLURM?")
        rule_dirs = []
    else:
        rule_dirs = sorted(p for p in logdir.iterdir() if p.is_dir())

    rounds = {round_rule(system): system for system in partitions}
    inference_rules = ("accuracy", *rounds)
    seen_inference = {rule: 0 for rule in inference_rules}
    for rdir in rule_dirs:
        rule = rdir.name.removeprefix("rule_")
        logs = sorted(rdir.rglob("*.log"))
        n_logs += len(logs)
        if rule in inference_rules:
            for wdir in sorted(p for p in rdir.iterdir() if p.is_dir()):
                system = rounds.get(rule) or system_of(wdir.name, list(partitions))
                if system is None:
                    errors.append(f"{wdir}: wildcards name no system of {sorted(partitions)}")
                    continue
                seen_inference[rule] += 1
                out.append(f"--expect={rdir.name}/{wdir.name}/={partitions[system] or '?'}")
        elif rule in PER_SYSTEM_RULES:
            for wdir in sorted(p for p in rdir.iterdir() if p.is_dir()):
                system = system_of(wdir.name, list(partitions))
                if system is None:
                    errors.append(f"{wdir}: wildcards name no system of {sorted(partitions)}")
                    continue
                out.append(f"--expect={rdir.name}/{wdir.name}/={partitions[system] or '?'}")
        elif default_part:
            out.append(f"--expect={rdir.name}/={default_part}")

    results = result_jsons()
    if not results:
        errors.append(f"no inference results under {RESULTS}")
    for rule, path in results:
        wdir = logdir / f"rule_{rule}" / wildcard_dir(rule, path)
        try:
            job_id = (json.loads(path.read_text()).get("fingerprint") or {}).get("slurm_job_id")
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: unreadable ({exc})")
            continue
        if not job_id:
            errors.append(f"{path}: no fingerprint.slurm_job_id: the job bypassed SLURM")
        elif not (wdir / f"{job_id}.log").is_file():
            errors.append(f"{path}: SLURM job {job_id} has no log {wdir}/{job_id}.log")
    for rule in inference_rules:
        n_results = len({wildcard_dir(r, p) for r, p in results if r == rule})
        if seen_inference[rule] != n_results:
            errors.append(
                f"rule {rule}: {seen_inference[rule]} SLURM log dirs but {n_results} result files"
            )

    timed = {path.parts[-7] for rule, path in results if rule != "accuracy"}
    scored = {path.parts[-5] for rule, path in results if rule == "accuracy"}
    for system, part in partitions.items():
        if system in scored or system not in timed:
            out.append(f"--expect={RESULTS}/{system}/={part or '?'}")
        if system in timed:
            out.append(f"--expect={TIMING}/{system}/={part or '?'}")
    out.append(f"--json-id={RESULTS}/*/*/*/*/accuracy.json")
    out.append(f"--json-id={TIMING}/*/*/r*/*/*/*/*_bs*_r*.json")
    out.append(f"--min-jobs={n_logs}")

    if errors:
        for e in errors:
            print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("\n".join(out))
    counts = ", ".join(f"{n} {r}" for r, n in seen_inference.items())
    print(
        f"[check_study] {n_logs} SLURM job logs; inference log dirs: {counts}; "
        f"{len(results)} inference results, each from its SLURM job",
        file=sys.stderr,
    )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    partitions = study_systems(load_yaml(args.config))
    if not os.path.exists(args.csv):
        print(f"FAIL: {args.csv} does not exist", file=sys.stderr)
        return 1
    with open(args.csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    errors = []
    for col in ("system", "hostname", "slurm_job_id"):
        if rows and col not in rows[0]:
            errors.append(f"{args.csv} has no column {col!r}")
    if not errors:
        for system in partitions:
            mine = [r for r in rows if r["system"] == system]
            if not mine:
                errors.append(f"{args.csv}: no rows for system {system!r}")
            for r in mine:
                for col in ("hostname", "slurm_job_id"):
                    if not (r.get(col) or "").strip():
                        errors.append(
                            f"{args.csv}: {col} empty for {system} {r.get('manifest')}"
                            f" {r.get('device')} bs{r.get('batch_size')}"
                        )
        extra = sorted({r["system"] for r in rows} - set(partitions))
        if extra:
            errors.append(f"{args.csv}: rows for systems outside study.systems: {extra}")
    if errors:
        for e in errors:
            print(f"FAIL: {e}", file=sys.stderr)
        return 1
    per = ", ".join(f"{s}: {sum(r['system'] == s for r in rows)}" for s in partitions)
    print(f"OK: {args.csv}: {len(rows)} rows ({per}), hostname and slurm_job_id filled")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("expect")
    e.add_argument("config")
    e.add_argument("profile")
    e.add_argument("--logdir", default=".snakemake/slurm_logs")
    r = sub.add_parser("runs")
    r.add_argument("config")
    r.add_argument("--csv", default="results/summary/runs.csv")
    args = ap.parse_args()
    return cmd_expect(args) if args.cmd == "expect" else cmd_runs(args)


if __name__ == "__main__":
    sys.exit(main())
