"""A disturbance detected by what it is, and re-measured: real ONNX Runtime points under
reproscope.runtime.latency, beside a real CPU burner (a subprocess spinning on the point's
CPU), and runs.csv's columns for them.

The point and the burner are pinned to the same CPU, so the burner takes about half of it
whatever else the machine runs. The quiet case cannot assume a quiet machine (CI shares 2
cores): it checks the detector against what the point itself lost, its own CPU time against
its wall time, which /proc/stat does not enter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reproscope.report.aggregate import runs_table
from reproscope.runtime import latency, layout
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.latency import latency_run
from reproscope.runtime.runners.onnxruntime.runner import OnnxRunner

FEATURES = 256
CPU = sorted(os.sched_getaffinity(0))[0]
#: The burner on the point's one CPU takes about half of it.
BURNER_SHARE = 0.25
THRESHOLD = 0.10


def write_model(path: Path) -> None:
    """A real ONNX model: two dense layers, a few hundred microseconds a batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((FEATURES, FEATURES), np.float32), f"w{i}")
        for i in range(2)
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "w0"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["relu"]),
        helper.make_node("MatMul", ["relu", "w1"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", FEATURES])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every ONNX Runtime release reads
    onnx.save(model, path)


def point_job(
    root: Path, repeat: int = 1, threshold: float = THRESHOLD, **timing: Any
) -> InferenceJob:
    """A FixedBatch point of round ``repeat`` (past round 0: no breakdown) on one thread."""
    result = layout.latency_result("local", "dense", "host", "cpu", "FixedBatch", 8, repeat, "g")
    return InferenceJob(
        mode="latency",
        framework="onnxruntime",
        manifest="dense",
        model="dense",
        system="local",
        env="host",
        device="cpu",
        threads=1,
        artifact=str(root / "dense.onnx"),
        inputs="unused",
        env_lock="unused",
        architecture=None,
        unsafe_pickle=False,
        top_k=1,
        batch_size=8,
        result_out=result,
        timing={
            "warmup": 2,
            "min_duration_s": 1.0,
            "min_queries": 5,
            "max_duration_s": 1.0,
            "remeasure": 0,
            **timing,
        },
        scenario="FixedBatch",
        repeat=repeat,
        group="g",
        noise_threshold=threshold,
    )


@pytest.fixture
def point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Runs a point in tmp_path, this process pinned to CPU (restored after); returns
    (job, record) for each call."""
    write_model(tmp_path / "dense.onnx")
    monkeypatch.chdir(tmp_path)  # the job's result paths are relative, as in a study
    monkeypatch.setattr(latency, "_remeasured_s", [0.0])  # a fresh process's budget
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPU})
    runner = OnnxRunner()
    inputs = np.random.default_rng(1).standard_normal((8, FEATURES), np.float32)

    def run(
        repeat: int = 1, threshold: float = THRESHOLD, **timing: Any
    ) -> tuple[InferenceJob, dict[str, Any]]:
        job = point_job(tmp_path, repeat, threshold, **timing)
        if runner.session is None:
            runner.load(Path(job.artifact), job)
        return job, latency_run(runner, inputs, job)

    try:
        yield run
    finally:
        os.sched_setaffinity(0, allowed)


@contextmanager
def burner(cpu: int, seconds: float = 600.0) -> Iterator[subprocess.Popen]:
    """A process spinning on ``cpu`` for ``seconds`` (or until the block ends), started
    before the block runs."""
    code = (
        "import os, sys, time\n"
        f"os.sched_setaffinity(0, {{{cpu}}})\n"
        "print('spinning', flush=True)\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "spinning\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def lost_share(noise: dict[str, Any]) -> float:
    """What the point lost to others, from its own CPU time and wall clock alone: a closed
    loop on one thread keeps its CPU busy, so what it did not run, someone else did (or the
    hypervisor took)."""
    usage = noise["own_cpu_share"] * noise["window_s"]  # own CPU seconds of the window
    total = noise["window_s"] * len(noise["cpus"])
    return 1.0 - usage / total - (noise["steal_share"] or 0.0)


def test_the_detector_flags_a_point_the_burner_overlapped(point: Any) -> None:
    with burner(CPU):
        _, metrics = point()
    noise = metrics["noise"]
    assert noise["cpus"] == [CPU]
    assert noise["other_cpu_share"] >= BURNER_SHARE, noise
    assert noise["noisy"] and "other processes used" in noise["noise_reason"]
    assert metrics["disturbed_reasons"] == noise["reasons"]
    assert abs(noise["other_cpu_share"] - lost_share(noise)) < 0.1, noise
    assert len(metrics["attempts"]) == 1 and metrics["counted_attempt"] == 0  # remeasure: 0


def test_the_detector_passes_a_quiet_point(point: Any) -> None:
    """No burner. The detector must say what the point lost, within 0.1; and, at a
    threshold of 0.25 with that margin round it, pass the point when it lost little and flag
    it when other work of a shared machine took much of its CPU."""
    threshold, margin = 0.25, 0.1
    _, metrics = point(threshold=threshold)
    noise = metrics["noise"]
    lost = lost_share(noise)
    assert abs(noise["other_cpu_share"] - lost) < margin, noise
    flagged = any("other processes used" in reason for reason in noise["reasons"])
    if lost < threshold - margin:
        assert not flagged, noise
    if lost > threshold + margin:
        assert flagged, noise


def test_a_disturbed_point_is_measured_again_once_the_burner_left(point: Any) -> None:
    with burner(CPU, seconds=1.5):
        _, metrics = point(remeasure=2, remeasure_wait_s=3)
    attempts = metrics["attempts"]
    first = attempts[0]
    assert any("other processes used" in r for r in first["disturbed_reasons"]), first
    assert len(attempts) >= 2
    assert attempts[1]["waited_s"] > 0  # it waited for the burner to leave
    counted = metrics["counted_attempt"]
    assert counted >= 1  # the burner's attempt had the burner and whatever else ran
    assert attempts[counted]["severity"] < first["severity"]
    assert metrics["p50_ms"] == attempts[counted]["value"]
    assert metrics["noise"] == attempts[counted]["noise"]
    assert metrics["disturbed_reasons"] == attempts[counted]["disturbed_reasons"]
    for i, attempt in enumerate(attempts):  # every attempt kept; the counted one is the point's
        assert ("metrics" in attempt) == (i != counted)
        assert attempt["severity"] >= attempts[counted]["severity"]


def write_earlier(job: InferenceJob, repeat: int, p50_ms: float) -> None:
    path = Path(
        layout.latency_result(
            job.system, job.manifest, job.env, job.device, "FixedBatch", 8, repeat, "g"
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": "ok", "metrics": {"p50_ms": p50_ms}}))


def test_a_figure_far_from_the_earlier_rounds_is_measured_again(point: Any) -> None:
    job, metrics = point(repeat=2, min_duration_s=0.1, max_duration_s=0.1)
    p50 = metrics["p50_ms"]
    # One earlier round is not enough to call a figure an outlier.
    write_earlier(job, 0, p50 / 4)
    _, metrics = point(repeat=1, min_duration_s=0.1, max_duration_s=0.1)
    assert not any("earlier rounds" in r for r in metrics["attempts"][0]["disturbed_reasons"])
    # Two earlier rounds 4x faster than anything this point can do: every attempt is far.
    write_earlier(job, 1, p50 / 4)
    _, metrics = point(
        repeat=2, min_duration_s=0.1, max_duration_s=0.1, remeasure=2, remeasure_wait_s=0
    )
    attempts = metrics["attempts"]
    assert len(attempts) == 3
    assert all("the median of 2 earlier rounds" in a["disturbed_reasons"][-1] for a in attempts)
    assert metrics["earlier_rounds"]["values"] == [p50 / 4, p50 / 4]
    counted = metrics["counted_attempt"]
    assert attempts[counted]["severity"] == min(a["severity"] for a in attempts)
    assert metrics["disturbed_reasons"]  # the counted one is still disturbed, and says so
    assert metrics["remeasure_stopped"] is None


def test_re_measurement_stops_when_its_budget_is_spent(point: Any) -> None:
    """Every attempt an outlier: re-measurements go on while another as long as the first
    fits in what is left of the budget (three times a first attempt, so 10 do not fit),
    then stop and say so."""
    job, metrics = point(repeat=2, min_duration_s=0.1, max_duration_s=0.1)
    for earlier in (0, 1):
        write_earlier(job, earlier, metrics["p50_ms"] / 4)
    budget = round(3 * metrics["attempts"][0]["wall_s"], 3)
    _, metrics = point(
        repeat=2,
        min_duration_s=0.1,
        max_duration_s=0.1,
        remeasure=10,
        remeasure_wait_s=0,
        remeasure_budget_s=budget,
    )
    attempts = metrics["attempts"]
    assert len(attempts) < 11
    assert metrics["remeasure_stopped"] == (
        f"timing.remeasure_budget_s={budget:g} spent by this process"
    )
    walls = [a["wall_s"] for a in attempts]
    slack = 0.05  # bookkeeping outside an attempt's wall_s
    # each re-measurement started with room left for one as long as the first ...
    assert sum(walls[1:-1]) + walls[0] <= budget + slack
    # ... and the one after the last would not have fitted
    assert sum(walls[1:]) + walls[0] > budget - slack


def test_runs_csv_says_which_attempt_counts_and_why(point: Any, tmp_path: Path) -> None:
    files = []
    for name, disturb in (("quiet", False), ("burnt", True)):
        if disturb:
            with burner(CPU, seconds=1.5):
                job, metrics = point(remeasure=1, remeasure_wait_s=3)
        else:
            job, metrics = point()
        path = tmp_path / f"{name}.json"
        path.write_text(
            json.dumps({"job": job.to_dict(), "status": "ok", "reason": None, "metrics": metrics})
        )
        files.append(str(path))
    runs = runs_table(files)
    columns = ["attempts", "counted_attempt", "other_cpu_share", "remeasured_because"]
    assert set(columns) <= set(runs.columns)
    remeasured = runs[runs["attempts"] == 2]
    assert len(remeasured) == 1, runs[columns]
    row = remeasured.iloc[0]
    assert "other processes used" in row["remeasured_because"]
    assert row["counted_attempt"] == 1
