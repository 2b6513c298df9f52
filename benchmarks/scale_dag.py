"""How long Snakemake takes to plan a large study, against a bare workflow of the same DAG.

    python benchmarks/scale_dag.py [--models 300] [--repeats 3] [--keep] [--with-slurm]

0. Hides SLURM's clients (sinfo, squeue, sbatch, ...) from PATH unless --with-slurm: with
   sinfo present and no controller answering, Snakemake's SLURM executor plugin stalls
   probing it, which is not the cost of planning. Prints whether sinfo is on PATH.
1. Generates a study (tests/scalegen.py) in a temporary directory: --models tiny models in
   pytorch, onnxruntime and tensorflow (3 x models manifests), batch sizes 1..128 (8),
   the default study's timing shape (FixedBatch, SingleStream, Server, Offline; 3 rounds),
   cpu, environment host, a generated synthetic-colours dataset. --models 300 gives
   3,306 jobs: 900 accuracy jobs, 900 round jobs (3 rounds of each model's comparison
   group) measuring 29,700 timing points, and the fetch, conversion, preprocessing and
   operation-count jobs before them.
2. Generates a bare Snakefile of the same DAG (the same rules, jobs, files and fan-in,
   static patterns and `touch` commands: no reproscope code, params or conda; asserted to
   plan as many jobs) and a one-job Snakefile (the fixed cost of starting Snakemake).
3. Times `snakemake -n --quiet` of the three, interleaved (study, bare, 1-job, study, ...)
   --repeats times: median [min-max] of wall and CPU (user+sys) seconds, and the ratios.
4. The one-manifest check: creates every output of the study (empty files; nothing is
   executed) and runs `snakemake --touch --forceall`, which touches them in DAG order and
   records Snakemake's metadata (params, input sets, code) as if the jobs had run (without
   --forceall nothing is planned, so nothing is recorded; and without that metadata an
   edit is invisible: Snakemake 9 does not re-run up-to-date jobs because an intermediate
   input is missing, it re-runs them because their recorded input set or params
   changed, and that is what reruns the edited manifest's jobs). Then it edits one
   manifest's inputs.resize.method and dry-runs again, and checks that only that
   manifest's preprocessing and accuracy jobs, its group's rounds (a round measures every
   configuration of the model), aggregate, the plots, system_ranking and all are planned.
   Snakemake's touch executor sleeps 0.1 s per job (for coarse file-system clocks); with
   ~10,000 jobs that is 16 minutes, so the touch run sets that sleep to 0 (this file
   system has nanosecond mtimes, and Snakemake compares mtimes strictly).

Cost: the --touch run grows faster than linearly with the jobs (Snakemake's touch and
metadata path), so time the full size with --skip-check and run the check at a smaller
--models.

Exit status 1 when the one-manifest check fails (or the study's median CPU s exceeds
--limit, if given).
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
sys.path.insert(0, str(REPO / "src"))

from reproscope.runtime import layout  # noqa: E402
from tests import scalegen  # noqa: E402

SNAKEFILE = REPO / "Snakefile"
SLURM_TOOLS = frozenset(
    "sinfo squeue sbatch scontrol srun salloc scancel sacct sacctmgr sstat".split()
)
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


def slurm_free_path(path: str, tmp: Path) -> str:
    """PATH with every folder that holds a SLURM client replaced by a folder of links to
    its other programs: with sinfo present but no controller, Snakemake's SLURM executor
    plugin stalls probing it, and that is not the cost of planning."""
    folders = []
    for i, folder in enumerate(path.split(os.pathsep)):
        if not folder or not any((Path(folder) / t).exists() for t in SLURM_TOOLS):
            folders.append(folder)
            continue
        shadow = tmp / f"path{i}"
        shadow.mkdir()
        for entry in Path(folder).iterdir():
            if entry.name not in SLURM_TOOLS:
                (shadow / entry.name).symlink_to(entry)
        folders.append(str(shadow))
    return os.pathsep.join(folders)


def interleaved(
    cmds: dict[str, tuple[list[str], Path]], repeats: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Run each command once per repeat, alternating (A B A B ...), so that a drift of the
    shared machine lands on all of them alike; (walls, CPUs) per label."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in cmds}
    for i in range(repeats):
        for label, (cmd, cwd) in cmds.items():
            wall, cpu, _ = run(cmd, cwd)
            times[label][0].append(wall)
            times[label][1].append(cpu)
            print(f"  {label} run {i + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
    return times


def spread(values: list[float]) -> str:
    """median [min-max]"""
    return f"{statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]"


def bare_workflow(root: Path, n_models: int, n_rounds: int) -> Path:
    """The study's DAG written as a plain Snakefile: the same rules with the same jobs,
    files and fan-in (fetch, convert, preprocess with a chunk folder, accuracy reading
    model, cache, chunks, lock and stamps, chained rounds per model that read its
    configurations' inputs and write one folder each, flops, aggregate over everything,
    plot, ranking, the comparison and Server plots, the limits job and its table),
    with static patterns and plain `touch` commands: no reproscope code, no params, no
    conda. What Snakemake itself costs to plan a DAG of that size and shape."""
    root.mkdir(parents=True)
    models = scalegen.model_names(n_models)
    (root / "models.txt").write_text("\n".join(models) + "\n")
    for name in scalegen.manifest_names(n_models):  # the stamps: files no job makes
        (root / "jobs" / name).mkdir(parents=True)
        (root / "jobs" / name / "manifest.json").touch()
    for stamp in ("settings.json", "code.json", "labels.txt"):
        (root / "jobs" / stamp).touch()
    snakefile = root / "Snakefile"
    snakefile.write_text(
        f"""# the shape of tests/scalegen.py's study: {n_models} models, {n_rounds} rounds
MODELS = open("models.txt").read().split()
NAMES = [f"{{m}}-{{fw}}" for m in MODELS for fw in ("pytorch", "onnx", "tensorflow")]
LOCK = "env/lock.json"
STAMPS = ["jobs/settings.json", "jobs/code.json"]


def model_of(name):
    return name.rsplit("-", 1)[0]


def config_inputs(wildcards):
    return [
        f
        for fw in ("pytorch", "onnx", "tensorflow")
        for f in (
            f"models/{{wildcards.model}}-{{fw}}/model.bin",
            f"cache/{{wildcards.model}}/cache.json",
            f"cache/{{wildcards.model}}/chunks",
            f"jobs/{{wildcards.model}}-{{fw}}/manifest.json",
        )
    ] + [LOCK, *STAMPS]


ACCURACY = expand("inference/{{name}}/accuracy.json", name=NAMES)
ROUNDS = expand("rounds/{{model}}/r{{repeat}}", model=MODELS, repeat=range({n_rounds}))


rule all:
    input:
        "summary/plot.txt",
        "summary/ranking.txt",
        "summary/forest.txt",
        "summary/server.txt",


rule plot:
    input:
        "summary/runs.csv",
        "summary/accuracy.csv",
        "summary/limits.csv",
    output:
        "summary/plot.txt",
    shell:
        "touch {{output}}"


rule forest:
    input:
        "summary/comparisons.csv",
    output:
        "summary/forest.txt",
    shell:
        "touch {{output}}"


rule server:
    input:
        "summary/runs.csv",
        ROUNDS,
    output:
        "summary/server.txt",
    shell:
        "touch {{output}}"


rule limits_table:
    input:
        "limits/local.json",
    output:
        "summary/limits.csv",
    shell:
        "touch {{output}}"


rule limits:
    input:
        "jobs/settings.json",
        LOCK,
    output:
        "limits/local.json",
    shell:
        "touch {{output}}"


rule ranking:
    input:
        "summary/runs.csv",
    output:
        "summary/ranking.txt",
    shell:
        "touch {{output}}"


rule aggregate:
    input:
        index="data/index.json",
        accuracy=ACCURACY,
        logits=[a.replace("accuracy.json", "logits.npy") for a in ACCURACY],
        topk=[a.replace("accuracy.json", "topk.npy") for a in ACCURACY],
        rounds=ROUNDS,
        flops=expand("models/{{model}}-onnx/flops.json", model=MODELS),
        made_from=[LOCK, *expand("models/{{name}}/model.bin", name=NAMES)],
        labels="jobs/labels.txt",
        limits="summary/limits.csv",
        code=STAMPS[1],
    output:
        runs="summary/runs.csv",
        accuracy="summary/accuracy.csv",
        comparisons="summary/comparisons.csv",
    shell:
        "touch {{output}}"


rule round:
    input:
        configs=config_inputs,
        previous=lambda wc: [f"rounds/{{wc.model}}/r{{int(wc.repeat) - 1}}"][: int(wc.repeat)],
    output:
        directory("rounds/{{model}}/r{{repeat}}"),
    wildcard_constraints:
        repeat=r"\\d+",
    shell:
        "mkdir -p {{output}}"


rule accuracy:
    input:
        model="models/{{model}}-{{fw}}/model.bin",
        cache="cache/{{model}}/cache.json",
        chunks="cache/{{model}}/chunks",
        lock=LOCK,
        stamp="jobs/{{model}}-{{fw}}/manifest.json",
        stamps=STAMPS,
    output:
        result="inference/{{model}}-{{fw}}/accuracy.json",
        logits="inference/{{model}}-{{fw}}/logits.npy",
        topk="inference/{{model}}-{{fw}}/topk.npy",
    wildcard_constraints:
        fw="pytorch|onnx|tensorflow",
    shell:
        "touch {{output}}"


rule count_flops:
    input:
        "models/{{model}}-onnx/model.bin",
    output:
        "models/{{model}}-onnx/flops.json",
    shell:
        "touch {{output}}"


rule preprocess:
    input:
        "data/index.json",
    output:
        cache="cache/{{model}}/cache.json",
        chunks=directory("cache/{{model}}/chunks"),
    shell:
        "mkdir -p {{output.chunks}} && touch {{output.cache}}"


rule convert_model:
    input:
        "models/{{model}}-pytorch/model.bin",
        LOCK,
    output:
        "models/{{model}}-onnx/model.bin",
    shell:
        "touch {{output}}"


rule fetch_model:
    output:
        "models/{{model}}-{{fw}}/model.bin",
    wildcard_constraints:
        fw="pytorch|tensorflow",
    shell:
        "touch {{output}}"


rule fetch_dataset:
    output:
        "data/index.json",
    shell:
        "touch {{output}}"


rule build_env:
    output:
        LOCK,
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


def is_folder_output(path: str) -> bool:
    """A directory() output of the study: a cache's chunk folder or a round's folder."""
    if path == layout.cache_chunks(str(Path(path).with_name("cache.json"))):
        return True
    return re.fullmatch(layout.round_dir(r"[^/]+", r"[^/]+", r"\d+"), path) is not None


def one_manifest_check(
    snakefile: Path, root: Path, dry_run_stdout: str, name: str
) -> tuple[bool, dict]:
    """Touch the whole study 'complete', edit name's preprocessing, dry-run again."""
    outputs = outputs_of(dry_run_stdout)
    for f in outputs:
        path = root / f
        if is_folder_output(f):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    print(f"  created {len(outputs)} outputs (empty); snakemake --touch ...", flush=True)
    # python -c CODE ARGS...: the CLI reads ARGS (the command line minus 'python -m snakemake')
    cli_args = snakemake(snakefile, root, "--touch", "--forceall")[3:]
    touch = [sys.executable, "-c", TOUCH_WITHOUT_SLEEP, *cli_args]
    wall, _, _ = run(touch, root)
    print(f"  --touch took {wall:.1f} s", flush=True)
    _, _, after = run(snakemake(snakefile, root, "-n"), root)
    complete = job_stats(after.stdout) if "Job stats:" in after.stdout else {}
    if complete:
        print(f"  after --touch, a dry run still plans {complete}")
        return False, complete
    print("  after --touch: nothing to be done")
    scalegen.edit_preprocessing(root, name)
    _, _, result = run(snakemake(snakefile, root, "-n"), root)
    planned = job_stats(result.stdout)
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n)+)", result.stdout, re.M)
    # A round measures every configuration of its model's group: the edited manifest's only.
    group = name.rsplit("-", 1)[0]
    strangers = [
        (rule, body.strip().splitlines()[0])
        for rule, body in jobs
        if (rule in {"accuracy", "fetch_model", "convert_model"} and f"/{name}/" not in body)
        or (rule.startswith("latency_round_") and f"group={group}," not in body)
    ]
    expected = {
        "preprocess": 1,
        "accuracy": 1,
        "latency_round_local": scalegen.REPEATS,
        "aggregate": 1,
        "plot": 1,
        "plot_comparisons": 1,
        "plot_server": 1,
        "system_ranking": 1,
        "all": 1,
    }
    ok = planned == expected and not strangers and len(jobs) == sum(planned.values())
    if strangers:
        print(f"  jobs of other manifests planned: {strangers[:5]}")
    return ok, planned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=300, help="models (x3 manifests)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each workflow")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--artifacts", type=Path, help="reuse tiny.pt/tiny.keras from here")
    parser.add_argument("--skip-check", action="store_true", help="no one-manifest check")
    parser.add_argument("--limit", type=float, help="fail if the study's median CPU s > this")
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=SNAKEFILE,
        help="the study's Snakefile (another checkout's, to compare; default this one's)",
    )
    parser.add_argument(
        "--with-slurm", action="store_true", help="leave SLURM's clients (sinfo...) on PATH"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="reproscope-scale-"))
    try:
        if not args.with_slurm:
            (tmp / "bin").mkdir()
            os.environ["PATH"] = slurm_free_path(os.environ.get("PATH", ""), tmp / "bin")
        sinfo = shutil.which("sinfo")
        print(f"SLURM clients on PATH: {'yes (' + sinfo + ')' if sinfo else 'no'}")
        root = tmp / "study"
        start = time.perf_counter()
        scalegen.build(root, n_models=args.models, artifacts=args.artifacts)
        print(
            f"study: {3 * args.models} manifests in {root} "
            f"(generated in {time.perf_counter() - start:.1f} s)",
            flush=True,
        )

        # One plain dry run of each: the job counts, and (for the check) every output path.
        _, _, first = run(snakemake(args.snakefile, root, "-n"), root)
        stats = job_stats(first.stdout)
        total = sum(stats.values())
        rounds = sum(n for rule, n in stats.items() if rule.startswith("latency_round_"))
        work = stats.get("accuracy", 0)
        print(f"study DAG: {total} jobs {stats}", flush=True)
        n_rounds = rounds // args.models  # each model's group has its own rounds
        bare = bare_workflow(tmp / "bare", n_models=args.models, n_rounds=n_rounds)
        _, _, bare_first = run(snakemake(bare, bare.parent, "-n", config=False), bare.parent)
        bare_stats = job_stats(bare_first.stdout)
        print(f"bare DAG: {sum(bare_stats.values())} jobs {bare_stats}", flush=True)
        assert sum(bare_stats.values()) == total, (bare_stats, total)

        one = tmp / "one"
        one.mkdir()
        (one / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n')
        times = interleaved(
            {
                "study": (snakemake(args.snakefile, root, "-n", "--quiet"), root),
                "bare": (snakemake(bare, bare.parent, "-n", "--quiet", config=False), bare.parent),
                "1-job": (snakemake(one / "Snakefile", one, "-n", "--quiet", config=False), one),
            },
            args.repeats,
        )
        med = {k: (statistics.median(w), statistics.median(c)) for k, (w, c) in times.items()}

        print()
        print(f"jobs in the DAG {total} ({work} accuracy, {rounds} timing rounds)")
        print(f"SLURM clients on PATH: {'yes' if sinfo else 'no'}")
        print(f"snakemake -n --quiet, median [min-max] of {args.repeats}, interleaved:")
        for label, (walls, cpus) in times.items():
            print(f"  {label:6s} {spread(walls)} s wall  {spread(cpus)} s CPU (user+sys)")
        (sw, sc), (bw, bc), (ow, oc) = med["study"], med["bare"], med["1-job"]
        print(f"  ratio study / bare            {sw / bw:6.2f} x wall {sc / bc:6.2f} x CPU")
        print(
            f"  ratio, 1-job start-up subtracted "
            f"{(sw - ow) / max(bw - ow, 1e-9):6.2f} x wall "
            f"{(sc - oc) / max(bc - oc, 1e-9):6.2f} x CPU"
        )

        status = 0
        if args.limit is not None and sc > args.limit:
            print(f"FAIL: the study's dry run took {sc:.2f} s CPU > {args.limit} s")
            status = 1
        if not args.skip_check:
            print()
            name = scalegen.manifest_names(args.models)[min(7, args.models - 1) * 3]
            print(f"one-manifest check: edit {name}: inputs.resize.method", flush=True)
            ok, planned = one_manifest_check(args.snakefile, root, first.stdout, name)
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
