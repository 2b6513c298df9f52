import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from reproscope.envs import env_python as python_of
from reproscope.errors import InputError, InputErrors
from reproscope.fingerprint import gpus
from reproscope.preprocess import spec_of
from reproscope.study import load_study


def _config_label():
    files = [str(f) for f in workflow.overwrite_configfiles] or ["config/config.yaml"]
    return files[-1]


try:
    study = load_study(config, _config_label(), gpu_present=bool(gpus()))
except (InputError, InputErrors) as exc:
    raise WorkflowError(f"reproscope: the study cannot start:\n{exc}") from None

SRC = str(Path(workflow.basedir) / "src")
RESULTS = "results"
JOBS = study.jobs
THREADS = study.settings["threads"]
GROUPED = study.settings.get("group_batch_sizes", False)
BATCH_SIZES = sorted(study.settings["batch_sizes"])
# With grouping, Offline points are measured by latency_grouped, one process per group.
SINGLE_SCENARIOS = "SingleStream|Server" if GROUPED else "Offline|SingleStream|Server"


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
    base = study.artifact_name(name)
    return f"{RESULTS}/models/{base}/model.{study.manifest(base).artifact_suffix}"


def env_lock(env):
    return f"{RESULTS}/envs/{env}/lock.json"


def env_prefix(env):
    return f"{RESULTS}/envs/{env}/prefix"


def env_python(env):
    return str(python_of(Path(env_prefix(env)).resolve(), env))


def dataset_index(dataset):
    return f"{RESULTS}/datasets/{dataset}/index.json"


def flops_files():
    """An operation count per model, from the first ONNX artifact of each model family."""
    found = {}
    for name in study.needed_manifests():
        m = study.manifest(name)
        if m.artifact_suffix == "onnx" and name in study.settings["models"]:
            found.setdefault(m.model, f"{RESULTS}/models/{name}/flops.json")
    return sorted(found.values())


def preprocessed(name):
    return (
        f"{RESULTS}/preprocess/{study.dataset}/{study.preprocess_hash(name)}/inputs.npy"
    )


EVALUATED = [*study.settings["models"], *study.variants]
SPECS = {study.preprocess_hash(n): n for n in EVALUATED}


def inference_dir(row):
    return f"{RESULTS}/inference/{row.system}/{row.manifest}/{row.env}/{row.device}"


def accuracy_results(kinds=("study",)):
    rows = (
        JOBS[(JOBS["mode"] == "accuracy") & JOBS["kind"].isin(kinds)]
        if len(JOBS)
        else JOBS
    )
    return [f"{inference_dir(r)}/accuracy.json" for r in rows.itertuples()]


def variant_results():
    return accuracy_results(kinds=("ablation", "diagnosis"))


def latency_results():
    rows = JOBS[JOBS["mode"] == "latency"] if len(JOBS) else JOBS
    return [
        f"{inference_dir(r)}/{r.scenario}_bs{int(r.batch_size)}_r{int(r.repeat)}.json"
        for r in rows.itertuples()
    ]


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


def inference_inputs(wildcards):
    """Artifact, preprocessed tensor (+ its timing), and the environment lock of a job."""
    tensor = preprocessed(wildcards.manifest)
    return {
        "model": artifact(wildcards.manifest),
        "inputs": tensor,
        "preprocess_timing": tensor[: -len(".npy")] + ".json",
        "lock": env_lock(wildcards.env),
    }


def grouped_job(wildcards, output):
    """All Offline batch sizes of one (system, manifest, env, device, repeat)."""
    wildcards.scenario, wildcards.batch_size = "Offline", BATCH_SIZES[0]
    job = json.loads(inference_job(wildcards, output, "latency"))
    del job["result_out"], job["batch_size"]
    job.update(batch_sizes=BATCH_SIZES, result_outs=list(output))
    return json.dumps(job, sort_keys=True)


def inference_job(wildcards, output, mode):
    m = study.manifest(wildcards.manifest)
    job = {
        "mode": mode,
        "framework": m.framework,
        "manifest": m.name,
        "model": m.model,
        "system": wildcards.system,
        "env": wildcards.env,
        "device": wildcards.device,
        "threads": study.systems.get(wildcards.system, {}).get("threads", THREADS),
        "artifact": artifact(m.name),
        "inputs": preprocessed(m.name),
        "env_lock": env_lock(wildcards.env),
        "architecture": study.architecture_job(m.name, wildcards.env),
        "unsafe_pickle": study.unsafe_pickle(m.name),
        "top_k": m.outputs["top_k"],
        "result_out": output.get("result", output[0]),
    }
    if mode == "accuracy":
        job.update(
            batch_size=study.settings["accuracy_batch_size"],
            logits_out=output.logits,
            topk_out=output.topk,
        )
    else:
        job["batch_size"] = int(wildcards.batch_size)
        job["timing"] = study.settings["timing"]
        job["scenario"] = wildcards.scenario
        job["repeat"] = int(wildcards.repeat)
        if wildcards.scenario == "Server":
            job["server"] = study.settings["server"]
    return json.dumps(job, sort_keys=True)


def all_outputs():
    return [
        f"{RESULTS}/summary/runs.csv",
        f"{RESULTS}/summary/accuracy.csv",
        f"{RESULTS}/summary/agreement.csv",
        f"{RESULTS}/summary/repeats.csv",
        f"{RESULTS}/summary/environments.csv",
        f"{RESULTS}/summary/system_ranking.csv",
        f"{RESULTS}/plots/system_ranking.png",
        f"{RESULTS}/plots/latency_throughput.png",
        f"{RESULTS}/plots/accuracy_vs_claim.png",
        f"{RESULTS}/plots/latency_breakdown.png",
        *(
            [
                f"{RESULTS}/summary/ablations.csv",
                f"{RESULTS}/summary/diagnosis.csv",
                f"{RESULTS}/plots/ablations.png",
            ]
            if study.variants
            else []
        ),
    ]


def conversion_job(name, source_path, out_path):
    m = study.manifest(name)
    derived = m.source["derived"]
    source = study.manifest(derived["from"])
    return json.dumps(
        {
            "converter": derived["converter"],
            "opset": derived.get("opset", 17),
            "source": source_path,
            "output": out_path,
            "architecture": study.architecture_job(
                source.name, study.converter_env_of(name)
            ),
            "unsafe_pickle": bool(source.source.get("unsafe_pickle", False)),
            "input_size": m.inputs["size"],
        },
        sort_keys=True,
    )


def random_init_job(name, out_path):
    m = study.manifest(name)
    return json.dumps(
        {
            "format": m.source["format"],
            "random_init": m.source["random_init"],
            "architecture": study.architecture_job(name, study.env_of(name)),
            "output": out_path,
        },
        sort_keys=True,
    )


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


_ENV_FILES = {}  # env name -> resolved path of its file; asked once per inference job


def _env_file(env):
    path = _ENV_FILES.get(env)
    if path is None:
        path = _ENV_FILES[env] = str(Path(config["environments"][env]).resolve())
    return path


def inference_env_file(wildcards):
    """The pinned file of a job's environment; build_env builds it (see envs.smk)."""
    return _env_file(wildcards.env)


def conversion_env_file(wildcards):
    return _env_file(study.converter_env_of(wildcards.manifest))
