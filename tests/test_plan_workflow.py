"""What rules/common.smk takes from reproscope.plan (the rules' inputs, params, jobs and
stamps), the results layout the rules write to and the one launcher, without Snakemake."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from reproscope.plan import jobs, stamps, summaries, targets
from reproscope.plan.inference import AccuracyJobs, inference_inputs, slurm_resource
from reproscope.plan.interpreters import HOST_PYTHON, Interpreters
from reproscope.plan.results import Results, beside
from reproscope.plan.rounds import Rounds
from reproscope.plan.study import load_study
from reproscope.report import provenance
from reproscope.runtime import launch, layout
from reproscope.runtime.jobs import InferenceJob, digest
from tests import tinystudy

WHERE = ("a", "tiny-onnx", "host", "cpu")


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tiny study on two systems (one with SLURM settings), with an ablation variant
    and a diagnosed manifest, loaded in its directory as the workflow does."""
    path = tinystudy.build(
        tmp_path, batch_sizes=(1, 4), scenarios=["FixedBatch", "SingleStream"], systems=["a", "b"]
    )
    config = yaml.safe_load(path.read_text())
    config["systems"] = {
        "a": {"devices": ["cpu"], "slurm_partition": "p1", "slurm_gres": "gpu:1"},
        "b": {"devices": ["cpu"], "threads": 3},
    }
    config["ablations"] = {
        "model": "tiny-onnx",
        "variants": {"color-bgr": {"overrides": {"inputs.color_order": "BGR"}}},
    }
    config["diagnose"] = ["tiny-pytorch"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return load_study(config, "config.yaml")


def test_the_results_layout_is_unchanged() -> None:
    """The paths the rules write: a change here moves existing results."""
    assert layout.log("aggregate") == "results/logs/aggregate.log"
    assert layout.log("fetch_model", "{manifest}.{suffix}") == (
        "results/logs/fetch_model/{manifest}.{suffix}.log"
    )
    assert layout.inference_log(*WHERE, "accuracy") == (
        "results/logs/inference/a/tiny-onnx/host/cpu/accuracy.log"
    )
    assert layout.round_log(*WHERE, 2) == "results/logs/inference/a/tiny-onnx/host/cpu/round_r2.log"
    assert layout.round_job_log("a", "{group}", "{repeat}") == (
        "results/logs/rounds/a/{group}/r{repeat}.log"
    )
    assert (
        layout.accuracy_benchmark(*WHERE) == "results/benchmarks/accuracy/a/tiny-onnx/host/cpu.tsv"
    )
    assert layout.accuracy_benchmark(*WHERE, 1) == (
        "results/benchmarks/accuracy/a/tiny-onnx/host/cpu_shard1.tsv"
    )
    assert layout.round_benchmark("a", "g", 0) == "results/benchmarks/rounds/a/g/r0.tsv"
    assert layout.round_dir("a", "g", 1) == "results/timing/a/g/r1"
    assert layout.latency_result(*WHERE, "Offline", 4, 1, "g") == (
        "results/timing/a/g/r1/tiny-onnx/host/cpu/Offline_bs4_r1.json"
    )
    assert layout.preprocessed("colours", "ab") == "results/preprocess/colours/ab/cache.json"
    assert layout.preprocess_dir("colours") == "results/preprocess/colours"
    assert layout.diagnosis_dir() == "results/diagnosis"
    assert layout.env_lock("host") == "results/envs/host/lock.json"


def test_the_shell_rules_run_the_launchers_command() -> None:
    """Byte for byte the command the rules always ran (its code stamp hashes the text)."""
    assert launch.shell(launch.INFER) == (
        'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.infer '
        "{params.job:q} > {log} 2>&1"
    )
    assert launch.shell(launch.ROUNDS, "{params.plan:q}") == (
        'PYTHONPATH="$REPROSCOPE_SRC" {params.python} -m reproscope.runtime.rounds '
        "{params.plan:q} > {log} 2>&1"
    )
    assert launch.command("py", launch.CONVERT, "{}") == [
        "py",
        "-m",
        "reproscope.runtime.convert.main",
        "{}",
    ]


def test_run_inference_passes_the_job_and_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job runs in the python the workflow names (the host's by a variable), with src on
    PYTHONPATH and everything it prints in the log."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$PYTHONPATH" "$@"\n[ "$3" != \'{"fail": true}\' ]\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("REPROSCOPE_TEST_PYTHON", str(fake))
    log_path = tmp_path / "job.log"
    with log_path.open("w") as log:
        proc = launch.run_inference('"$REPROSCOPE_TEST_PYTHON"', {"mode": "x"}, "SRC", log)
    assert proc.returncode == 0
    assert log_path.read_text() == 'SRC -m reproscope.runtime.infer {"mode": "x"}\n'
    with log_path.open("w") as log:
        assert launch.run_inference(str(fake), {"fail": True}, "SRC", log).returncode == 1
        with pytest.raises(subprocess.CalledProcessError):
            launch.run_inference(str(fake), {"fail": True}, "SRC", log, check=True)


def test_a_round_runs_each_configuration_through_the_launcher(tmp_path: Path) -> None:
    """Each configuration runs in its own python and log; a failed one is counted."""
    from reproscope.runtime.rounds import run_round

    fake = tmp_path / "python"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nprint(sys.argv[1:])\n"
        "sys.exit(json.loads(sys.argv[3])['n'])\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)

    configs = [
        {"name": f"c{n}", "python": str(fake), "job": {"n": n}, "log": str(tmp_path / f"{n}.log")}
        for n in range(2)
    ]
    assert run_round({"round": 1, "configs": configs}) == 1  # c1 failed
    assert (tmp_path / "0.log").read_text() == str(
        launch.command("", launch.INFER, '{"n": 0}')[1:]
    ) + "\n"


def test_stamps_are_written_only_when_they_change(study) -> None:
    path = "results/jobs/x.json"
    assert stamps.write_if_changed(path, {"b": 1, "a": [2]})
    assert not stamps.write_if_changed(path, {"a": [2], "b": 1})
    assert json.loads(Path(path).read_text()) == {"a": [2], "b": 1}
    assert stamps.code_stamp("plot", "text") == layout.code_stamp("plot")
    assert len(json.loads(Path(layout.code_stamp("plot")).read_text())["sha256"]) == 64
    stamps.write_job_stamps(study, ["tiny-onnx"])
    stamp = json.loads(Path(layout.manifest_stamp("tiny-onnx")).read_text())
    assert stamp == json.loads(json.dumps(jobs.manifest_parts(study, "tiny-onnx")))
    for mode in jobs.MODE_SETTINGS:
        assert Path(layout.settings_stamp(mode)).is_file()


def test_results_are_the_job_tables(study) -> None:
    results = Results(study)
    table = study.jobs
    latency_rows = table[table["mode"] == "latency"]
    assert len(results.latency) == len(latency_rows) and set(results.latency) <= set(results.jobs)
    assert layout.accuracy_result(*WHERE) in results.accuracy
    variant_rows = table[(table["mode"] == "accuracy") & (table["kind"] != "study")]
    assert len(results.variants) == len(variant_rows) > 0
    assert set(results.variants) <= set(results.jobs) - set(results.accuracy)
    # compare_variants reads the variants' bases only (another model's edit leaves it be)
    bases = {v["base"] for v in study.variants.values()}
    assert results.variant_bases == sorted(bases)
    assert (
        results.base_accuracy == [r for r in results.accuracy if results.jobs[r].manifest in bases]
        and results.base_accuracy
    )
    assert results.timed_systems == ["a", "b"]
    assert results.groups == {"a": ["tiny-colour"], "b": ["tiny-colour"]}
    assert results.round_dirs == sorted(
        layout.round_dir(s, "tiny-colour", int(r))
        for s in ("a", "b")
        for r in set(latency_rows["repeat"])
    )
    expected = provenance.expected_digests(study)
    assert results.digests(results.accuracy) == {r: expected[r] for r in results.accuracy}
    job = results.jobs[layout.accuracy_result(*WHERE)]
    assert {job.env_lock, job.artifact, job.inputs} <= set(results.dependencies(results.accuracy))
    assert beside(results.accuracy[:1], layout.topk_of) == [
        str(layout.topk_of(results.accuracy[0]))
    ]


def test_an_accuracy_job_is_the_table_job_or_its_shard(study) -> None:
    results = Results(study)
    wildcards = SimpleNamespace(system="a", manifest="tiny-onnx", env="host", device="cpu")
    output = [layout.accuracy_result(*WHERE)]
    whole = AccuracyJobs(study, results.jobs, 1).job_json(wildcards, output)
    assert whole == results.jobs[output[0]].to_json()
    sharded = AccuracyJobs(study, results.jobs, 2)
    shard_wildcards = SimpleNamespace(**vars(wildcards), shard="1")
    outputs = SimpleNamespace(
        result=layout.shard_result(*WHERE, 1),
        logits=layout.shard_logits(*WHERE, 1),
        topk=layout.shard_topk(*WHERE, 1),
    )
    job = InferenceJob.from_json(sharded.job_json(shard_wildcards, outputs))
    assert job.shard == [1, 2] and job.result_out == outputs.result
    assert sharded.shard_files(layout.shard_topk)(wildcards) == [
        layout.shard_topk(*WHERE, k) for k in range(2)
    ]


def test_inference_inputs_name_everything_a_job_reads(study) -> None:
    wildcards = SimpleNamespace(manifest="tiny-onnx", env="host")
    found = inference_inputs(study, "latency", "CODE")(wildcards)
    cache = jobs.preprocessed_of(study, "tiny-onnx")
    assert found == {
        "model": layout.artifact("tiny-onnx", "onnx"),
        "inputs": cache,
        "chunks": layout.cache_chunks(cache),
        "lock": layout.env_lock("host"),
        "manifest_stamp": layout.manifest_stamp("tiny-onnx"),
        "settings_stamp": layout.settings_stamp("latency"),
        "code": "CODE",
    }


def test_slurm_resources_come_from_the_jobs_system(study) -> None:
    assert slurm_resource(study.systems, "slurm_constraint") == ""
    partition = slurm_resource(study.systems, "slurm_partition")
    assert partition(SimpleNamespace(system="a", device="cpu")) == "p1"
    assert partition(SimpleNamespace(system="b", device="cpu")) == ""
    gres = slurm_resource(study.systems, "slurm_gres", cuda_only=True)
    assert gres(SimpleNamespace(system="a", device="cpu")) == ""
    assert gres(SimpleNamespace(system="a", device="cuda")) == "gpu:1"


def test_a_round_plans_every_configuration_of_its_group(study) -> None:
    results = Results(study)
    python = Interpreters({}, False).python
    # from the table's point jobs (as the workflow does), the same as built afresh
    rounds = Rounds(study, results.latency_rows, python, "CODE", results.jobs)
    built = Rounds(study, results.latency_rows, python, "CODE")
    wildcards = SimpleNamespace(group="tiny-colour", repeat="1")
    assert rounds.plan("a")(wildcards, None) == built.plan("a")(wildcards, None)
    group = "tiny-colour"  # both manifests' model: one comparison group
    assert rounds.configs("a", group) == [
        ("tiny-onnx", "host", "cpu"),
        ("tiny-pytorch", "host", "cpu"),
    ]
    assert rounds.configs("a", "another-model") == []
    assert rounds.runtime("a")(SimpleNamespace(group=group)) >= 10
    first = rounds.inputs("a")(SimpleNamespace(group=group, repeat="0"))
    assert "previous_round" not in first
    assert len(set(first.values())) == len(first)  # each file once
    assert first["lock_tiny-onnx_host"] == layout.env_lock("host")
    later = rounds.inputs("a")(SimpleNamespace(group=group, repeat="2"))
    assert later["previous_round"] == layout.round_dir("a", group, 1)
    plan = json.loads(rounds.plan("b")(SimpleNamespace(group=group, repeat="1"), None))
    assert plan["group"] == group
    assert plan["round"] == 1 and [c["name"] for c in plan["configs"]] == [
        "tiny-onnx/host/cpu",
        "tiny-pytorch/host/cpu",
    ]
    config = plan["configs"][0]
    assert config["python"] == HOST_PYTHON
    assert config["log"] == layout.round_log("b", "tiny-onnx", "host", "cpu", 1)
    assert config["job"] == jobs.round_job(study, "b", "tiny-onnx", "host", "cpu", 1).to_dict()
    assert config["job"]["threads"] == 3


def test_interpreters_follow_the_mechanism(tmp_path: Path) -> None:
    files = {"host": "envs/host.yaml", "torch": "envs/torch.yaml"}
    venv = Interpreters(files, use_conda=False)
    assert venv.python("host") == '"$REPROSCOPE_HOST_PYTHON"'
    assert venv.python("torch") == layout.prefix_python("torch")
    assert venv.conda_file("torch") is None
    conda = Interpreters(files, use_conda=True)
    assert conda.python("host") == "python"
    assert conda.conda_file("torch") == str(Path("envs/torch.yaml").resolve())
    assert os.path.isabs(conda.conda_file("host"))


def test_targets(study) -> None:
    assert targets.names_regex(["b.1", "a"]) == r"a|b\.1"
    assert targets.names_regex([]) == "(?!x)x"
    assert targets.sourced(study, "derived") == ["tiny-onnx"]
    assert targets.sourced(study, "random_init") == []
    assert targets.fetched(study) == ["tiny-pytorch"]
    assert targets.flops_files(study) == [layout.flops("tiny-onnx")]
    outputs = targets.all_outputs(study)
    assert layout.summary("diagnosis_greedy.csv") in outputs
    assert layout.plot("ablations.png") in outputs
    study.variants.clear()
    plain = targets.all_outputs(study)
    assert layout.summary("ablations.csv") not in plain and layout.summary("runs.csv") in plain


def test_summaries(study) -> None:
    assert list(summaries.canonical({"b": [{"d": 1, "c": 2}], "a": 1})) == ["a", "b"]
    assert list(summaries.canonical({"b": [{"d": 1, "c": 2}]})["b"][0]) == ["c", "d"]
    found = summaries.manifest_summaries(study, ["tiny-onnx"])
    assert found["tiny-onnx"]["label_offset"] == 0 and found["tiny-onnx"]["claims"]["top1"] == 100
    variants = summaries.variant_summaries(study)
    assert set(variants) == set(study.variants)
    ablation = next(v for v in variants.values() if v["kind"] == "ablation")
    assert ablation == {
        "base": "tiny-onnx",
        "kind": "ablation",
        "field": "inputs.color_order",
        "overrides": {"inputs.color_order": "BGR"},
    }
    diagnosed = summaries.diagnosis_jobs(study, lambda env: f"python-of-{env}")
    spec = diagnosed["tiny-pytorch"]
    assert spec["python"] == "python-of-host"
    assert spec["group"] == {"env": "host", "device": "cpu", "system": "a"}
    assert (
        spec["job"]
        == jobs.inference_job(study, "accuracy", "a", "tiny-pytorch", "host", "cpu").to_dict()
    )


def test_a_variant_accuracy_job_changes_only_what_the_variant_does(study) -> None:
    base = jobs.inference_job(study, "accuracy", "a", "tiny-pytorch", "host", "cpu")
    tensor = {**base.tensor, "color_order": "BGR"}
    variant = jobs.variant_accuracy_job(base, "v", "c/cache.json", tensor, 3, "work/v")
    changed = {k for k, v in variant.to_dict().items() if base.to_dict().get(k) != v}
    assert changed == {
        "manifest",
        "inputs",
        "tensor",
        "top_k",
        "logits_out",
        "topk_out",
        "result_out",
    }
    assert variant.result_out == "work/v/accuracy.json" and variant.shard is None
    assert digest(variant.to_dict()) != digest(base.to_dict())
