#!/usr/bin/env python3
r"""Check SLURM's job-completion log (jobcomp/filetxt) against expectations.

Each jobcomp line is "Key=value Key=value ..." (JobId, Name, JobState,
Partition, NodeList, WorkDir, ...). Snakemake's SLURM executor names every job
after the run UUID and puts "rule_<rule>" only in --comment, which jobcomp does
not log. So jobs get labels from:
  * the jobcomp JobName (use --workdir / --jobname to filter, not to match),
  * --logdir DIR: Snakemake's SLURM log dir (.snakemake/slurm_logs), whose
    files are rule_<rule>/[<wildcards>/]<jobid>.log -> label "rule_<rule>/...",
  * --id-file GLOB: files containing "SLURM_JOB_ID=<id>" (e.g. rule outputs)
    -> label = the file's path.
  * --json-id GLOB: JSON files (reproscope result records) whose
    fingerprint.slurm_job_id names the job -> label = the file's path. A file
    without one was written outside SLURM: that is a failure.
--expect SUBSTRING=PARTITION passes if at least one job has a label containing
SUBSTRING and every such job ran in PARTITION and COMPLETED.
--require-record fails for every labelled job id that has no (filtered) jobcomp
record, e.g. a job that SLURM never ran or that ran in another working tree.

Example:
  check_jobcomp.py /var/lib/reproscope-slurm/jobcomp.log \
      --workdir "$PWD" --logdir .snakemake/slurm_logs --only-labelled \
      --expect rule_on_sysa=sysa --expect rule_on_sysb=sysb --min-jobs 2
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

# A key is a word directly followed by "=" at the start or after whitespace;
# values run until the next key, so values with spaces (WorkDir) survive.
KEY_RE = re.compile(r"(?:^|\s)([A-Za-z]+)=")
JOB_ID_RE = re.compile(r"SLURM_JOB_ID=(\d+)")


def parse_line(line: str) -> dict[str, str]:
    matches = list(KEY_RE.finditer(line))
    rec = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        rec[m.group(1)] = line[m.end() : end].strip()
    return rec


def parse_log(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        recs = (parse_line(line) for line in fh if line.strip())
        return [r for r in recs if "JobId" in r]


def labels_from_logdir(logdir: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for root, _dirs, files in os.walk(logdir):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext == ".log" and stem.isdigit():
                rel = os.path.relpath(os.path.join(root, name), logdir)
                out.setdefault(stem, []).append(rel)
    return out


def labels_from_id_files(patterns: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pattern in patterns:
        paths = sorted(glob.glob(pattern, recursive=True))
        if not paths:
            print(f"warning: --id-file {pattern!r} matched no files", file=sys.stderr)
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as fh:
                for job_id in set(JOB_ID_RE.findall(fh.read())):
                    out.setdefault(job_id, []).append(path)
    return out


def labels_from_json(patterns: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Job ids from result JSONs' fingerprint.slurm_job_id; also the files lacking one."""
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    for pattern in patterns:
        paths = sorted(glob.glob(pattern, recursive=True))
        if not paths:
            print(f"warning: --json-id {pattern!r} matched no files", file=sys.stderr)
        for path in paths:
            try:
                with open(path, encoding="utf-8") as fh:
                    record = json.load(fh)
                job_id = (record.get("fingerprint") or {}).get("slurm_job_id")
            except (OSError, ValueError, AttributeError) as exc:
                missing.append(f"{path} (unreadable: {exc})")
                continue
            if job_id in (None, ""):
                missing.append(path)
            else:
                out.setdefault(str(job_id), []).append(path)
    return out, missing


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("jobcomp_log")
    ap.add_argument("--expect", action="append", default=[], metavar="SUBSTRING=PARTITION")
    ap.add_argument(
        "--min-jobs", type=int, default=0, help="minimum number of (filtered) jobs in the log"
    )
    ap.add_argument(
        "--logdir", action="append", default=[], help="Snakemake SLURM log dir (label jobs by rule)"
    )
    ap.add_argument(
        "--id-file",
        action="append",
        default=[],
        metavar="GLOB",
        help="files containing SLURM_JOB_ID=<id> (label = path)",
    )
    ap.add_argument(
        "--json-id",
        action="append",
        default=[],
        metavar="GLOB",
        help="result JSONs with fingerprint.slurm_job_id (label = path); "
        "a file without an id fails the check (it ran outside SLURM)",
    )
    ap.add_argument(
        "--require-record",
        action="store_true",
        help="fail for every labelled job id without a jobcomp record",
    )
    ap.add_argument(
        "--workdir",
        action="append",
        default=[],
        help="only consider jobs whose WorkDir is (under) this path",
    )
    ap.add_argument(
        "--jobname",
        action="append",
        default=[],
        help="only consider jobs with this exact JobName (e.g. Snakemake run UUID)",
    )
    ap.add_argument(
        "--only-labelled",
        action="store_true",
        help="only consider jobs labelled by --logdir/--id-file (the log is "
        "cumulative across runs; this restricts it to this run's jobs)",
    )
    args = ap.parse_args()

    expects = []
    for e in args.expect:
        sub, sep, part = e.rpartition("=")
        if not sep or not sub or not part:
            ap.error(f"--expect needs SUBSTRING=PARTITION, got {e!r}")
        expects.append((sub, part))

    if not os.path.exists(args.jobcomp_log):
        print(f"FAIL: jobcomp log {args.jobcomp_log} does not exist", file=sys.stderr)
        return 1
    jobs = parse_log(args.jobcomp_log)

    if args.workdir:
        roots = [os.path.realpath(w) for w in args.workdir]
        jobs = [
            j
            for j in jobs
            if any(
                os.path.realpath(j.get("WorkDir", "")) == r
                or os.path.realpath(j.get("WorkDir", "")).startswith(r + os.sep)
                for r in roots
            )
        ]
    if args.jobname:
        jobs = [j for j in jobs if j.get("Name") in args.jobname]

    extra: dict[str, list[str]] = {}
    for d in args.logdir:
        for k, v in labels_from_logdir(d).items():
            extra.setdefault(k, []).extend(v)
    for k, v in labels_from_id_files(args.id_file).items():
        extra.setdefault(k, []).extend(v)
    json_labels, no_job_id = labels_from_json(args.json_id)
    for k, v in json_labels.items():
        extra.setdefault(k, []).extend(v)

    if args.only_labelled:
        jobs = [j for j in jobs if j["JobId"] in extra]
    for j in jobs:
        j["_labels"] = [j.get("Name", "")] + extra.get(j["JobId"], [])

    # Table
    rows = [("JobId", "Partition", "JobState", "NodeList", "Start", "End", "Labels")]
    for j in jobs:
        rows.append(
            (
                j["JobId"],
                j.get("Partition", "?"),
                j.get("JobState", "?"),
                j.get("NodeList", "?"),
                j.get("StartTime", "?"),
                j.get("EndTime", "?"),
                ", ".join(extra.get(j["JobId"], [])) or j.get("Name", ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])

    errors = [f"{path}: no fingerprint.slurm_job_id (ran outside SLURM)" for path in no_job_id]
    if args.require_record:
        recorded = {j["JobId"] for j in jobs}
        for job_id in sorted(set(extra) - recorded, key=lambda i: (len(i), i)):
            errors.append(
                f"job {job_id} ({', '.join(extra[job_id])}) has no jobcomp record"
                f" in {args.jobcomp_log}" + (" under --workdir" if args.workdir else "")
            )
    if len(jobs) < args.min_jobs:
        errors.append(f"expected at least {args.min_jobs} jobs, found {len(jobs)}")
    for j in jobs:
        if j.get("JobState") != "COMPLETED":
            label = ", ".join(extra.get(j["JobId"], [])) or j.get("Name")
            errors.append(
                f"job {j['JobId']} ({label}) ended {j.get('JobState')}"
                f" (ExitCode={j.get('ExitCode')})"
            )
    for sub, part in expects:
        hits = [j for j in jobs if any(sub in lab for lab in j["_labels"])]
        if not hits:
            errors.append(f"no job matching {sub!r} in {args.jobcomp_log}")
        for j in hits:
            if j.get("Partition") != part:
                errors.append(
                    f"job {j['JobId']} matching {sub!r} ran in partition "
                    f"{j.get('Partition')!r}, expected {part!r}"
                )

    if errors:
        for e in errors:
            print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"OK: {len(jobs)} jobs, {len(expects)} expectations met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
