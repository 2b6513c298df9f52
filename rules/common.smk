import dataclasses
import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from reproscope.plan import jobs
from reproscope.runtime import layout
from reproscope.runtime.jobs import digest
from reproscope.acquire.envs import HOST, conda_tool
from reproscope.report.provenance import write_if_changed
from reproscope.errors import InputError, InputErrors
from reproscope.runtime.fingerprint import gpus
from reproscope.runtime.cache import CHUNK_IMAGES as DEFAULT_CHUNK_IMAGES
from reproscope.report.compare import MIN_EFFECT
from reproscope.acquire.preprocess import geometric_spec, spec_of
from reproscope.plan.study import load_study, variant_only_caches, round_runtime_minutes


def _config_label():
    files = [str(f) for f in workflow.overwrite_configfiles] or ["config/config.yaml"]
    return files[-1]


try:
    study = load_study(config, _config_label(), gpu_present=bool(gpus()))
except (InputError, InputErrors) as exc:
    raise WorkflowError(f"reproscope: the study cannot start:\n{exc}") from None

# This checkout's package, for every rule: shell rules read it from the environment
# (PYTHONPATH="$REPROSCOPE_SRC"), script rules from snakemake.scriptdir. Neither is a
# param, so results and .snakemake/ stay valid when the project moves. Set here, not
# asserted with envvars:, because every Snakemake process (remote jobs re-read this file)
# sets them for its own checkout and interpreter.
os.environ.update(
    REPROSCOPE_SRC=str(Path(workflow.basedir) / "src"),
    REPROSCOPE_HOST_PYTHON=sys.executable,
)
RESULTS = layout.RESULTS
JOBS = study.jobs
THREADS = study.settings["threads"]
CHUNK_IMAGES = study.settings.get("cache_chunk_images", DEFAULT_CHUNK_IMAGES)
SHARDS = study.settings.get("accuracy_shards", 1)
# One mechanism per run: with --sdm conda, Snakemake's conda: (jobs run the activated
# environment's python); without it, the prefix that build_env makes, and the inference
# and conversion rules' conda: functions return None.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
if USE_CONDA and conda_tool() is None:
    raise WorkflowError(
        "reproscope: --sdm conda needs mamba or conda on PATH, and neither was found. "
        "Fix: install one of them, or run without --sdm conda (the environments are then "
        "built as virtualenvs under results/envs/)"
    )


INFER_SHELL = (
    'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.infer {params.job:q} '
    "> {log} 2>&1"
)
RANDOM_INIT_SHELL = (
    'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.random_init {params.job:q} '
    "> {log} 2>&1"
)
CONVERT_SHELL = (
    'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.convert.main {params.job:q} '
    "> {log} 2>&1"
)


def code_stamp(rule, script=None, shell=None):
    """A declared input that changes when the rule's script or shell command does.

    Snakemake's own code trigger compares a script's file time with the outputs', which
    a fresh clone resets, so the workflow profile leaves that trigger out (see
    profiles/default) and this content hash replaces it.
    """
    text = (
        (Path(workflow.basedir) / "scripts" / script).read_text() if script else shell
    )
    write_if_changed(
        layout.code_stamp(rule), {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    )
    return layout.code_stamp(rule)


def canonical(value):
    """Keys sorted at every level, so reordering a YAML file does not look like a change
    to Snakemake's params rerun trigger."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def names_regex(names):
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


def _sourced(kind):
    return [n for n in study.needed_manifests() if kind in study.manifest(n).source]


DERIVED = _sourced("derived")
INITIALISED = _sourced("random_init")
FETCHED = [n for n in study.needed_manifests() if n not in DERIVED + INITIALISED]


def artifact(name):
    return jobs.artifact_of(study, name)


env_lock = layout.env_lock
env_prefix = layout.env_prefix
dataset_index = layout.dataset_index


def env_python(env):
    """The interpreter a job of env runs: relative to the workdir, or an environment
    variable (the host's), never an absolute path in params."""
    if USE_CONDA:
        return "python"
    if env == HOST:
        return '"$REPROSCOPE_HOST_PYTHON"'
    return layout.prefix_python(env)


def flops_files():
    """An operation count per model, from the first ONNX artifact of each model family."""
    found = {}
    for name in study.needed_manifests():
        m = study.manifest(name)
        if m.artifact_suffix == "onnx" and name in study.settings["models"]:
            found.setdefault(m.model, layout.flops(name))
    return sorted(found.values())


def preprocessed(name):
    return jobs.preprocessed_of(study, name)


EVALUATED = [*study.settings["models"], *study.variants]
SPECS = {study.preprocess_hash(n): n for n in EVALUATED}
VARIANT_CACHES = variant_only_caches(JOBS)

# Every result-writing job, built once: result path -> job.
RESULT_JOBS = {job.result_out: job for job in jobs.table_jobs(study)}

# What the inference jobs use of each manifest and of the study settings, as stamp files
# (declared inputs) rewritten only when it changed: an edit re-plans exactly the jobs
# that use it, even without .snakemake/.
for _name in EVALUATED:
    write_if_changed(layout.manifest_stamp(_name), jobs.manifest_parts(study, _name))
for _mode in jobs.MODE_SETTINGS:
    write_if_changed(layout.settings_stamp(_mode), jobs.mode_settings(study, _mode))


def table_rows(rows, *columns):
    """The values of columns of job-table rows, row by row (each pandas column read whole:
    itertuples reads a string column one element at a time)."""
    return zip(*(rows[c].tolist() for c in columns)) if len(rows) else iter(())


def _results(rows):
    columns = ("mode", "system", "manifest", "env", "device")
    point = ("scenario", "batch_size", "repeat")
    return [
        (
            layout.accuracy_result(*where)
            if mode == "accuracy"
            else layout.latency_result(*where, scenario, int(bs), int(repeat))
        )
        for mode, *where, scenario, bs, repeat in table_rows(rows, *columns, *point)
    ]


def accuracy_results(kinds=("study",)):
    rows = (
        JOBS[(JOBS["mode"] == "accuracy") & JOBS["kind"].isin(kinds)]
        if len(JOBS)
        else JOBS
    )
    return _results(rows)


ACCURACY_RESULTS = accuracy_results()


def variant_results():
    return accuracy_results(kinds=("ablation", "diagnosis"))


def beside(results, of):
    """The logits/top-k files written beside accuracy results (aggregation reads them)."""
    return [str(of(r)) for r in results]


def latency_results():
    return _results(JOBS[JOBS["mode"] == "latency"] if len(JOBS) else JOBS)


LATENCY_RESULTS = latency_results()
# The rounds' folders (one per system and round): what consumers of timing results declare.
LATENCY_ROWS = JOBS[JOBS["mode"] == "latency"] if len(JOBS) else JOBS
ROUND_DIRS = sorted(
    {
        layout.round_dir(system, int(repeat))
        for system, repeat in table_rows(LATENCY_ROWS, "system", "repeat")
    }
)
VARIANT_RESULTS = variant_results()


def result_digests(results):
    """result path -> digest of its current job; aggregation refuses any other."""
    return {r: digest(RESULT_JOBS[r].to_dict()) for r in results}


def result_dependencies(results):
    """The environment locks and artifacts results were made from, hashed at aggregation."""
    found = set()
    for r in results:
        job = RESULT_JOBS[r]
        found.update((job.env_lock, job.artifact, job.inputs))
    return sorted(found)


def system_value(key, cuda_only=False):
    """A SLURM resource taken from the job's system; a plain "" when no system sets it,
    which spares Snakemake a call per job."""
    if not any(key in spec for spec in study.systems.values()):
        return ""

    def value(wildcards):
        if cuda_only and wildcards.device != "cuda":
            return ""
        return study.systems.get(wildcards.system, {}).get(key, "")

    return value


partition = system_value("slurm_partition")
constraint = system_value("slurm_constraint")
gres = system_value("slurm_gres", cuda_only=True)


INFER_CODE = code_stamp("inference", shell=INFER_SHELL)


def inference_inputs(mode):
    """Artifact, geometric cache (index and chunks), the environment lock of a job, and
    the stamps of what it uses of its manifest and the study settings."""

    def inputs(wildcards):
        cache = preprocessed(wildcards.manifest)
        return {
            "model": artifact(wildcards.manifest),
            "inputs": cache,
            "chunks": layout.cache_chunks(cache),
            "lock": env_lock(wildcards.env),
            "manifest_stamp": layout.manifest_stamp(wildcards.manifest),
            "settings_stamp": layout.settings_stamp(mode),
            "code": INFER_CODE,
        }

    return inputs


# Timing is measured in rounds (reproscope.runtime.rounds): one job per system and round runs every
# configuration of that system once, each in its own environment's python; round r needs
# round r-1's results, so rounds never overlap.
TIMED_SYSTEMS = sorted(set(LATENCY_ROWS["system"])) if len(LATENCY_ROWS) else []
ROUNDS_SHELL = (
    'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.rounds {params.plan:q} '
    "> {log} 2>&1"
)


@functools.cache
def timing_configs(system):
    """(manifest, env, device) of every configuration timed on a system."""
    rows = LATENCY_ROWS[LATENCY_ROWS["system"] == system]
    return sorted(set(table_rows(rows, "manifest", "env", "device")))


def round_runtime(system):
    """Minutes a round job of a system may take (SLURM's time limit)."""
    return round_runtime_minutes(study.settings, len(timing_configs(system)))


@functools.cache
def configuration_inputs(system):
    """What the configurations of a system's rounds read, each file once (they share
    their environments' locks and the settings and code stamps)."""
    found = {}
    for manifest, env, device in timing_configs(system):
        wc = SimpleNamespace(manifest=manifest, env=env)
        for key, path in inference_inputs("latency")(wc).items():
            found.setdefault(path, f"{key}_{manifest}_{env}")
    return {key: path for path, key in found.items()}


def round_inputs(system):
    """What every configuration of a round reads, and the previous round's results."""

    def inputs(wildcards):
        found = dict(configuration_inputs(system))
        repeat = int(wildcards.repeat)
        if repeat > 0:
            found["previous_round"] = layout.round_dir(system, repeat - 1)
        return found

    return inputs


def round_plan(system):
    """The round's configurations, each a job of all its timing points."""

    def plan(wildcards, output):
        configs = []
        for manifest, env, device in timing_configs(system):
            where = (system, manifest, env, device)
            job = jobs.round_job(study, *where, int(wildcards.repeat))
            log = layout.round_log(*where, int(wildcards.repeat))
            configs.append(
                {
                    "name": f"{manifest}/{env}/{device}",
                    "python": env_python(env),
                    "job": job.to_dict(),
                    "log": log,
                }
            )
        return json.dumps({"round": int(wildcards.repeat), "configs": configs})

    return plan


def inference_job(wildcards, output, mode):
    if mode == "accuracy" and SHARDS > 1:  # one shard of the job the table holds
        where = (wildcards.system, wildcards.manifest, wildcards.env, wildcards.device)
        whole = jobs.inference_job(study, mode, *where)
        return dataclasses.replace(
            whole,
            shard=[int(wildcards.shard), SHARDS],
            result_out=output.result,
            logits_out=output.logits,
            topk_out=output.topk,
        ).to_json()
    job = RESULT_JOBS.get(output[0])
    if job is None:  # a target outside the job table, asked for by name
        point = (
            (wildcards.scenario, int(wildcards.batch_size), int(wildcards.repeat))
            if mode == "latency"
            else ()
        )
        where = (wildcards.system, wildcards.manifest, wildcards.env, wildcards.device)
        job = jobs.inference_job(study, mode, *where, *point)
    return job.to_json()


def shard_files(of):
    """One file per accuracy shard of a job, of = layout.shard_result (or _logits, _topk)."""

    def files(wildcards):
        where = (wildcards.system, wildcards.manifest, wildcards.env, wildcards.device)
        return [of(*where, k) for k in range(SHARDS)]

    return files


DIAGNOSED = study.config.get("diagnose", [])


def diagnosis_jobs():
    """Per diagnosed manifest: its data, label list, environment's python and the accuracy
    job of its first system and device (the greedy rounds run variants of it)."""
    found = {}
    for name in DIAGNOSED:
        m = study.manifest(name)
        system = (study.settings.get("systems") or list(study.systems))[0]
        env, device = study.env_of(name), study.settings["devices"][0]
        found[name] = {
            "data": m.data,
            "job": jobs.inference_job(
                study, "accuracy", system, name, env, device
            ).to_dict(),
            "python": env_python(env),
            "labels": str(m.labels_path),
            "group": {"env": env, "device": device, "system": system},
        }
    return found


def all_outputs():
    return [
        *map(layout.summary, ("runs.csv", "accuracy.csv", "agreement.csv")),
        *map(layout.summary, ("repeats.csv", "environments.csv", "comparisons.csv")),
        layout.summary("system_ranking.csv"),
        layout.plot("system_ranking.png"),
        layout.plot("latency_throughput.png"),
        layout.plot("accuracy_vs_claim.png"),
        layout.plot("latency_breakdown.png"),
        *(
            [
                layout.summary("ablations.csv"),
                layout.summary("diagnosis.csv"),
                *([layout.summary("diagnosis_greedy.csv")] if DIAGNOSED else []),
                layout.plot("ablations.png"),
            ]
            if study.variants
            else []
        ),
    ]


def conversion_job(name):
    return jobs.conversion_job(study, name).to_json()


def random_init_job(name):
    return jobs.random_init_job(study, name).to_json()


def manifest_summaries(names=None):
    """What aggregation needs of each manifest; a change here re-runs aggregation only."""
    return {
        name: {
            "claims": study.manifest(name).data.get("claims"),
            "labels": str(study.manifest(name).labels_path),
            "label_offset": study.manifest(name).outputs["label_offset"],
        }
        for name in (names or EVALUATED)
    }


def variant_summaries():
    """Each variant's base, kind and changed field; a change re-runs aggregation only."""
    return {
        name: {k: v[k] for k in ("base", "kind", "field", "overrides")}
        for name, v in study.variants.items()
    }


_ENV_FILES = {}  # env name -> path of its file; asked once per inference job


def _env_file(env):
    if not USE_CONDA:
        return None
    path = _ENV_FILES.get(env)
    if path is None:
        path = _ENV_FILES[env] = str(Path(config["environments"][env]).resolve())
    return path


def inference_env_file(wildcards):
    """With --sdm conda and conda/mamba present, the job's environment file; else None
    (the job runs the prefix build_env made, see envs.smk)."""
    return _env_file(wildcards.env)


def conversion_env_file(wildcards):
    return _env_file(study.converter_env_of(wildcards.manifest))


def manifest_env_file(wildcards):
    return _env_file(study.env_of(wildcards.manifest))
