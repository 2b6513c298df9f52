"""MLPerf LoadGen drives a runner: a QSL over the preprocessed tensors and a SUT around any
runner of :mod:`reproscope.runtime.runners` (the one interface of ``runners/base.py``).

Env-side: imports only the standard library, numpy and ``mlperf_loadgen`` (pinned in every
framework environment). LoadGen issues the queries, times them, applies its early-stopping
rule and writes its logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt`` and, in
accuracy mode, ``mlperf_log_accuracy.json``) into the job's log directory; this module reads
its verdict back from the detail log, never re-deriving it.

How the SUT serves queries (stated in every result as ``sut``):

* SingleStream and MultiStream: the query runs in LoadGen's issue thread as one batch (1 or
  ``multi_stream_samples_per_query`` samples) and completes before the call returns. Handing
  it to another thread instead costs two thread wake-ups per query: measured +2.4 % (ONNX
  Runtime) and +2.6 % (PyTorch) over a bare loop for EfficientNet-Lite0 at batch 1 on 2
  cores, against +1.6 % and +1.3 % inline (12 and 8 interleaved rounds).
* Offline: LoadGen sends all samples in one query; the SUT runs them in batches of
  ``batch_size``, completing each batch as it finishes.
* Server: a queue served by ``workers`` workers with dynamic batching: a worker takes the
  oldest sample, waits at most ``max_wait_ms`` for up to ``max_batch - 1`` more, runs them as
  one batch and completes them together. The first worker is the process's main thread, the
  one that loaded and warmed up the model, and LoadGen runs in a thread of its own: once a
  second thread runs OpenMP parallel regions, libgomp has more threads than cores and stops
  spin-waiting, and PyTorch then ran EfficientNet-Lite0 at batch 1 in 44 ms instead of 22
  on 2 cores (ONNX Runtime, with its own thread pool, ran alike in either thread).

In every scenario LoadGen's log IO thread runs at SCHED_IDLE (``loadgen_log_thread`` in
``sut``; see :func:`demote_log_thread`): waking every 10 ms at normal priority it preempted
the framework's threads and made PyTorch at batch 1 measure 0.8 % slower under LoadGen
(10 fresh processes, interleaved, 95 % CI -0.3..+1.9 %).
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOADGEN_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTI_STREAM_SAMPLES = 8  # MLPerf's samples per MultiStream query


@dataclass
class ServerPolicy:
    """How the Server SUT uses the machine: worker threads and dynamic batching."""

    workers: int = 1
    max_batch: int = 1
    max_wait_ms: float = 0.0


class SampleLibrary:
    """The QSL: sample ``i`` is row ``i`` of the preprocessed tensor; LoadGen chooses which
    samples are resident (load/unload) and the SUT only reads resident ones."""

    def __init__(self, inputs: np.ndarray, performance_count: int | None = None) -> None:
        self.inputs = inputs
        self.total = len(inputs)
        self.performance_count = min(performance_count or self.total, self.total)
        self.resident: dict[int, np.ndarray] = {}
        self.loads: list[list[int]] = []

    def load(self, indices: list[int]) -> None:
        self.loads.append(list(indices))
        for i in indices:
            self.resident[i] = np.ascontiguousarray(self.inputs[i])

    def unload(self, indices: list[int]) -> None:
        for i in indices:
            self.resident.pop(i, None)

    def batch(self, indices: list[int]) -> np.ndarray:
        if len(indices) == 1:  # a view: a one-sample query pays no copy the bare call skips
            return self.resident[indices[0]][None]
        return np.stack([self.resident[i] for i in indices])


class RunnerSUT:
    """A runner as LoadGen's system under test (see the module docstring for the policy)."""

    def __init__(
        self,
        runner: Any,
        library: SampleLibrary,
        lg: Any,
        scenario: str,
        batch_size: int = 1,
        server: ServerPolicy | None = None,
        keep_outputs: bool = False,
    ) -> None:
        self.runner, self.library, self.lg = runner, library, lg
        self.scenario, self.batch_size = scenario, batch_size
        self.server = server or ServerPolicy()
        self.keep_outputs = keep_outputs
        self.issued: list[list[int]] = []  # sample indices of each query, in issue order
        self.batches: list[int] = []  # size of every batch the runner ran
        self.service_ms: list[float] = []  # runner time of each batch
        self._queue: queue.Queue[Any] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []

    def describe(self) -> dict[str, Any]:
        if self.scenario == "Server":
            return {"policy": "worker pool, dynamic batching", **asdict(self.server)}
        if self.scenario == "Offline":
            return {"policy": "one query, split into fixed batches", "batch": self.batch_size}
        return {"policy": "inline in LoadGen's issue thread, one batch per query"}

    def _run(self, samples: list[Any]) -> None:
        # Inside LoadGen's timed window (issue to QuerySamplesComplete) the SUT does only
        # what completion needs: right after a model call, Python runs on cold caches (a few
        # dozen bytecodes took 4-5 us instead of 1.5 on 2 cores), so converting the output and
        # the bookkeeping cost ~30 us per query there. Performance mode reports no output, so
        # its responses are built before the call and the bookkeeping follows completion.
        respond = self.lg.QuerySampleResponse
        batch = self.library.batch([s.index for s in samples])
        if not self.keep_outputs:
            responses = [respond(s.id, 0, 0) for s in samples]
        start = time.perf_counter_ns()
        try:
            logits = self.runner.run(batch)
        except BaseException as exc:  # LoadGen's threads must still see every query complete
            self.errors.append(exc)
            logits = np.zeros((len(samples), 1), dtype=np.float32)
        service_ns = time.perf_counter_ns() - start
        if self.keep_outputs:
            # LoadGen copies the bytes inside QuerySamplesComplete; `outputs` outlives it.
            outputs = np.ascontiguousarray(logits, dtype=np.float32)
            responses = [
                respond(sample.id, row.ctypes.data, row.nbytes)
                for row, sample in zip(outputs, samples, strict=True)
            ]
        self.lg.QuerySamplesComplete(responses)
        with self._lock:
            self.service_ms.append(service_ns / 1e6)
            self.batches.append(len(samples))

    def issue(self, samples: list[Any]) -> None:
        if self.scenario == "Server":
            for s in samples:
                self._queue.put(s)
        elif self.scenario == "Offline":
            for i in range(0, len(samples), self.batch_size):
                self._run(samples[i : i + self.batch_size])
        else:
            self._run(samples)
        # After the inline runs have completed: kept out of LoadGen's timed window.
        self.issued.append([s.index for s in samples])

    def flush(self) -> None:
        pass

    def _worker(self) -> None:
        policy = self.server
        while True:
            first = self._queue.get()
            if first is None:
                return
            taken = [first]
            deadline = time.perf_counter() + policy.max_wait_ms / 1e3
            while len(taken) < policy.max_batch:
                left = deadline - time.perf_counter()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # let the other workers see the stop too
                    break
                taken.append(item)
            self._run(taken)

    def __enter__(self) -> RunnerSUT:
        if self.scenario == "Server":  # worker 0 is the caller's thread: see serve()
            self._workers = [
                threading.Thread(target=self._worker, daemon=True)
                for _ in range(self.server.workers - 1)
            ]
            for worker in self._workers:
                worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()

    def serve(self, test: Callable[[], None]) -> None:
        """Server: run ``test`` (LoadGen's) in a thread of its own while this thread serves
        as the first worker, until the test has returned."""
        failure: list[BaseException] = []

        def run_test() -> None:
            try:
                test()
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)
            finally:
                for _ in range(self.server.workers):  # whichever worker takes one stops
                    self._queue.put(None)

        tester = threading.Thread(target=run_test, daemon=True)
        tester.start()
        self._worker()
        tester.join()
        if failure:
            raise failure[0]


def thread_ids() -> set[int]:
    """Native ids of this process's threads (empty where /proc is absent)."""
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def demote_log_thread(before: set[int]) -> str:
    """Put LoadGen's log IO thread at SCHED_IDLE and say what was done.

    Called from LoadGen's first QSL load, before its timed window: the IO thread is then the
    one thread started since ``before`` (taken before StartTest) other than the caller.
    It wakes every 10 ms (``kLogPollPeriod``, fixed in LoadGen) and at normal priority each
    wake preempts a framework thread and stalls its parallel region; at SCHED_IDLE it runs
    only on a core nobody else wants. It only serialises logs, so timing is unaffected:
    LoadGen timestamps queries in the issuing and completing threads.
    """
    if not hasattr(os, "SCHED_IDLE"):
        return "normal priority: this OS has no SCHED_IDLE"
    started = thread_ids() - before - {threading.get_native_id()}
    if len(started) != 1:
        return f"normal priority: {len(started)} threads started with the test, expected 1"
    try:
        os.sched_setscheduler(started.pop(), os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:
        return f"normal priority: sched_setscheduler failed ({exc.strerror})"
    return "SCHED_IDLE"


def test_settings(lg: Any, scenario: str, spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """LoadGen TestSettings from a plain spec; returns them and what was set (for the record)."""
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = (
        lg.TestMode.AccuracyOnly if spec.get("accuracy") else lg.TestMode.PerformanceOnly
    )
    chosen: dict[str, Any] = {
        "min_duration_ms": int(spec["min_duration_s"] * 1000),
        "max_duration_ms": int(spec["max_duration_s"] * 1000),
        "min_query_count": int(spec["min_queries"]),
    }
    expected_ns = max(1, int(spec["expected_latency_ms"] * 1e6))
    if scenario == "SingleStream":
        chosen["single_stream_expected_latency_ns"] = expected_ns
    elif scenario == "MultiStream":
        chosen["multi_stream_expected_latency_ns"] = expected_ns
        chosen["multi_stream_samples_per_query"] = int(spec.get("samples_per_query", 8))
    elif scenario == "Server":
        chosen["server_target_qps"] = float(spec["target_qps"])
        chosen["server_target_latency_ns"] = int(spec["latency_bound_ms"] * 1e6)
        chosen["server_target_latency_percentile"] = float(spec.get("latency_percentile", 0.99))
    else:
        chosen["offline_expected_qps"] = float(spec["expected_qps"])
        chosen["min_query_count"] = 1  # Offline is one query
    for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        if key in spec:
            chosen[key] = int(spec[key])
    for key, value in chosen.items():
        setattr(settings, key, value)
    return settings, {"scenario": scenario, "mode": str(settings.mode), **chosen}


def read_detail_log(path: Path) -> dict[str, Any]:
    """The key/value records of ``mlperf_log_detail.txt`` (the last value of a repeated key)."""
    values: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG"):
            record = json.loads(line[len(":::MLLOG") :])
            values[record["key"]] = record["value"]
    return values


def loadgen_result(detail: dict[str, Any]) -> dict[str, Any]:
    """LoadGen's verdict and figures from its detail log: validity and why, early-stopping
    percentile estimates, the latency percentiles it measured and every effective setting."""
    ns = 1e6
    validity = detail.get("result_validity")
    reason = detail.get("result_invalid_reason", "").strip()
    if validity != "VALID" and not detail.get("early_stopping_met", True):
        # LoadGen leaves early stopping out of result_invalid_reason; its own words are here.
        reason = f"{reason} early stopping not met: {detail.get('early_stopping_result', '')}"
    out: dict[str, Any] = {
        "validity": validity,
        "invalid_reason": " ".join(reason.split()) or None,
        "min_duration_met": detail.get("result_min_duration_met"),
        "min_queries_met": detail.get("result_min_queries_met"),
        "early_stopping_met": detail.get("early_stopping_met"),
        "perf_constraints_met": detail.get("result_perf_constraints_met"),
        "early_stopping_result": detail.get("early_stopping_result"),
        "query_count": detail.get("result_query_count"),
        "qps_with_loadgen_overhead": detail.get("result_qps_with_loadgen_overhead"),
        "qps_without_loadgen_overhead": detail.get("result_qps_without_loadgen_overhead"),
        "scheduled_qps": detail.get("result_scheduled_samples_per_sec"),
        "completed_samples_per_sec": detail.get("result_completed_samples_per_sec"),
        "samples_per_second": detail.get("result_samples_per_second"),
    }
    for key, value in detail.items():
        if key.startswith("result_") and key.endswith("_percentile_latency_ns"):
            pct = key[len("result_") : -len("_percentile_latency_ns")]
            out[f"p{float(pct):g}_ms"] = value / ns
        elif key in ("result_mean_latency_ns", "result_min_latency_ns", "result_max_latency_ns"):
            out[key[len("result_") : -len("_latency_ns")] + "_ms"] = value / ns
    # early_stopping_latency_ss: SingleStream's p90 bound; _ms: MultiStream's p99 bound
    # (and Server's, when LoadGen logs it); 0 means LoadGen could not estimate it.
    for key, pct in (("early_stopping_latency_ss", 90), ("early_stopping_latency_ms", 99)):
        if detail.get(key):
            out[f"early_stopping_p{pct}_ms"] = detail[key] / ns
    out["settings_effective"] = {
        k: v for k, v in detail.items() if k.startswith(("requested_", "effective_"))
    }
    return out


def run_loadgen(
    lg: Any,
    runner: Any,
    library: SampleLibrary,
    scenario: str,
    spec: dict[str, Any],
    log_dir: Path,
    batch_size: int = 1,
    server: ServerPolicy | None = None,
) -> dict[str, Any]:
    """One LoadGen test of ``scenario``; logs go to ``log_dir``; returns LoadGen's result."""
    if scenario not in LOADGEN_SCENARIOS:
        raise ValueError(f"unknown LoadGen scenario {scenario!r}; use one of {LOADGEN_SCENARIOS}")
    log_dir.mkdir(parents=True, exist_ok=True)
    settings, chosen = test_settings(lg, scenario, spec)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut_obj = RunnerSUT(
        runner, library, lg, scenario, batch_size, server, keep_outputs=bool(spec.get("accuracy"))
    )
    log_thread: list[str] = []
    started = time.perf_counter()
    with sut_obj:
        before = thread_ids()  # the Server SUT's workers are running by now

        def load(indices: list[int]) -> None:
            if not log_thread:  # LoadGen's first load: its log thread has started
                log_thread.append(demote_log_thread(before))
            library.load(indices)

        sut = lg.ConstructSUT(sut_obj.issue, sut_obj.flush)
        qsl = lg.ConstructQSL(library.total, library.performance_count, load, library.unload)
        try:
            if scenario == "Server":
                sut_obj.serve(lambda: lg.StartTestWithLogSettings(sut, qsl, settings, log_settings))
            else:
                lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
        finally:
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
    if sut_obj.errors:
        raise RuntimeError(f"the runner failed under LoadGen: {sut_obj.errors[0]!r}")
    result = loadgen_result(read_detail_log(log_dir / "mlperf_log_detail.txt"))
    result.update(
        scenario=scenario,
        settings=chosen,
        sut={**sut_obj.describe(), "loadgen_log_thread": log_thread[0] if log_thread else None},
        wall_s=time.perf_counter() - started,
        n_batches=len(sut_obj.batches),
        mean_batch=float(np.mean(sut_obj.batches)) if sut_obj.batches else 0.0,
        logs={p.name: str(p) for p in sorted(log_dir.glob("mlperf_log_*"))},
    )
    return result


def queries_short(result: dict[str, Any]) -> int | None:
    """How many more queries LoadGen's early stopping asked for, when that is the only
    thing that made a run INVALID (its latency constraint held); else None."""
    if result.get("validity") == "VALID" or not result.get("perf_constraints_met"):
        return None
    if result.get("early_stopping_met") is not False:
        return None
    found = _MORE_QUERIES.search(result.get("early_stopping_result") or "")
    return int(found.group(1)) if found else None


_MORE_QUERIES = re.compile(r"at least (\d+) more queries")
EARLY_STOPPING_CONFIDENCE = 0.99  # LoadGen's


def early_stopping_queries(percentile: float, overflows: int = 0) -> int:
    """The fewest queries with which LoadGen's early stopping can pass a latency percentile:
    the least n with P(at most ``overflows`` of n queries over it) <= 1 - 0.99. Server allows
    none (44 for p90, 459 for p99); SingleStream estimates its p90 allowing one (64)."""
    over, n = 1.0 - percentile, overflows + 1
    while (
        sum(math.comb(n, k) * over**k * percentile ** (n - k) for k in range(overflows + 1))
        > 1 - EARLY_STOPPING_CONFIDENCE
    ):
        n += 1
    return n


def with_min_queries(spec: dict[str, Any], min_queries: int, rate: float) -> dict[str, Any]:
    """``spec`` that can issue ``min_queries`` at ``rate`` q/s before its time cap: LoadGen
    ends a run at max_duration even short of min_queries ("exited early"), which would make
    it INVALID for lack of time, not for its latencies."""
    return {
        **spec,
        "min_queries": min_queries,
        "max_duration_s": max(spec["max_duration_s"], 1.25 * min_queries / rate + 1.0),
    }


#: A Server trial lasts at least this many latency bounds (see server_min_duration_s).
SERVER_TRIAL_BOUNDS = 10


def server_min_duration_s(latency_bound_ms: float) -> float:
    """The shortest Server trial that can call an unsustainable rate INVALID.

    Arrivals a share ``e`` above what the SUT sustains build a queue whose wait grows as
    ``e * t``; the p90 fails once the last tenth of the queries waits beyond the bound
    ``B``, i.e. when the trial lasts ``T > B / (0.9 e)``. Ten bounds catch e >= 11 %, finer
    than the search's resolution (12.5 % with 3 bisection steps); a shorter trial passes a
    burst that no steady load could keep (at 0.3 s and a 100 ms bound, 37 % above the SUT's
    throughput).
    """
    return SERVER_TRIAL_BOUNDS * latency_bound_ms / 1e3


def server_trial_spec(spec: dict[str, Any], rate: float, min_queries: int) -> dict[str, Any]:
    """A Server run at ``rate`` that lasts long enough to expose an overload and can issue
    ``min_queries`` before its time cap."""
    lasting = max(spec["min_duration_s"], server_min_duration_s(spec["latency_bound_ms"]))
    spec = {**spec, "min_duration_s": lasting}
    spec["max_duration_s"] = max(spec["max_duration_s"], lasting)
    return {**with_min_queries(spec, min_queries, rate), "target_qps": rate}


#: The Server search's cap on rates tried, and on runs of one rate (see queries_short).
SERVER_MAX_TRIALS = 24
SERVER_ATTEMPTS = 3


def find_peak_server_rate(
    trial: Callable[[float], dict[str, Any]],
    start_qps: float,
    steps: int,
    max_trials: int = SERVER_MAX_TRIALS,
    min_qps: float = 0.0,
) -> dict[str, Any]:
    """The highest Server rate LoadGen calls VALID, found by a search that widens its own
    bounds: from ``start_qps`` it doubles while VALID (halves while INVALID, not below
    ``min_qps``) until it has a VALID rate below an INVALID one, then bisects ``steps`` times.
    The answer is always a rate that was run and VALID, with a tested INVALID rate above it:
    never a preset bound. ``peak_qps`` is None (with ``reason``) when no bracket was found.
    """
    if start_qps <= 0:
        raise ValueError(f"start_qps must be > 0, got {start_qps}")
    trials: list[dict[str, Any]] = []

    def valid(rate: float) -> bool:
        result = trial(rate)
        trials.append({"target_qps": rate, **result})
        return result["validity"] == "VALID"

    low: float | None = None
    high: float | None = None
    rate = start_qps
    while len(trials) < max_trials and (low is None or high is None):
        if valid(rate):
            low = rate
            rate = rate * 2 if high is None else rate
        else:
            high = rate
            rate = rate / 2 if low is None else rate
            if low is None and rate < min_qps:
                return {
                    "peak_qps": None,
                    "bracket": [None, high],
                    "trials": trials,
                    "reason": f"INVALID at every rate tried, down to {high:.3g} q/s",
                }
    if low is None or high is None:
        side = "VALID" if high is None else "INVALID"
        return {
            "peak_qps": None,
            "bracket": [low, high],
            "trials": trials,
            "reason": f"every rate tried was {side} within {max_trials} trials",
        }
    for _ in range(steps):
        if len(trials) >= max_trials:
            break
        mid = (low + high) / 2
        if valid(mid):
            low = mid
        else:
            high = mid
    return {"peak_qps": low, "bracket": [low, high], "trials": trials, "reason": None}
