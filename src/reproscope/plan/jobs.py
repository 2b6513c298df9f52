"""Jobs built from the study: one row of its job table becomes a typed job
(reproscope.runtime.jobs) that travels to the environment as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from reproscope.plan.study import Study
from reproscope.runtime import layout
from reproscope.runtime.jobs import ConversionJob, InferenceJob, RandomInitJob


def artifact_of(study: Study, name: str) -> str:
    """The artifact a manifest runs: variants share their base's."""
    base = study.artifact_name(name)
    return layout.artifact(base, study.manifest(base).artifact_suffix)


def timing_group(study: Study, name: str) -> str:
    """The comparison group of a manifest's timing configurations: its model. Every pair
    comparisons.csv measures in paired rounds (environments of one manifest, frameworks and
    devices of one model) lies inside one group on one system; a group's configurations
    share round jobs, and an edit outside the group leaves them untouched."""
    return study.manifest(name).model


def preprocessed_of(study: Study, name: str) -> str:
    return layout.preprocessed(study.dataset, study.preprocess_hash(name))


def tensor_of(study: Study, name: str) -> dict[str, Any]:
    """The per-pixel stages (colour order, normalisation, dtype, layout) of a manifest."""
    from reproscope.acquire.preprocess import spec_of
    from reproscope.runtime.tensorize import tensor_spec

    return tensor_spec(spec_of(study.manifest(name).inputs))


def standalone_accuracy_job(
    manifest: dict[str, Any],
    artifact: str,
    inputs: str,
    out_dir: str,
    env_lock: str,
    threads: int,
    batch_size: int,
    env: str = "current",
) -> InferenceJob:
    """The accuracy pass of a manifest (its data) outside a study, as benchmarks and tests
    run it: on a given geometric cache, on the CPU, with its outputs under out_dir."""
    from reproscope.runtime.tensorize import tensor_spec

    return InferenceJob(
        mode="accuracy",
        framework=manifest["framework"]["name"],
        manifest=manifest["name"],
        model=manifest["model"],
        system="local",
        env=env,
        device="cpu",
        threads=threads,
        artifact=artifact,
        inputs=inputs,
        tensor=tensor_spec(manifest["inputs"]),
        env_lock=env_lock,
        architecture=None,
        unsafe_pickle=False,
        top_k=manifest["outputs"]["top_k"],
        batch_size=batch_size,
        logits_out=f"{out_dir}/logits.npy",
        topk_out=f"{out_dir}/topk.npy",
        result_out=f"{out_dir}/accuracy.json",
    )


def variant_accuracy_job(
    base: InferenceJob, name: str, inputs: str, tensor: dict[str, Any], top_k: int, out_dir: str
) -> InferenceJob:
    """The accuracy pass of a variant of base's manifest (diagnosis candidates never change
    the architecture, so base's stands) on the cache inputs, with its outputs under
    out_dir, unsharded."""
    return dataclasses.replace(
        base,
        manifest=name,
        inputs=inputs,
        tensor=tensor,
        top_k=top_k,
        logits_out=f"{out_dir}/logits.npy",
        topk_out=f"{out_dir}/topk.npy",
        result_out=f"{out_dir}/accuracy.json",
        shard=None,
    )


def inference_job(
    study: Study,
    mode: str,
    system: str,
    manifest: str,
    env: str,
    device: str,
    scenario: str = "",
    batch_size: int = 0,
    repeat: int = 0,
) -> InferenceJob:
    where = (system, manifest, env, device)
    if mode == "accuracy":
        settings = study.settings
        return InferenceJob(
            **_config_fields(study, mode, *where),
            batch_size=settings["accuracy_batch_size"],
            result_out=layout.accuracy_result(*where),
            logits_out=layout.logits(*where),
            topk_out=layout.topk(*where),
        )
    (job,) = config_points(study, *where, [(scenario, batch_size, repeat)])
    return job


def _config_fields(
    study: Study, mode: str, system: str, manifest: str, env: str, device: str
) -> dict[str, Any]:
    """The fields every job of one configuration shares."""
    m = study.manifest(manifest)
    return dict(
        mode=mode,
        framework=m.framework,
        manifest=m.name,
        model=m.model,
        system=system,
        env=env,
        device=device,
        threads=study.threads_of(system),
        artifact=artifact_of(study, m.name),
        inputs=preprocessed_of(study, m.name),
        tensor=tensor_of(study, m.name),
        env_lock=layout.env_lock(env),
        architecture=study.architecture_job(m.name, env),
        unsafe_pickle=study.unsafe_pickle(m.name),
        top_k=m.outputs["top_k"],
        mlperf_benchmark=m.data.get("mlperf_benchmark"),
    )


def config_points(
    study: Study,
    system: str,
    manifest: str,
    env: str,
    device: str,
    points: list[tuple[str, int, int]],
    grouped: bool | None = None,
) -> list[InferenceJob]:
    """The timing jobs of one configuration at (scenario, batch size, repeat) points; what
    they share is built once (planning a study builds tens of thousands of points).
    grouped: True for points as measured inside a round's process."""
    from reproscope.runtime.noise import NOISE_THRESHOLD  # workflow side: numpy is there

    where = (system, manifest, env, device)
    settings = study.settings
    common = _config_fields(study, "latency", *where)
    noise_threshold = settings.get("noise_threshold", NOISE_THRESHOLD)
    group = timing_group(study, manifest)
    found = []
    for scenario, batch_size, repeat in points:
        result = layout.latency_result(*where, scenario, int(batch_size), int(repeat), group)
        found.append(
            InferenceJob(
                **common,
                batch_size=int(batch_size),
                result_out=result,
                timing=settings["timing"],
                scenario=scenario,
                repeat=int(repeat),
                group=group,
                server=settings["server"] if scenario == "Server" else None,
                noise_threshold=noise_threshold,
                huge_pages=settings.get("huge_pages", True),
                loadgen_dir=None if scenario == "FixedBatch" else layout.loadgen_dir(result),
                grouped=grouped,
            )
        )
    return found


#: The fields in which the points of a round differ.
POINT_FIELDS = ("scenario", "batch_size", "result_out", "server", "loadgen_dir")


def round_job(
    study: Study, system: str, manifest: str, env: str, device: str, repeat: int
) -> InferenceJob:
    """Every timing point of one (system, manifest, env, device) in round ``repeat``."""
    from reproscope.plan.study import timing_points

    where = (system, manifest, env, device)
    points = config_points(
        study, *where, [(scenario, bs, repeat) for scenario, bs in timing_points(study.settings)]
    )
    return round_of(points)


def round_of(points: list[InferenceJob]) -> InferenceJob:
    """The round job of one configuration from the jobs of its points in that round (as
    config_points or the job table built them)."""
    return dataclasses.replace(
        points[0],
        **dict.fromkeys(POINT_FIELDS),
        grouped=None,
        points=[{k: getattr(p, k) for k in POINT_FIELDS} for p in points],
    )


def conversion_job(study: Study, name: str) -> ConversionJob:
    m = study.manifest(name)
    derived = m.source["derived"]
    source = study.manifest(derived["from"])
    return ConversionJob(
        converter=derived["converter"],
        opset=derived.get("opset", 18),
        source=artifact_of(study, source.name),
        output=artifact_of(study, name),
        architecture=study.architecture_job(source.name, study.converter_env_of(name)),
        unsafe_pickle=bool(source.source.get("unsafe_pickle", False)),
        input_size=m.inputs["size"],
    )


def random_init_job(study: Study, name: str) -> RandomInitJob:
    m = study.manifest(name)
    return RandomInitJob(
        format=m.source["format"],
        random_init=m.source["random_init"],
        architecture=study.architecture_job(name, study.env_of(name)),
        output=artifact_of(study, name),
    )


MODE_SETTINGS = {
    "accuracy": ("threads", "accuracy_batch_size"),
    "latency": (
        "threads",
        "timing",
        "server",
        "noise_threshold",
        "huge_pages",
        "scenarios",
        "batch_sizes",
    ),
}


def manifest_parts(study: Study, name: str) -> dict[str, Any]:
    """What a manifest gives its inference jobs: a job's fields less those of the job
    table's row (system, env, device, scenario, batch size, repeat), of the environment
    and of the study settings."""
    m = study.manifest(name)
    return {
        "framework": m.framework,
        "manifest": m.name,
        "model": m.model,
        "artifact": artifact_of(study, name),
        "inputs": preprocessed_of(study, name),
        "tensor": tensor_of(study, name),
        # The environment's part of a job's architecture (its packages) follows its lock.
        "architecture": m.data.get("architecture"),
        "unsafe_pickle": study.unsafe_pickle(name),
        "top_k": m.outputs["top_k"],
    }


def mode_settings(study: Study, mode: str) -> dict[str, Any]:
    settings = {key: study.settings.get(key) for key in MODE_SETTINGS[mode]}
    # A system's own thread count overrides study.threads in its jobs.
    settings["system_threads"] = {s: study.threads_of(s) for s in sorted(study.systems)}
    return settings


def table_jobs(study: Study) -> list[InferenceJob]:
    """Every result-writing job of the study's job table; timing points as measured in
    their round's process."""
    found: list[InferenceJob] = []
    table = study.jobs
    if not len(table):
        return found
    columns = ("mode", "system", "manifest", "env", "device", "scenario", "batch_size", "repeat")
    # Each configuration's timing points are consecutive rows: built together.
    pending: list[tuple[str, int, int]] = []
    pending_where: tuple[str, ...] | None = None

    def flush() -> None:
        if pending:
            found.extend(config_points(study, *pending_where, pending, grouped=True))
            pending.clear()

    for mode, *where, scenario, batch_size, repeat in zip(
        *(table[c].tolist() for c in columns), strict=True
    ):
        where = tuple(where)
        if mode == "accuracy":
            flush()
            found.append(inference_job(study, "accuracy", *where))
            continue
        if where != pending_where:
            flush()
            pending_where = where
        pending.append((scenario, int(batch_size), int(repeat)))
    flush()
    return found
