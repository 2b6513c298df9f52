"""Every path under results/: the rules' output patterns and the files the package reads.

All paths are relative to the workflow's working directory, so that results/ and
.snakemake/ stay valid when the project moves. A rule's pattern is the same function
called with wildcard names, e.g. accuracy_result("{system}", "{manifest}", "{env}", "{device}").
Env-side: standard library only.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = "results"


def artifact(manifest: str, suffix: str) -> str:
    return f"{RESULTS}/models/{manifest}/model.{suffix}"


def flops(manifest: str) -> str:
    return f"{RESULTS}/models/{manifest}/flops.json"


def env_lock(env: str) -> str:
    return f"{RESULTS}/envs/{env}/lock.json"


def env_prefix(env: str) -> str:
    return f"{RESULTS}/envs/{env}/prefix"


def prefix_python(env: str) -> str:
    """The interpreter of a venv/conda prefix built by build_env, relative to the workdir."""
    return f"{env_prefix(env)}/bin/python"


def dataset_index(dataset: str) -> str:
    return f"{RESULTS}/datasets/{dataset}/index.json"


def dataset_dir(dataset: str) -> str:
    return str(Path(dataset_index(dataset)).parent)


def preprocess_dir(dataset: str) -> str:
    """A dataset's caches, one folder per geometric spec hash."""
    return f"{RESULTS}/preprocess/{dataset}"


def preprocessed(dataset: str, spec: str) -> str:
    """The uint8 cache of a dataset under one geometric spec hash (its index file)."""
    return f"{preprocess_dir(dataset)}/{spec}/cache.json"


def cache_chunks(cache: str) -> str:
    """The chunk folder beside a cache's index."""
    return str(Path(cache).with_name("chunks"))


def inference_dir(system: str, manifest: str, env: str, device: str) -> str:
    return f"{RESULTS}/inference/{system}/{manifest}/{env}/{device}"


def accuracy_result(system: str, manifest: str, env: str, device: str) -> str:
    return f"{inference_dir(system, manifest, env, device)}/accuracy.json"


def logits(system: str, manifest: str, env: str, device: str) -> str:
    return f"{inference_dir(system, manifest, env, device)}/logits.npy"


def topk(system: str, manifest: str, env: str, device: str) -> str:
    return f"{inference_dir(system, manifest, env, device)}/topk.npy"


def shard_result(system: str, manifest: str, env: str, device: str, shard) -> str:
    return f"{inference_dir(system, manifest, env, device)}/accuracy_shard{shard}.json"


def shard_logits(system: str, manifest: str, env: str, device: str, shard) -> str:
    return f"{inference_dir(system, manifest, env, device)}/logits_shard{shard}.npy"


def shard_topk(system: str, manifest: str, env: str, device: str, shard) -> str:
    return f"{inference_dir(system, manifest, env, device)}/topk_shard{shard}.npy"


def inference_log(system: str, manifest: str, env: str, device: str, name: str) -> str:
    """A log of one configuration's inference (name: accuracy, accuracy_shard<k>, ...)."""
    return log("inference", f"{system}/{manifest}/{env}/{device}/{name}")


def round_log(system: str, manifest: str, env: str, device: str, repeat) -> str:
    """The log of one configuration's process in a timing round."""
    return inference_log(system, manifest, env, device, f"round_r{repeat}")


def round_job_log(system: str, group: str, repeat) -> str:
    """The log of a comparison group's timing round job (each configuration's process has
    its own)."""
    return log("rounds", f"{system}/{group}/r{repeat}")


def accuracy_benchmark(system: str, manifest: str, env: str, device: str, shard=None) -> str:
    stem = f"{system}/{manifest}/{env}/{device}"
    return benchmark("accuracy", stem if shard is None else f"{stem}_shard{shard}")


def round_benchmark(system: str, group: str, repeat) -> str:
    return benchmark("rounds", f"{system}/{group}/r{repeat}")


def loadgen_dir(result: str, attempt: int = 0) -> str:
    """MLPerf LoadGen's logs of a timing point, beside its result: ``<point>_loadgen/``;
    those of a re-measurement (reproscope.runtime.latency) ``<point>_loadgen_attempt<k>/``."""
    return result.removesuffix(".json") + "_loadgen" + (f"_attempt{attempt}" if attempt else "")


def round_dir(system: str, group: str, repeat) -> str:
    """The results of one timing round of a comparison group on a system: the round job's
    only output, so that planning matches one folder per round, not every point of it."""
    return f"{RESULTS}/timing/{system}/{group}/r{repeat}"


def latency_result(
    system: str,
    manifest: str,
    env: str,
    device: str,
    scenario: str,
    batch_size,
    repeat,
    group: str,
) -> str:
    """A timing point's result, inside its group's round folder."""
    return (
        f"{round_dir(system, group, repeat)}/{manifest}/{env}/{device}/"
        f"{scenario}_bs{batch_size}_r{repeat}.json"
    )


def logits_of(accuracy_json: str | Path) -> Path:
    """The logits written beside an accuracy result."""
    return Path(accuracy_json).with_name("logits.npy")


def topk_of(accuracy_json: str | Path) -> Path:
    """The top-k indices written beside an accuracy result."""
    return Path(accuracy_json).with_name("topk.npy")


def base_result(variant_result: str | Path, variant: str, base: str) -> Path:
    """A variant's accuracy result -> its base manifest's result of the same system,
    environment and device."""
    parts = list(Path(variant_result).parts)
    parts[parts.index(variant)] = base
    return Path(*parts)


def manifest_stamp(manifest: str) -> str:
    """The manifest parts its inference jobs use (see jobs.manifest_parts)."""
    return f"{RESULTS}/jobs/manifests/{manifest}.json"


def settings_stamp(mode: str) -> str:
    """The study settings the jobs of one mode (accuracy, latency) use."""
    return f"{RESULTS}/jobs/settings/{mode}.json"


def parse_cache() -> str:
    """Manifests parsed and schema-checked while planning, by content."""
    return f"{RESULTS}/jobs/parsed"


def code_stamp(rule: str) -> str:
    """The sha256 of a rule's script or shell command."""
    return f"{RESULTS}/jobs/code/{rule}.json"


def limits_result(system: str, device: str) -> str:
    """A system and device's measured limits (compute, memory, interconnect), one JSON."""
    return f"{RESULTS}/limits/{system}/{device}.json"


def system_stamp(system: str) -> str:
    """A system's definition in the config (and its thread count), as its limits use it."""
    return f"{RESULTS}/jobs/systems/{system}.json"


def summary(name: str) -> str:
    return f"{RESULTS}/summary/{name}"


def plot(name: str) -> str:
    return f"{RESULTS}/plots/{name}"


def server_latency_plot() -> str:
    """Server latency against offered load, drawn from the Server points' search trials."""
    return plot("server_latency_vs_load.png")


def diagnosis_dir() -> str:
    """The greedy diagnosis's work: its candidates' caches and runs."""
    return f"{RESULTS}/diagnosis"


def log(step: str, stem: str | None = None) -> str:
    """A rule's log: logs/<step>.log for a rule of one job, else logs/<step>/<stem>.log."""
    return f"{RESULTS}/logs/{step}.log" if stem is None else f"{RESULTS}/logs/{step}/{stem}.log"


def benchmark(step: str, stem: str) -> str:
    return f"{RESULTS}/benchmarks/{step}/{stem}.tsv"
