"""The LoadGen SUT and QSL contracts, with a fake runner under the real MLPerf LoadGen."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from reproscope.runtime.cache import Cache
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.scenarios import loadgen, server_search
from reproscope.runtime.scenarios.loadgen import (
    SCHED_IDLE_DEVIATION,
    demote_log_thread,
    early_stopping_queries,
    mlperf_conf,
    performance_count,
    queries_short,
    run_loadgen,
    thread_ids,
    with_min_queries,
)
from reproscope.runtime.scenarios.loadgen_sut import SampleLibrary, ServerPolicy
from reproscope.runtime.scenarios.server_search import (
    find_peak_server_rate,
    server_min_duration_s,
    server_trial_spec,
)
from reproscope.runtime.tensorize import finish

lg = pytest.importorskip("mlperf_loadgen")

N_SAMPLES = 24


class FakeRunner:
    """Sleeps like a model and returns logits that identify each input row."""

    def __init__(self, sleep_s: float = 0.002) -> None:
        self.sleep_s = sleep_s
        self.batches: list[np.ndarray] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch)
        time.sleep(self.sleep_s)
        return np.repeat(batch.reshape(len(batch), -1)[:, :1], 4, axis=1)


def inputs() -> np.ndarray:
    """Row i holds the value i everywhere, so an output names the sample it came from."""
    return np.broadcast_to(
        np.arange(N_SAMPLES, dtype=np.float32)[:, None, None, None], (N_SAMPLES, 3, 2, 2)
    ).copy()


SPEC = {
    "min_duration_s": 0.3,
    "max_duration_s": 5.0,
    "min_queries": 20,
    "expected_latency_ms": 2.0,
    "expected_qps": 400.0,
    "samples_per_query": 8,
}


def run(scenario: str, tmp_path: Path, **kw: object) -> tuple[dict, SampleLibrary, FakeRunner]:
    library, runner = SampleLibrary(inputs()), FakeRunner()
    spec = {**SPEC, **kw.pop("spec", {})}
    result = run_loadgen(lg, runner, library, scenario, spec, tmp_path / scenario, **kw)
    return result, library, runner


def check_samples(library: SampleLibrary, runner: FakeRunner) -> None:
    loaded = {i for load in library.loads for i in load}
    assert loaded and loaded <= set(range(N_SAMPLES))
    seen = np.concatenate([b[:, 0, 0, 0] for b in runner.batches]).astype(int)
    assert set(seen) <= loaded  # the SUT read only samples LoadGen had loaded


def test_single_stream_one_sample_per_query(tmp_path: Path) -> None:
    result, library, runner = run("SingleStream", tmp_path)
    assert result["validity"] == "VALID", result["invalid_reason"]
    assert result["query_count"] == len(runner.batches) >= 20  # every query completed
    assert {len(b) for b in runner.batches} == {1}
    check_samples(library, runner)
    assert 2.0 <= result["p50_ms"] < 50
    assert result["early_stopping_p90_ms"] >= result["p50_ms"]
    assert result["settings"]["user_conf"]["target_latency"] == 2.0
    assert result["settings_effective"]["requested_single_stream_expected_latency_ns"] == 2e6
    assert result["settings_effective"]["effective_min_query_count"] == 20
    logs = tmp_path / "SingleStream"
    assert (logs / "mlperf_log_summary.txt").read_text().count("Result is : VALID") == 1
    assert (logs / "mlperf_log_detail.txt").stat().st_size > 0


def test_multi_stream_queries_have_eight_samples(tmp_path: Path) -> None:
    result, library, runner = run("MultiStream", tmp_path)
    assert {len(b) for b in runner.batches} == {8}
    assert result["query_count"] == len(runner.batches)
    check_samples(library, runner)
    # 20-odd queries cannot bound a p99: LoadGen says so, and it is recorded.
    assert result["validity"] == "INVALID"
    assert "early stopping" in result["invalid_reason"]


def test_offline_is_one_query_run_in_fixed_batches(tmp_path: Path) -> None:
    result, library, runner = run("Offline", tmp_path, batch_size=8)
    assert result["query_count"] == 1
    sizes = [len(b) for b in runner.batches]
    assert max(sizes) == 8 and len(sizes) - 1 <= sizes.count(8)  # only the last is partial
    assert sum(sizes) == result["settings_effective"]["effective_samples_per_query"]
    assert result["sut"]["batch"] == 8
    check_samples(library, runner)
    assert result["samples_per_second"] > 0


def test_server_dynamic_batching_completes_every_sample(tmp_path: Path) -> None:
    policy = ServerPolicy(workers=2, max_batch=4, max_wait_ms=3.0)
    spec = {"target_qps": 300.0, "latency_bound_ms": 100.0, "latency_percentile": 0.9}
    result, library, runner = run("Server", tmp_path, spec=spec, server=policy)
    sut = {k: v for k, v in result["sut"].items() if k != "loadgen_log_thread"}
    assert sut == {"policy": "worker pool, dynamic batching", **policy.__dict__}
    assert sum(len(b) for b in runner.batches) == result["query_count"]
    assert max(len(b) for b in runner.batches) <= 4
    check_samples(library, runner)
    assert result["validity"] == "VALID", result["invalid_reason"]


def test_server_runs_its_first_worker_in_the_main_thread(tmp_path: Path) -> None:
    """The thread that loaded the model serves Server's batches (LoadGen runs in another):
    PyTorch's OpenMP ran twice as slow in a second thread on 2 cores."""

    class ThreadRecorder(FakeRunner):
        threads: set[bool] = set()

        def run(self, batch: np.ndarray) -> np.ndarray:
            self.threads.add(threading.current_thread() is threading.main_thread())
            return super().run(batch)

    runner = ThreadRecorder()
    spec = {**SPEC, "target_qps": 200.0, "latency_bound_ms": 100.0, "latency_percentile": 0.9}
    library = SampleLibrary(inputs())
    result = run_loadgen(
        lg, runner, library, "Server", spec, tmp_path, server=ServerPolicy(max_batch=2)
    )
    assert runner.threads == {True}
    assert sum(len(b) for b in runner.batches) == result["query_count"]
    assert result["validity"] == "VALID", result["invalid_reason"]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
@pytest.mark.parametrize("scenario", ["SingleStream", "Server"])
def test_only_loadgens_log_thread_runs_at_idle_priority(scenario: str, tmp_path: Path) -> None:
    """While queries run, exactly one thread is at SCHED_IDLE: not one that runs the model,
    and one that LoadGen started and stopped with the test (its log IO thread)."""
    seen: dict[str, object] = {}

    class PolicyRecorder(FakeRunner):
        def run(self, batch: np.ndarray) -> np.ndarray:
            if "idle" not in seen:
                policies = {tid: os.sched_getscheduler(tid) for tid in thread_ids()}
                seen["idle"] = {tid for tid, p in policies.items() if p == os.SCHED_IDLE}
                seen["runner"] = threading.get_native_id()
            return super().run(batch)

    spec = {**SPEC, "target_qps": 200.0, "latency_bound_ms": 100.0, "latency_percentile": 0.9}
    before = thread_ids()
    result = run_loadgen(
        lg,
        PolicyRecorder(),
        SampleLibrary(inputs()),
        scenario,
        spec,
        tmp_path,
        server=ServerPolicy(workers=2),
    )
    assert result["sut"]["loadgen_log_thread"] == "SCHED_IDLE"
    (idle,) = seen["idle"]
    assert idle != seen["runner"] and idle not in before
    assert idle not in thread_ids()  # it ended with the test


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_demotion_needs_exactly_one_new_thread() -> None:
    assert demote_log_thread(thread_ids()).startswith("normal priority: 0 threads")
    stop = threading.Event()
    extra = [threading.Thread(target=stop.wait) for _ in range(2)]
    before = thread_ids()
    for thread in extra:
        thread.start()
    try:
        assert demote_log_thread(before).startswith("normal priority: 2 threads")
    finally:
        stop.set()
        for thread in extra:
            thread.join()
    assert all(os.sched_getscheduler(tid) != os.SCHED_IDLE for tid in thread_ids())


def test_accuracy_mode_logs_every_output(tmp_path: Path) -> None:
    result, _, _ = run("SingleStream", tmp_path, spec={"accuracy": True})
    log = json.loads((tmp_path / "SingleStream" / "mlperf_log_accuracy.json").read_text())
    assert sorted(entry["qsl_idx"] for entry in log) == list(range(N_SAMPLES))
    for entry in log:
        values = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.float32)
        assert (values == entry["qsl_idx"]).all()  # the output of that very sample
    assert result["settings"]["mode"].endswith("AccuracyOnly")


def test_failing_runner_is_reported(tmp_path: Path) -> None:
    class Broken(FakeRunner):
        def run(self, batch: np.ndarray) -> np.ndarray:
            raise MemoryError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_loadgen(lg, Broken(), SampleLibrary(inputs()), "SingleStream", SPEC, tmp_path)


def synthetic(capacity: float) -> tuple[list[float], object]:
    tried: list[float] = []

    def trial(rate: float) -> dict:
        tried.append(rate)
        return {"validity": "VALID" if rate <= capacity else "INVALID"}

    return tried, trial


@pytest.mark.parametrize("start", [1.0, 37.0, 1000.0])
def test_server_search_widens_its_bounds(start: float) -> None:
    tried, trial = synthetic(37.0)
    search = find_peak_server_rate(trial, start, steps=8, max_trials=40)
    low, high = search["bracket"]
    assert low == search["peak_qps"] <= 37.0 < high
    assert high - low <= max(start, 37.0) / 2**7
    assert search["peak_qps"] in tried and high in tried  # both ends were measured


def test_server_search_without_a_bracket_says_so() -> None:
    _, trial = synthetic(float("inf"))
    search = find_peak_server_rate(trial, 10.0, steps=3, max_trials=5)
    assert search["peak_qps"] is None
    assert "VALID" in search["reason"]


def test_server_search_stops_halving_at_its_floor() -> None:
    tried, trial = synthetic(0.0)  # nothing is VALID: halving alone would never end
    search = find_peak_server_rate(trial, 16.0, steps=3, max_trials=40, min_qps=1.0)
    assert search["peak_qps"] is None and min(tried) == 1.0
    assert "INVALID at every rate" in search["reason"]


def test_too_few_queries_for_early_stopping_is_not_a_latency_failure(tmp_path: Path) -> None:
    """A Server run too short for LoadGen's early stopping asks for more queries; a run
    whose latencies break the bound does not."""
    short = {"target_qps": 50.0, "latency_bound_ms": 100.0, "latency_percentile": 0.9}
    brief, _, _ = run(
        "Server", tmp_path / "brief", spec={**short, "min_queries": 1, "min_duration_s": 0.1}
    )
    more = queries_short(brief)
    assert brief["validity"] == "INVALID" and brief["perf_constraints_met"] and more > 0
    longer, _, _ = run(
        "Server",
        tmp_path / "longer",
        spec={**short, "min_queries": brief["query_count"] + more, "min_duration_s": 0.1},
    )
    assert longer["validity"] == "VALID", longer["invalid_reason"]
    slow, _, _ = run("Server", tmp_path / "slow", spec={**short, "latency_bound_ms": 0.5})
    assert slow["validity"] == "INVALID" and queries_short(slow) is None


@pytest.mark.parametrize("percentile,queries", [(0.9, 44), (0.99, 459)])
def test_early_stopping_minimum_is_loadgens(percentile: float, queries: int) -> None:
    assert early_stopping_queries(percentile) == queries


def test_single_stream_runs_the_queries_its_early_stopping_needs(tmp_path: Path) -> None:
    """One query short of the count is INVALID (LoadGen names the same count); the count
    itself is VALID, its time cap lifted for it."""
    needed = early_stopping_queries(0.9, overflows=1)
    assert needed == 64  # MLPerf's p90 at LoadGen's 99 % confidence
    spec = {**SPEC, "min_duration_s": 0.01, "max_duration_s": 0.05}
    short, _, _ = run("SingleStream", tmp_path / "short", spec={**spec, "min_queries": needed - 1})
    assert short["validity"] == "INVALID"
    assert f"at least {needed} queries" in short["early_stopping_result"]
    enough = with_min_queries(spec, needed, rate=1e3 / 2.0)
    assert enough["max_duration_s"] >= needed * 2.0 / 1e3
    result, _, _ = run("SingleStream", tmp_path / "enough", spec=enough)
    assert result["validity"] == "VALID", result["invalid_reason"]
    assert result["query_count"] >= needed


def test_a_server_trial_lasts_long_enough_to_expose_an_overload(tmp_path: Path) -> None:
    """Arrivals 30 % above what the SUT can serve: a 0.05 s burst stays under the bound and
    reads VALID; the trial spec's ten bounds let the queue grow past it, INVALID."""
    spec = {**SPEC, "latency_bound_ms": 100.0, "latency_percentile": 0.9, "min_duration_s": 0.05}
    serial = ServerPolicy(workers=1, max_batch=1)
    capacity = 1 / 0.004  # one 4 ms batch of one sample at a time, at best
    rate, needed = 1.3 * capacity, early_stopping_queries(0.9)

    def trial(name: str, trial_spec: dict) -> dict:
        library, runner = SampleLibrary(inputs()), FakeRunner(sleep_s=0.004)
        return run_loadgen(lg, runner, library, "Server", trial_spec, tmp_path / name, 1, serial)

    burst = trial("burst", {**spec, "target_qps": rate, "min_queries": needed})
    assert burst["validity"] == "VALID", burst["invalid_reason"]
    lasting = server_trial_spec(spec, rate, needed)
    assert lasting["min_duration_s"] == server_min_duration_s(100.0) == 1.0
    overloaded = trial("lasting", lasting)
    assert overloaded["validity"] == "INVALID"
    assert overloaded["perf_constraints_met"] is False


def test_a_low_server_rate_gets_the_time_its_queries_need(tmp_path: Path) -> None:
    """At 20 q/s, 44 queries take over 2 s: with the study's 1 s cap LoadGen exits early and
    calls a rate INVALID that its latencies pass; the trial spec lifts the cap."""
    spec = {**SPEC, "latency_bound_ms": 100.0, "latency_percentile": 0.9, "max_duration_s": 1.0}
    spec["min_duration_s"] = 0.1
    needed = early_stopping_queries(0.9)
    capped_spec = {**spec, "target_qps": 20.0, "min_queries": needed}
    capped, _, _ = run("Server", tmp_path / "capped", spec=capped_spec)
    assert capped["validity"] == "INVALID" and "exited early" in capped["invalid_reason"]
    trial = server_trial_spec(spec, 20.0, needed)
    assert trial["max_duration_s"] >= needed / 20.0
    lifted, _, _ = run("Server", tmp_path / "lifted", spec=trial)
    assert lifted["validity"] == "VALID", lifted["invalid_reason"]
    assert lifted["query_count"] >= needed


# --- The tiny model under real LoadGen, its QSL the dataset's cached tensors ---------------

TINY_SAMPLES = 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 64-image colour dataset in a uint8 cache of 16-image chunks (so the library reads
    across chunks), its labels, and the tiny PyTorch colour model loaded. Every seventh
    image is a random colour, so the model's top-1 is neither 0 nor 1."""
    from reproscope.acquire.cache_writer import write_cache
    from reproscope.acquire.datasets import SYNTHETIC_CLASSES
    from reproscope.runtime.runners import make_runner
    from reproscope.runtime.tensorize import tensor_spec
    from tests.tinystudy import colour_inputs, write_weights

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    colours = [SYNTHETIC_CLASSES[name] for name in sorted(SYNTHETIC_CLASSES)]
    labels = np.arange(TINY_SAMPLES) % len(colours)

    def image(i: int) -> np.ndarray:
        colour = rng.integers(0, 256, 3) if i % 7 == 0 else np.array(colours[labels[i]])
        noise = rng.integers(-20, 21, (32, 32, 3))
        return np.clip(colour + noise, 0, 255).astype(np.uint8)

    index = root / "cache.json"
    write_cache(range(TINY_SAMPLES), image, (32, 32, 3), root / "chunks", index, chunk_images=16)
    weights = root / "tiny.pt"
    write_weights(weights)
    job = InferenceJob(
        mode="latency",
        framework="pytorch",
        manifest="tiny",
        model="tiny-colour",
        system="local",
        env="host",
        device="cpu",
        threads=1,
        artifact=str(weights),
        inputs=str(index),
        env_lock="",
        architecture={
            "entry_point": "reproscope.runtime.tinynet:TinyColourNet",
            "args": [len(colours)],
            "kwargs": {},
            "packages": ["torch"],
        },
        unsafe_pickle=False,
        top_k=5,
        batch_size=1,
        timing={"warmup": 2, "min_duration_s": 0.2, "min_queries": 5, "max_duration_s": 3.0},
        tensor=tensor_spec(colour_inputs(32, "NCHW")),
    )
    runner = make_runner("pytorch")
    runner.load(weights, job)
    return {"job": job, "runner": runner, "labels": labels, "root": root}


def tiny_point(tiny: dict, tmp_path: Path, scenario: str, batch_size: int = 1, **kw) -> tuple:
    job = dataclasses.replace(
        tiny["job"],
        scenario=scenario,
        batch_size=batch_size,
        loadgen_dir=str(tmp_path / scenario),
        **kw,
    )
    inputs = finish(Cache(job.inputs).first(batch_size), job.tensor)
    return job, inputs


def test_the_tiny_models_queries_cover_its_sample_library(tiny: dict, tmp_path: Path) -> None:
    """Real LoadGen on the tiny model with a 64-sample QSL: LoadGen loads the library it
    chose and the SingleStream queries read many different samples of it."""
    job, inputs = tiny_point(tiny, tmp_path, "SingleStream")
    metrics = loadgen.run(tiny["runner"], job, inputs)
    assert metrics["validity"] == "VALID", metrics["invalid_reason"]
    assert metrics["performance_sample_count"] == TINY_SAMPLES
    effective = metrics["settings_effective"]
    assert effective["effective_performance_sample_count"] == TINY_SAMPLES
    assert metrics["distinct_samples"] > 1
    seeds = mlperf_conf(lg, None, "SingleStream")
    for seed in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        assert effective[f"effective_{seed}"] == getattr(seeds, seed) != 0
    # the short profile's durations and LoadGen's demoted log thread are named deviations
    deviations = " ".join(metrics["deviations"])
    assert "no mlperf_benchmark" in deviations and "min_duration_ms=200" in deviations
    assert SCHED_IDLE_DEVIATION in metrics["deviations"]
    assert (tmp_path / "SingleStream" / "user.conf").read_text().count("min_duration = 200")


def test_a_benchmarks_library_is_its_mlperf_count_or_the_dataset(
    tiny: dict, tmp_path: Path
) -> None:
    job, inputs = tiny_point(tiny, tmp_path, "SingleStream", mlperf_benchmark="resnet50")
    metrics = loadgen.run(tiny["runner"], job, inputs)
    assert metrics["performance_sample_count"] == TINY_SAMPLES  # min(1024, 64)
    assert metrics["settings_effective"]["effective_performance_sample_count"] == TINY_SAMPLES
    assert "performance_sample_count_override=64 (mlperf.conf: 1024)" in metrics["deviations"]
    assert not any("mlperf_benchmark" in d for d in metrics["deviations"])
    assert performance_count(lg, "resnet50", 50_000) == 1024
    assert performance_count(lg, None, 50_000) == 1024
    assert performance_count(lg, None, 1000) == 1000


def test_the_mlperf_profile_keeps_mlperf_conf_and_names_no_deviation(tmp_path: Path) -> None:
    """Hints and a time cap only: ResNet-50's settings are mlperf.conf's, in every scenario
    and on every call in one process (LoadGen loads mlperf.conf itself only once)."""
    for scenario in ("SingleStream", "SingleStream", "Offline"):
        spec = {"benchmark": "resnet50", "max_duration_s": 7200.0}
        spec.update(expected_latency_ms=5.0, expected_qps=100.0)
        settings, chosen = loadgen.test_settings(lg, scenario, spec, tmp_path)
        assert chosen["deviations"] == []
        assert settings.min_duration_ms == 600_000
        assert settings.performance_sample_count_override == 1024
    assert settings.min_query_count == 24576  # Offline's samples
    short = {**spec, "min_duration_s": 1.0, "min_queries": 10}
    _, chosen = loadgen.test_settings(lg, "Offline", short, tmp_path)
    assert chosen["deviations"] == [
        "min_duration_ms=1000 (mlperf.conf: 600000)",
        "min_query_count=10 (mlperf.conf: 24576)",
    ]


def test_a_library_load_may_repeat_samples_and_reuses_its_rows(tiny: dict) -> None:
    """LoadGen's MultiStream loads a sample more than once in one call; a library that is
    loaded again (every Server trial) reuses the rows it made, never more than its size."""
    samples = loadgen.CachedSamples(Cache(tiny["job"].inputs), tiny["job"].tensor)
    library = SampleLibrary(samples, performance_count=3)
    library.load([5, 5, 17, 40])
    assert sorted(library.resident) == [5, 17, 40]
    np.testing.assert_array_equal(library.batch([17, 5])[0], samples[[17]][0])
    rows = dict(library.resident)
    library.unload([5, 17, 40])
    assert not library.resident and len(library.spare) == 3
    library.load([40, 17, 5])
    assert all(library.resident[i] is rows[i] for i in (5, 17, 40))
    library.unload([5, 17, 40])
    library.load([1, 2, 3])
    library.unload([1, 2, 3])
    assert len(library.spare) <= 3


def test_an_unknown_benchmark_is_refused_with_the_allowed_list(tmp_path: Path) -> None:
    import yaml

    from reproscope.errors import InputError, InputErrors
    from reproscope.plan.manifest import load_manifest

    repo = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((repo / "manifests" / "resnet50-v1-onnx.yaml").read_text())
    assert data["mlperf_benchmark"] == "resnet50"
    data["mlperf_benchmark"] = "resnet-50"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises((InputError, InputErrors), match="mlperf_benchmark.*resnet50"):
        load_manifest(path)


def test_offline_holds_at_least_its_batch_and_says_how_many(tiny: dict, tmp_path: Path) -> None:
    job, inputs = tiny_point(tiny, tmp_path, "Offline", batch_size=8)
    metrics = loadgen.run(tiny["runner"], job, inputs)
    assert metrics["validity"] == "VALID", metrics["invalid_reason"]
    per_query = metrics["samples_per_query"]
    assert per_query == metrics["settings_effective"]["effective_samples_per_query"] >= 8
    assert metrics["throughput_ips"] == metrics["samples_per_second"]


def test_loadgens_accuracy_log_gives_the_accuracy_jobs_top1(tiny: dict, tmp_path: Path) -> None:
    """AccuracyOnly: the top-1 computed from mlperf_log_accuracy.json equals the accuracy
    job's, image by image, on the tiny model."""
    from reproscope.runtime.accuracy import accuracy_pass

    out = tmp_path / "accuracy"
    out.mkdir()
    job = dataclasses.replace(
        tiny["job"],
        mode="accuracy",
        batch_size=16,
        logits_out=str(out / "logits.npy"),
        topk_out=str(out / "topk.npy"),
    )
    accuracy_pass(tiny["runner"], Cache(job.inputs), job, progress=io.StringIO())
    job_top1 = np.load(out / "topk.npy")[:, 0]
    labels = tiny["labels"]
    for scenario, batch in (("SingleStream", 1), ("Offline", 8)):
        point, inputs = tiny_point(tiny, tmp_path, scenario, batch_size=batch)
        library = loadgen.sample_library(lg, point)
        spec = loadgen.base_spec(lg, tiny["runner"], point, inputs)
        found = loadgen.accuracy_run(lg, tiny["runner"], point, spec, library)
        logged = np.array(found["top1_index"])
        assert (logged == job_top1).all()
        top1 = float(np.mean(logged == labels))
        assert top1 == float(np.mean(job_top1 == labels))
        assert 0.5 < top1 < 1.0


def test_the_server_figure_is_a_valid_confirmation_within_the_budget(
    tiny: dict, tmp_path: Path
) -> None:
    """A runner that takes 4 ms a batch: the search starts from its measured service
    rate, no trial runs past its bound, the budget stops the search and the row says so,
    and the figure is the completed samples/s of a VALID confirmation run."""
    timing = {**tiny["job"].timing, "server_trial_max_s": 1.5, "server_search_budget_s": 3.0}
    server = {"latency_bound_ms": 50.0, "latency_percentile": 0.9, "max_batch": 2}
    job, inputs = tiny_point(tiny, tmp_path, "Server", 2, server=server, timing=timing)
    metrics = server_search.run(FakeRunner(sleep_s=0.004), job, inputs)
    assert 2 / 0.008 < metrics["server_start_qps"] <= 2 / 0.004  # two per (slept) 4 ms batch
    assert metrics["server_search_budget_exhausted"]
    assert "budget of 3 s ran out" in metrics["server_search_reason"]
    assert all(t["wall_s"] < 1.5 + 0.5 for t in metrics["server_trials"])
    assert metrics["validity"] == "VALID"
    assert metrics["server_max_qps"] == metrics["completed_samples_per_sec"]
    assert metrics["server_target_qps"] == metrics["settings"]["user_conf"]["target_qps"]
    assert metrics["server_max_qps"] != metrics["server_target_qps"]
