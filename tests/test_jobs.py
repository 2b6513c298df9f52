"""The job contract, the results layout and the provenance check, without Snakemake."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from reproscope.acquire.cache_writer import write_cache
from reproscope.errors import InputErrors
from reproscope.plan import jobs
from reproscope.plan.study import load_study
from reproscope.report import provenance
from reproscope.runtime import layout
from reproscope.runtime.cache import Cache
from reproscope.runtime.digests import sha256_file
from reproscope.runtime.jobs import digest
from tests import tinystudy


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tiny study's config loaded in its directory, as the workflow does."""
    config_path = tinystudy.build(
        tmp_path, batch_sizes=(1, 4), scenarios=["FixedBatch", "SingleStream"]
    )
    monkeypatch.chdir(tmp_path)
    return load_study(yaml.safe_load(config_path.read_text()), "config.yaml")


def test_every_job_path_is_relative_and_in_the_layout(study) -> None:
    table = jobs.table_jobs(study)
    assert len(table) == len(study.jobs)  # a round's points count one by one
    for job in table:
        data = job.to_dict()
        for key in ("artifact", "inputs", "env_lock", "result_out", "logits_out", "topk_out"):
            if key in data:
                assert not Path(data[key]).is_absolute(), (key, data[key])
                assert data[key].startswith(layout.RESULTS + "/"), (key, data[key])
        where = (job.system, job.manifest, job.env, job.device)
        if job.mode == "accuracy":
            assert job.result_out == layout.accuracy_result(*where)
            assert Path(job.topk_out) == layout.topk_of(job.result_out)
            assert Path(job.logits_out) == layout.logits_of(job.result_out)
        else:
            assert job.result_out == layout.latency_result(
                *where, job.scenario, job.batch_size, job.repeat, job.model
            )
            assert job.group == job.model  # its comparison group
    conversion = jobs.conversion_job(study, "tiny-onnx")
    assert conversion.source == layout.artifact("tiny-pytorch", "pt")
    assert conversion.output == layout.artifact("tiny-onnx", "onnx")


def test_jobs_round_trip_through_json(study) -> None:
    group = jobs.round_job(study, "local", "tiny-onnx", "host", "cpu", 0)
    assert [p["batch_size"] for p in group.points] == [1, 4, 1] and group.batch_size is None
    for job in [*jobs.table_jobs(study), group, *group.point_jobs()]:
        assert jobs.InferenceJob.from_json(job.to_json()) == job
    conversion = jobs.conversion_job(study, "tiny-onnx")
    assert jobs.ConversionJob.from_json(conversion.to_json()) == conversion
    accuracy = json.loads(
        jobs.inference_job(study, "accuracy", "local", "tiny-onnx", "host", "cpu").to_json()
    )
    assert accuracy["architecture"] is None and "scenario" not in accuracy
    assert "huge_pages" not in accuracy  # the memory policy is a timing setting
    assert group.huge_pages is True  # study.huge_pages defaults to true


def test_unknown_job_field_is_refused() -> None:
    with pytest.raises(ValueError, match="surprise"):
        jobs.InferenceJob.from_dict({"mode": "accuracy", "surprise": 1})


def test_point_of_a_round_is_the_job_its_result_records(study) -> None:
    """reproscope.runtime.infer.run_group writes each point of a round as point_jobs() gives it;
    the expected digests must match exactly that."""
    group = jobs.round_job(study, "local", "tiny-onnx", "host", "cpu", 0)
    expected = provenance.expected_digests(study)
    points = group.point_jobs()
    assert [p.scenario for p in points] == ["FixedBatch", "FixedBatch", "SingleStream"]
    assert points[2].loadgen_dir == points[2].result_out.removesuffix(".json") + "_loadgen"
    for point in points:
        assert point.repeat == 0 and point.grouped
        assert expected[point.result_out] == digest(point.to_dict())


def test_base_result_swaps_the_manifest() -> None:
    variant = layout.accuracy_result("local", "m~crop", "host", "cpu")
    assert layout.base_result(variant, "m~crop", "m") == Path(
        layout.accuracy_result("local", "m", "host", "cpu")
    )


def _fake_result(job: jobs.InferenceJob) -> Path:
    """A result as reproscope.runtime.infer writes it, over files made here."""
    lock_record = json.dumps({"lock_sha256": "a" * 64}).encode()
    for path, content in ((job.artifact, b"weights"), (job.env_lock, lock_record)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(content)
    cache = Path(job.inputs)
    cache.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((2, 4, 4, 3), np.uint8)
    write_cache(range(2), pixels.__getitem__, (4, 4, 3), cache.with_name("chunks"), cache)
    out = Path(job.result_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "job": job.to_dict(),
                "artifact_sha256": sha256_file(job.artifact),
                "inputs_sha256": Cache(job.inputs).content_sha256(),
                "env_lock_sha256": "a" * 64,
            }
        )
    )
    return out


def test_current_results_pass_and_stale_ones_are_named(study) -> None:
    job = jobs.inference_job(study, "accuracy", "local", "tiny-pytorch", "host", "cpu")
    out = _fake_result(job)
    expected = provenance.expected_digests(study)
    provenance.check_results([str(out)], expected)

    Path(job.env_lock).write_text(json.dumps({"lock_sha256": "b" * 64}))
    with pytest.raises(InputErrors) as caught:
        provenance.check_results([str(out)], expected)
    message = str(caught.value)
    assert str(out) in message and "env_lock_sha256" in message and "Fix:" in message

    _fake_result(job)
    manifest = Path("manifests/tiny-pytorch.yaml")
    data = yaml.safe_load(manifest.read_text())
    data["outputs"]["top_k"] = 3
    manifest.write_text(yaml.safe_dump(data))
    edited = load_study(yaml.safe_load(Path("config.yaml").read_text()), "config.yaml")
    with pytest.raises(InputErrors) as caught:
        provenance.check_results([str(out)], provenance.expected_digests(edited))
    assert str(out) in str(caught.value) and "field 'job'" in str(caught.value)


def test_a_round_time_limit_covers_every_point_at_its_cap() -> None:
    from reproscope.plan.study import round_runtime_minutes
    from reproscope.runtime.latency import REMEASURE_BUDGET_S

    settings = {
        "batch_sizes": [1, 2],
        "scenarios": ["FixedBatch", "SingleStream", "Server"],
        "timing": {"max_duration_s": 30.0},
    }
    # 2 configs x (60 s start + 2 x 30 s x (2 FixedBatch + 1 SingleStream) + 2 x Server:
    # its 60 s search budget and 4 x 3 confirmation runs of at most 5 s, + re-measurement)
    per_config = 60 + 2 * 30 * 3 + 2 * (60 + 60) + REMEASURE_BUDGET_S
    assert round_runtime_minutes(settings, 2) == math.ceil(2 * per_config / 60)
    assert round_runtime_minutes({**settings, "scenarios": ["FixedBatch"]}, 1) == 10  # floor
    # a larger search budget is a longer Server point, whatever its latency bound
    slow = {**settings, "timing": {"max_duration_s": 30.0, "server_search_budget_s": 600.0}}
    assert round_runtime_minutes(slow, 2) == math.ceil(2 * (per_config + 2 * 540) / 60)
