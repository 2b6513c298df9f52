"""CUDA jobs run in environments built for CUDA; a CUDA job that cannot use the GPU is an
`unavailable` row with its reason; a group's time budget records skipped batch sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from reproscope.errors import InputErrors
from reproscope.plan.study import load_study
from reproscope.runtime.integrity import record
from reproscope.runtime.tensorize import tensor_spec
from tests import tinystudy

ROOT = Path(__file__).resolve().parents[1]
torch = pytest.importorskip("torch")


def _config(monkeypatch: pytest.MonkeyPatch, **study: Any) -> dict[str, Any]:
    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "config/figure1.yaml").read_text())
    config["study"].update(study)
    return config


def test_cuda_jobs_without_gpu_never_use_a_cpu_only_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(monkeypatch, cuda_without_gpu=True)
    study = load_study(config, "config/figure1.yaml", gpu_present=False)
    cuda = study.jobs[study.jobs["device"] == "cuda"]
    assert len(cuda) and set(cuda["framework"]) == {"tensorflow", "pytorch", "onnxruntime"}
    for env in set(cuda["env"]):
        assert study.envs[env].cpu_only() is None, env
    assert set(cuda["env"]) == {"torch-2.13-cuda", "onnxruntime-gpu-1.30", "tensorflow-2.21-cuda"}
    cpu = study.jobs[study.jobs["device"] == "cpu"]
    assert set(cpu["env"]) == {"host"} and study.envs["host"].cpu_only()


def test_a_cuda_job_without_a_cuda_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(monkeypatch, cuda_without_gpu=True)
    del config["study"]["cuda_environments"]["onnxruntime-1.30"]
    with pytest.raises(InputErrors) as info:
        load_study(config, "config/figure1.yaml")
    fields = {e.field for e in info.value.errors}
    assert fields == {"study.cuda_environments.host"}
    assert "resnet50-v1-onnx" in str(info.value) and "Fix" in str(info.value)


def test_a_cpu_only_cuda_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch, cuda_without_gpu=True)
    config["study"]["cuda_environments"]["onnxruntime-1.30"] = "onnxruntime-1.30"
    with pytest.raises(InputErrors) as info:
        load_study(config, "config/figure1.yaml")
    (error,) = info.value.errors
    assert error.field == "study.cuda_environments.onnxruntime-1.30"
    assert "CPU-only" in error.problem and "onnxruntime-gpu" in error.problem


def test_no_gpu_no_cuda_jobs_and_no_cuda_environments_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(monkeypatch)
    del config["study"]["cuda_environments"]
    study = load_study(config, "config/figure1.yaml", gpu_present=False)
    assert set(study.jobs["device"]) == {"cpu"}


# ---- env-side: what the runners do on this machine


@pytest.fixture
def tiny_job(tmp_path: Path) -> dict[str, Any]:
    from reproscope.acquire.cache_writer import write_cache
    from reproscope.runtime.convert.torch_export import export_onnx
    from reproscope.runtime.tinynet import TinyColourNet

    model = TinyColourNet(4)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    export_onnx(model, tmp_path / "model.onnx", (1, 3, 8, 8))
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    write_cache(list(pixels), np.asarray, (8, 8, 3), tmp_path / "chunks", tmp_path / "cache.json")
    (tmp_path / "lock.json").write_text(json.dumps({"lock_sha256": "0" * 64}))
    for made in ("model.pt", "model.onnx", "lock.json"):  # digests jobs check them against
        record(tmp_path / made)
    return {
        "mode": "latency",
        "manifest": "tiny",
        "model": "tiny",
        "system": "local",
        "env": "host",
        "device": "cpu",
        "threads": 1,
        "inputs": str(tmp_path / "cache.json"),
        "tensor": tensor_spec(tinystudy.colour_inputs(8, "NCHW")),
        "env_lock": str(tmp_path / "lock.json"),
        "architecture": {
            "entry_point": "reproscope.runtime.tinynet:TinyColourNet",
            "args": [4],
            "kwargs": {},
            "packages": ["torch"],
        },
        "unsafe_pickle": False,
        "top_k": 1,
        "scenario": "FixedBatch",
        "repeat": 0,
        "batch_size": 2,
        "timing": {"warmup": 0, "min_duration_s": 0.0, "min_queries": 2, "max_duration_s": 5},
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the job would run")
@pytest.mark.parametrize(
    ("framework", "suffix", "reason"),
    [
        ("onnxruntime", "onnx", "CUDAExecutionProvider"),
        ("pytorch", "pt", "torch.cuda.is_available() is False"),
    ],
)
def test_a_cuda_job_on_this_machine_is_an_unavailable_row(
    tiny_job: dict[str, Any], tmp_path: Path, framework: str, suffix: str, reason: str
) -> None:
    pytest.importorskip("onnxruntime")
    from reproscope.report.aggregate import runs_table
    from reproscope.runtime.infer import run_job, write_record
    from reproscope.runtime.jobs import InferenceJob

    artifact = str(tmp_path / f"model.{suffix}")
    job = {**tiny_job, "framework": framework, "device": "cuda", "artifact": artifact}
    record, _ = run_job(InferenceJob.from_dict(job))
    write_record(record, tmp_path / "result.json")
    row = runs_table([str(tmp_path / "result.json")]).iloc[0]
    assert row["status"] == "unavailable" and row["device"] == "cuda"
    assert reason in row["reason"]


def test_the_group_budget_records_skipped_batch_sizes(
    tiny_job: dict[str, Any], tmp_path: Path
) -> None:
    outs = [str(tmp_path / f"Offline_bs{bs}.json") for bs in (1, 2, 4)]
    job = {**tiny_job, "framework": "pytorch", "artifact": str(tmp_path / "model.pt")}
    del job["batch_size"]
    # Each point times at least 0.6 s, so after the first less than 0.4 s of 1 s is left.
    job["timing"] = {**job["timing"], "min_duration_s": 0.6, "group_budget_s": 1.0}
    group = tmp_path / "group.json"
    points = [
        {"scenario": "FixedBatch", "batch_size": bs, "result_out": out}
        for bs, out in zip((1, 2, 4), outs, strict=True)
    ]
    group.write_text(json.dumps({**job, "points": points}))
    # A process of its own, as in the workflow (torch sets its thread pools once).
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(
        [sys.executable, "-m", "reproscope.runtime.infer", str(group)], check=True, env=env
    )
    records = [json.loads(Path(out).read_text()) for out in outs]
    assert [r["status"] for r in records] == ["ok", "skipped", "skipped"]
    assert all("time budget: estimated" in r["reason"] for r in records[1:])
    assert records[1]["job"]["batch_size"] == 2 and "fingerprint" in records[1]


def test_the_workflow_refuses_cuda_jobs_in_the_host_environment(tmp_path: Path) -> None:
    from tests import tinystudy
    from tests.test_workflow import snakemake

    tinystudy.build(tmp_path, devices=["cpu", "cuda"], cuda_without_gpu=True)
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "study.cuda_environments" in message and "has no CUDA environment" in message
    assert not (tmp_path / "results" / "inference").exists()
