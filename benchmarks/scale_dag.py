"""How long Snakemake takes to plan a large study, against a bare workflow of the same size.

    python benchmarks/scale_dag.py [--models 300] [--repeats 3] [--keep]

1. Generates a study (tests/scalegen.py) in a temporary directory: --models tiny models in
   pytorch, onnxruntime and tensorflow (3 x models manifests), batch sizes 1..128 (8),
   cpu, environment host, a generated synthetic-colours dataset. --models 300 gives
   7,200 latency and 900 accuracy jobs.
2. Times `snakemake -n --quiet` on it --repeats times (median; wall and CPU seconds).
3. Generates a bare Snakefile with the same number of jobs in the same shape (per-model
   preparation jobs, one wildcard rule for the inference-like jobs, an aggregate rule,
   a final rule; static patterns, no input functions, params or conda) and times it the
   same way. Prints both and their ratio. Also times a one-job workflow: the fixed cost
   of starting Snakemake on this machine (imports, executor plugins probing SLURM).
4. The one-manifest check: creates every output of the study (empty files; nothing is
   executed) and runs `snakemake --touch --forceall`, which touches them in DAG order and
   records Snakemake's metadata (params, input sets, code) as if the jobs had run (without
   --forceall nothing is planned, so nothing is recorded; and without that metadata an
   edit is invisible: Snakemake 9 does not re-run up-to-date jobs because an intermediate
   input is missing, it re-runs them because their recorded input set or params
   changed, and that is what reruns the edited manifest's jobs). Then it edits one
   manifest's inputs.resize.method and dry-runs again, and checks that only that
   manifest's preprocessing and inference jobs, plus aggregate, plot and all, are planned.
   Snakemake's touch executor sleeps 0.1 s per job (for coarse file-system clocks); with
   ~10,000 jobs that is 16 minutes, so the touch run sets that sleep to 0 (this file
   system has nanosecond mtimes, and Snakemake compares mtimes strictly).

Cost: the --touch run takes ~1 min at --models 100 (3,205 jobs) but over 15 min at
--models 300 (9,605 jobs; Snakemake's touch/metadata path grows faster than linearly),
so time the full size with --skip-check and run the check at --models 100.

Exit status 1 when the one-manifest check fails (or --limit is exceeded, if given).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import scalegen  # noqa: E402

SNAKEFILE = REPO / "Snakefile"
TOUCH_WITHOUT_SLEEP = (
    "import sys, snakemake.executors.touch as t; t.Executor.SLEEPING_TIME = 0; "
    "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()"
)


def run(cmd: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the process and its children, result)."""
    before = os.times()
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-4000:]}")
    return wall, cpu, result


def snakemake(snakefile: Path, root: Path, *args: str, config: bool = True) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(root)]
    if config:
        cmd += ["--configfile", str(root / "config.yaml")]
    return cmd + ["--cores", "2", *args]


def job_stats(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[-1]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
        if m.group(1) != "total"
    }


def timed(cmd: list[str], cwd: Path, repeats: int, label: str) -> tuple[float, float]:
    walls, cpus = [], []
    for i in range(repeats):
        wall, cpu, _ = run(cmd, cwd)
        walls.append(wall)
        cpus.append(cpu)
        print(f"  {label} run {i + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
    return statistics.median(walls), statistics.median(cpus)


def bare_workflow(root: Path, n_prep: int, n_work: int) -> Path:
    """A Snakefile with n_prep + n_work + 2 jobs: prep -> work (wildcards) -> aggregate -> all."""
    root.mkdir(parents=True)
    per_group = -(-n_work // n_prep)
    work = [f"work/{i % n_prep}/{i}.txt" for i in range(n_work)]
    (root / "targets.txt").write_text("\n".join(work) + "\n")
    snakefile = root / "Snakefile"
    snakefile.write_text(
        f"""# {n_prep} prep, {n_work} work jobs (<= {per_group} per prep), aggregate, plot, all
WORK = open("targets.txt").read().split()


rule all:
    input:
        "summary/plot.txt",


rule plot:
    input:
        "summary/aggregate.txt",
    output:
        "summary/plot.txt",
    shell:
        "touch {{output}}"


rule aggregate:
    input:
        WORK,
    output:
        "summary/aggregate.txt",
    shell:
        "touch {{output}}"


rule work:
    input:
        "prep/{{group}}.txt",
    output:
        "work/{{group}}/{{job}}.txt",
    wildcard_constraints:
        group=r"\\d+",
        job=r"\\d+",
    threads: 1
    resources:
        mem_mb=1000,
    params:
        batch=lambda wc: int(wc.job) % 9,
    shell:
        "touch {{output}}"


rule prep:
    output:
        "prep/{{group}}.txt",
    shell:
        "touch {{output}}"
"""
    )
    return snakefile


def outputs_of(dry_run_stdout: str) -> list[str]:
    files = []
    for line in dry_run_stdout.splitlines():
        line = line.strip()
        if line.startswith("output:"):
            files.extend(f.strip() for f in line[len("output:") :].split(","))
    return files


def one_manifest_check(root: Path, dry_run_stdout: str, name: str) -> tuple[bool, dict]:
    """Touch the whole study 'complete', edit name's preprocessing, dry-run again."""
    outputs = outputs_of(dry_run_stdout)
    for f in outputs:
        path = root / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    print(f"  created {len(outputs)} output files (empty); snakemake --touch ...", flush=True)
    # python -c CODE ARGS...: the CLI reads ARGS (the command line minus 'python -m snakemake')
    cli_args = snakemake(SNAKEFILE, root, "--touch", "--forceall")[3:]
    touch = [sys.executable, "-c", TOUCH_WITHOUT_SLEEP, *cli_args]
    wall, _, _ = run(touch, root)
    print(f"  --touch took {wall:.1f} s", flush=True)
    _, _, after = run(snakemake(SNAKEFILE, root, "-n"), root)
    complete = job_stats(after.stdout) if "Job stats:" in after.stdout else {}
    if complete:
        print(f"  after --touch, a dry run still plans {complete}")
        return False, complete
    print("  after --touch: nothing to be done")
    scalegen.edit_preprocessing(root, name)
    _, _, result = run(snakemake(SNAKEFILE, root, "-n"), root)
    planned = job_stats(result.stdout)
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n)+)", result.stdout, re.M)
    strangers = [
        (rule, body.strip().splitlines()[0])
        for rule, body in jobs
        if rule in {"preprocess", "accuracy", "latency", "fetch_model", "convert_model"}
        and rule != "preprocess"
        and f"/{name}/" not in body
    ]
    n_batch = len(scalegen.BATCH_SIZES)
    expected = {
        "preprocess": 1,
        "accuracy": 1,
        "latency": n_batch,
        "aggregate": 1,
        "plot": 1,
        "all": 1,
    }
    ok = planned == expected and not strangers and len(jobs) == sum(planned.values())
    if strangers:
        print(f"  jobs of other manifests planned: {strangers[:5]}")
    return ok, planned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=300, help="models (x3 manifests)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--artifacts", type=Path, help="reuse tiny.pt/tiny.keras from here")
    parser.add_argument("--skip-check", action="store_true", help="no one-manifest check")
    parser.add_argument("--limit", type=float, help="fail if the study's median wall > this")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="reproscope-scale-"))
    try:
        root = tmp / "study"
        start = time.perf_counter()
        scalegen.build(root, n_models=args.models, artifacts=args.artifacts)
        print(
            f"study: {3 * args.models} manifests in {root} "
            f"(generated in {time.perf_counter() - start:.1f} s)",
            flush=True,
        )

        # One plain dry run: the job counts, and (for the check) every output path.
        _, _, first = run(snakemake(SNAKEFILE, root, "-n"), root)
        stats = job_stats(first.stdout)
        total = sum(stats.values())
        inference = stats.get("accuracy", 0) + stats.get("latency", 0)
        print(f"study DAG: {total} jobs {stats}", flush=True)

        study_wall, study_cpu = timed(
            snakemake(SNAKEFILE, root, "-n", "--quiet"), root, args.repeats, "study"
        )

        bare = bare_workflow(tmp / "bare", n_prep=total - inference - 3, n_work=inference)
        _, _, bare_first = run(snakemake(bare, bare.parent, "-n", config=False), bare.parent)
        bare_total = sum(job_stats(bare_first.stdout).values())
        assert bare_total == total, (bare_total, total)
        bare_wall, bare_cpu = timed(
            snakemake(bare, bare.parent, "-n", "--quiet", config=False),
            bare.parent,
            args.repeats,
            "bare",
        )

        one = tmp / "one"
        one.mkdir()
        (one / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n')
        start_wall, start_cpu = timed(
            snakemake(one / "Snakefile", one, "-n", "--quiet", config=False), one, 1, "1-job"
        )

        print()
        print(f"jobs in the DAG                 {total} ({inference} inference)")
        print(
            f"study   snakemake -n --quiet    {study_wall:6.2f} s wall  {study_cpu:6.2f} s CPU"
            f"  (median of {args.repeats})"
        )
        print(
            f"bare    snakemake -n --quiet    {bare_wall:6.2f} s wall  {bare_cpu:6.2f} s CPU"
            f"  (median of {args.repeats})"
        )
        print(
            f"ratio   study / bare            {study_wall / bare_wall:6.2f} x wall "
            f"{study_cpu / bare_cpu:6.2f} x CPU"
        )
        print(
            f"1-job   snakemake -n --quiet    {start_wall:6.2f} s wall  {start_cpu:6.2f} s CPU"
            "  (fixed start-up cost)"
        )
        print(
            f"ratio, start-up subtracted      "
            f"{(study_wall - start_wall) / max(bare_wall - start_wall, 1e-9):6.2f} x wall "
            f"{(study_cpu - start_cpu) / max(bare_cpu - start_cpu, 1e-9):6.2f} x CPU"
        )

        status = 0
        if args.limit is not None and study_wall > args.limit:
            print(f"FAIL: the study's dry run took {study_wall:.2f} s > {args.limit} s")
            status = 1
        if not args.skip_check:
            print()
            name = scalegen.manifest_names(args.models)[min(7, args.models - 1) * 3]
            print(f"one-manifest check: edit {name}: inputs.resize.method", flush=True)
            ok, planned = one_manifest_check(root, first.stdout, name)
            print(f"  planned after the edit: {sum(planned.values())} jobs {planned}")
            print("  OK: only that manifest's jobs" if ok else "  FAIL: unexpected jobs")
            status = status or (0 if ok else 1)
        return status
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
