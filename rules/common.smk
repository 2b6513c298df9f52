import os
import re
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from reproscope.plan import jobs, stamps, summaries, targets
from reproscope.plan.inference import AccuracyJobs, inference_inputs, slurm_resource
from reproscope.plan.interpreters import Interpreters
from reproscope.plan.results import Results, beside
from reproscope.plan.rounds import TIMING_RESOURCE, Rounds
from reproscope.plan.parse_cache import ParseCache
from reproscope.plan.study import load_study, variant_only_caches
from reproscope.runtime import launch, layout
from reproscope.acquire.envs import conda_tool
from reproscope.acquire.preprocess import geometric_spec
from reproscope.errors import InputError, InputErrors
from reproscope.runtime.fingerprint import gpus
from reproscope.runtime.cache import CHUNK_IMAGES as DEFAULT_CHUNK_IMAGES
from reproscope.report.compare import MIN_EFFECT


def _config_label():
    files = [str(f) for f in workflow.overwrite_configfiles] or ["config/config.yaml"]
    return files[-1]


try:
    study = load_study(
        config,
        _config_label(),
        gpu_present=bool(gpus()),
        parsed=ParseCache(layout.parse_cache()),
    )
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

INFER_SHELL = launch.shell(launch.INFER)
RANDOM_INIT_SHELL = launch.shell(launch.RANDOM_INIT)
CONVERT_SHELL = launch.shell(launch.CONVERT)
ROUNDS_SHELL = launch.shell(launch.ROUNDS, "{params.plan:q}")


def code_stamp(rule, script=None, shell=None):
    """A declared input that changes when the rule's script or shell command does."""
    text = (
        (Path(workflow.basedir) / "scripts" / script).read_text() if script else shell
    )
    return stamps.code_stamp(rule, text)


canonical = summaries.canonical
for_report = summaries.for_report
names_regex = targets.names_regex
DERIVED = targets.sourced(study, "derived")
INITIALISED = targets.sourced(study, "random_init")
FETCHED = targets.fetched(study)
EVALUATED = [*study.settings["models"], *study.variants]
SPECS = {study.preprocess_hash(n): n for n in EVALUATED}
VARIANT_CACHES = variant_only_caches(study.jobs)
DIAGNOSED = study.config.get("diagnose", [])

RESULT_FILES = Results(study)
ACCURACY_RESULTS = RESULT_FILES.accuracy
LATENCY_RESULTS = RESULT_FILES.latency
stamps.write_job_stamps(study, EVALUATED)

INTERPRETERS = Interpreters(config["environments"], USE_CONDA)
env_python = INTERPRETERS.python
INFER_CODE = code_stamp("inference", shell=INFER_SHELL)
ACCURACY = AccuracyJobs(study, RESULT_FILES.jobs, SHARDS)
ROUNDS = Rounds(
    study, RESULT_FILES.latency_rows, env_python, INFER_CODE, RESULT_FILES.jobs
)


# Round jobs of different comparison groups must not time on the same cores at once: each
# takes one unit of `timing` and one exists (profiles/default; --resources may say more).
# Scoped local: on a cluster each submitted job has its own, so groups run in parallel.
resource_scopes:
    timing="local",


if TIMING_RESOURCE not in workflow.global_resources:
    workflow.register_resource(TIMING_RESOURCE, 1)

partition = slurm_resource(study.systems, "slurm_partition")
constraint = slurm_resource(study.systems, "slurm_constraint")
gres = slurm_resource(study.systems, "slurm_gres", cuda_only=True)


def artifact(name):
    return jobs.artifact_of(study, name)


def inference_env_file(wildcards):
    """With --sdm conda and conda/mamba present, the job's environment file; else None
    (the job runs the prefix build_env made, see envs.smk)."""
    return INTERPRETERS.conda_file(wildcards.env)


def conversion_env_file(wildcards):
    return INTERPRETERS.conda_file(study.converter_env_of(wildcards.manifest))


def manifest_env_file(wildcards):
    return INTERPRETERS.conda_file(study.env_of(wildcards.manifest))


def variant_table_inputs(kind):
    """What the table of one kind of variant (ablation, diagnosis) reads."""
    variants, bases = RESULT_FILES.variant_tables(kind)
    return {
        "index": layout.dataset_index(study.dataset),
        "base": bases,
        "variants": variants,
        "topk": beside(bases + variants, layout.topk_of),
        "made_from": RESULT_FILES.dependencies(bases + variants),
        "labels": sorted(
            {str(study.manifest(n).labels_path) for n in variant_table_names(kind)}
        ),
    }


def variant_table_names(kind):
    """The manifests a variant table reads: its variants and their bases."""
    variants = [n for n, v in study.variants.items() if v["kind"] == kind]
    return [*RESULT_FILES.bases_of(kind), *variants]


def variant_table_manifests(kind):
    return for_report(
        canonical(summaries.manifest_summaries(study, variant_table_names(kind)))
    )


def variant_table_variants(kind):
    return for_report(canonical(summaries.variant_summaries(study, kind)))


def variant_table_digests(kind):
    return RESULT_FILES.digests(sum(RESULT_FILES.variant_tables(kind), []))
