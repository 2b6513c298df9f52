"""A configuration compared with itself: the same environment file under two environment
names, one manifest, measured in interleaved rounds, never reads as a difference beyond the
margin at any scenario and batch size, in each of several runs.

The margin is the study's statement of the machine's run-to-run noise (config/config.yaml), and
the tiny model's points last microseconds: on a shared 2-core machine one process saw its
SingleStream p90 at 0.020 ms and then at 0.040 ms between attempts, and a CI run read Offline
1.46 [1.18, 1.81] over 3 rounds with a 10 % margin. So this study states a 50 % margin and runs
5 rounds: a self-comparison then reads beyond it only when every round lands on the same side
by more than that, while a comparison that paired the wrong points (another scenario or batch
size, 4x apart here) still would. Its CIs are rarely narrow enough for `equivalent`; the
default study's self-comparison (config/self-comparison.yaml, 7 rounds of a real model, 10 %)
must read `equivalent` (benchmarks/reproduce_verdicts.py --expect equivalent)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reproscope.acquire.envfile import read_env_file
from reproscope.acquire.envs import record
from reproscope.acquire.lockfile import read_lock
from reproscope.report.compare import FASTER, OUTCOMES, SLOWER
from reproscope.runtime import integrity
from tests import tinystudy
from tests.test_workflow import snakemake

pytest.importorskip("onnxruntime")
pytest.importorskip("mlperf_loadgen")

RUNS = 2


def venv_twin(prefix: Path) -> Path:
    """A prefix that runs as this interpreter's environment, packages included: a link to
    the interpreter beside a copy of its venv's pyvenv.cfg and a link to its lib/. A bare
    link alone finds no pyvenv.cfg, so it would run the base interpreter without the venv's
    packages (or with whatever the base happens to have)."""
    (prefix / "bin").mkdir(parents=True)
    python = prefix / "bin" / "python"
    os.symlink(sys.executable, python)
    if sys.prefix != sys.base_prefix:
        shutil.copy(Path(sys.prefix) / "pyvenv.cfg", prefix / "pyvenv.cfg")
        os.symlink(Path(sys.prefix) / "lib", prefix / "lib")
    probe = subprocess.run(
        [str(python), "-c", "import sys, onnxruntime, mlperf_loadgen; print(sys.prefix)"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == str(prefix), probe.stderr
    return python


def twin_of_host(root: Path) -> None:
    """`host-twin`: host.yaml and its lock under another name, whose prefix runs this
    interpreter's environment, recorded as build_env records it; so nothing is downloaded."""
    envs = root / "envs"
    shutil.copy(envs / "host.yaml", envs / "host-twin.yaml")
    shutil.copy(envs / "host.lock.txt", envs / "host-twin.lock.txt")
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["environments"]["host-twin"] = "envs/host-twin.yaml"
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # A dry run writes the workflow's stamp files, so the record below is newer than them.
    assert snakemake(root, "-n").returncode == 0
    env = read_env_file("host-twin", str(envs / "host-twin.yaml"))
    prefix = root / "results" / "envs" / "host-twin" / "prefix"
    python = venv_twin(prefix)
    built = {"lock": read_lock(envs / "host-twin.lock.txt"), "method": "host"}
    built["python"] = str(python)
    (prefix.parent / "lock.json").write_text(json.dumps(record(env, built), sort_keys=True))
    integrity.record(prefix.parent / "lock.json")  # as build_env records its digest


def test_self_comparison_finds_no_difference(tmp_path: Path) -> None:
    tinystudy.build(
        tmp_path,
        batch_sizes=(1, 4),
        models=["tiny-onnx"],
        scenarios=["FixedBatch", "SingleStream", "Server", "Offline"],
        server={"latency_bound_ms": 20.0, "latency_percentile": 0.9, "max_batch": 1},
        compare_environments={"tiny-onnx": ["host-twin"]},
        repeats=5,
        min_effect=0.5,
        timing={
            "warmup": 2,
            "min_duration_s": 0.2,
            "min_queries": 20,
            "max_duration_s": 1.0,
            "target_ci_rel": 0.02,
        },
    )
    twin_of_host(tmp_path)
    verdicts = []
    for run in range(RUNS):
        # Later runs measure again; the environments and caches are kept.
        force = ["--forcerun", "latency_round_local"] if run else []
        result = snakemake(tmp_path, "--until", "aggregate", *force)
        assert result.returncode == 0, result.stderr[-4000:]
        table = pd.read_csv(tmp_path / "results" / "summary" / "comparisons.csv")
        assert set(table["kind"]) == {"environment"}
        assert len(table) == 5  # FixedBatch x 2, SingleStream, Server, Offline
        assert (table["rounds"] == 5).all() and (table["min_effect"] == 0.5).all()
        verdicts.append(table)
    for table in verdicts:
        shown = table[["scenario", "batch_size", "ratio_b_over_a", "ci95_low", "ci95_high"]]
        shown = shown.assign(p_value=table["p_value"], verdict=table["verdict"])
        assert table["verdict"].isin(OUTCOMES).all(), shown.to_string()
        assert not table["verdict"].isin([FASTER, SLOWER]).any(), shown.to_string()
