"""Run faults: a killed job, failing and unavailable jobs, and determinism across runs."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import tinystudy
from tests.test_workflow import snakemake, snakemake_command

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def digests(root: Path) -> dict[str, str]:
    """sha256 of every finished per-job result file."""
    found = {}
    for path in sorted((root / "results" / "inference").rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def infer_pids(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "reproscope.runtime.infer" not in cmdline or "FixedBatch_bs4" not in cmdline:
            continue
        try:
            if os.readlink(proc / "cwd") == marker:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_killed_job_then_rerun_keeps_finished_results(tmp_path: Path) -> None:
    timing = {"warmup": 1, "min_duration_s": 20.0, "min_queries": 3, "max_duration_s": 60}
    tinystudy.build(tmp_path, timing=timing, models=["tiny-pytorch"], batch_sizes=[4])
    # Run the accuracy job first, so a finished result exists before the kill.
    first = snakemake(tmp_path, "--until", "accuracy")
    assert first.returncode == 0, first.stderr[-3000:]
    finished = digests(tmp_path)
    assert finished
    cmd = snakemake_command(tmp_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    pids: list[int] = []
    while not pids and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        pids = infer_pids(str(tmp_path))
    assert pids, "the latency job never started"
    time.sleep(2)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output[-2000:]
    assert not list((tmp_path / "results" / "timing").rglob("FixedBatch_bs4_r0.json"))
    assert digests(tmp_path) == finished  # the killed job left nothing behind

    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["study"]["timing"]["min_duration_s"] = 0.05
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rerun = snakemake(tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = digests(tmp_path)
    assert {k: after[k] for k in finished} == finished  # same bytes
    runs = pd.read_csv(tmp_path / "results" / "summary" / "runs.csv")
    assert list(runs["status"]) == ["ok"] and runs["n_iterations"].iloc[0] >= 3


def test_failing_and_unavailable_jobs_become_rows(tmp_path: Path) -> None:
    # CUDA jobs need a CUDA environment, never the host's: see tests/test_cuda_envs.py.
    tinystudy.build(tmp_path, devices=["cpu"])
    broken = tinystudy.add_broken_manifest(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["study"]["models"].append(broken)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "summary" / "runs.csv")
    accuracy = pd.read_csv(tmp_path / "results" / "summary" / "accuracy.csv")
    failed = runs[runs["model"] == "tiny-colour"].query("framework == 'onnxruntime'")
    assert not failed.empty
    broken_rows = pd.concat([runs, accuracy]).query("manifest == @broken and device == 'cpu'")
    assert (broken_rows["status"] == "failed").all()
    assert broken_rows["reason"].str.contains("ONNXRuntimeError").all()  # the runtime's reason
    ok = pd.concat([runs, accuracy]).query("device == 'cpu' and manifest != @broken")
    assert ok["status"].eq("ok").all()
    assert (tmp_path / "results" / "plots" / "latency_throughput.png").exists()


def test_two_runs_are_byte_identical(tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        tinystudy.build(root, batch_sizes=(1,))
        result = snakemake(root, "--until", "aggregate")
        assert result.returncode == 0, result.stderr[-3000:]
    predictions = [{k: v for k, v in digests(r).items() if k.endswith(".npy")} for r in roots]
    assert predictions[0] and predictions[0] == predictions[1]
    tables = [pd.read_csv(r / "results" / "summary" / "accuracy.csv") for r in roots]
    pd.testing.assert_frame_equal(tables[0], tables[1])


CLAIM = "import sys, time; from reproscope.plan.runlock import claim_run; claim_run(sys.argv[1]); "


def test_a_killed_runs_locks_are_removed_and_a_live_runs_kept(tmp_path: Path) -> None:
    """Snakemake's lock files name no process: the run lock (a flock each main process holds
    for its life) tells a dead run's locks, removed with one line, from a live run's."""
    locks = tmp_path / ".snakemake" / "locks"

    def claim() -> str:
        done = subprocess.run(
            [sys.executable, "-c", CLAIM, str(tmp_path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    live = subprocess.Popen(
        [sys.executable, "-c", CLAIM + "print(flush=True); time.sleep(600)", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None and live.stdout.readline() == "\n"  # it holds the lock
        locks.mkdir(parents=True)
        for name in ("0.input.lock", "0.output.lock"):
            (locks / name).write_text("results/summary/runs.csv\n")
        assert claim() == ""  # a run is alive here: its locks stand
        assert len(list(locks.iterdir())) == 2
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    said = claim()  # the run that made them is dead
    assert not list(locks.iterdir())
    assert said.count("\n") == 1 and "removed 2 stale Snakemake lock file(s)" in said
    assert claim() == ""  # nothing left to remove, nothing said
