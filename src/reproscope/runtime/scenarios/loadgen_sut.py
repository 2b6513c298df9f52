"""The QSL and the SUT through which MLPerf LoadGen drives a runner: a sample library over
the preprocessed tensors and a SUT around any runner of :mod:`reproscope.runtime.runners`.

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
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from reproscope.runtime.cache import Cache
from reproscope.runtime.tensorize import finish


@dataclass
class ServerPolicy:
    """How the Server SUT uses the machine: worker threads and dynamic batching."""

    workers: int = 1
    max_batch: int = 1
    max_wait_ms: float = 0.0


class CachedSamples:
    """The dataset's input tensors, read from its uint8 cache on demand: ``samples[indices]``
    is those images put through the per-pixel stages, in the order asked (what a QSL load
    makes resident); ``len(samples)`` is the dataset size."""

    def __init__(self, cache: Cache, tensor: dict[str, Any]) -> None:
        self.cache, self.tensor = cache, tensor

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, indices: list[int]) -> np.ndarray:
        wanted = sorted(set(indices))
        runs: list[np.ndarray] = []
        start = 0
        for k in range(1, len(wanted) + 1):  # contiguous runs of indices, one read each
            if k == len(wanted) or wanted[k] != wanted[k - 1] + 1:
                runs.append(self.cache.pixels(wanted[start], wanted[k - 1] + 1))
                start = k
        if not runs:
            return finish(self.cache.pixels(0, 0), self.tensor)
        rows = finish(np.concatenate(runs), self.tensor)
        where = {index: k for k, index in enumerate(wanted)}
        return rows[[where[i] for i in indices]]


class SampleLibrary:
    """The QSL over ``inputs`` (an array, or :class:`CachedSamples`): sample ``i`` is row
    ``i``; LoadGen chooses which ``performance_count`` samples are resident (load/unload)
    and the SUT only reads resident ones."""

    def __init__(self, inputs: Any, performance_count: int | None = None) -> None:
        self.inputs = inputs
        self.total = len(inputs)
        self.performance_count = min(performance_count or self.total, self.total)
        self.resident: dict[int, np.ndarray] = {}
        # Unloaded rows kept (up to performance_count) for the next test of this library:
        # every Server trial loads the same seeded set, which took ~0.5 s to make each time.
        self.spare: dict[int, np.ndarray] = {}
        self.loads: list[list[int]] = []

    def load(self, indices: list[int]) -> None:
        self.loads.append(list(indices))
        wanted = [i for i in dict.fromkeys(indices) if i not in self.resident]  # may repeat
        missing = [i for i in wanted if i not in self.spare]
        made = self.inputs[missing] if missing else []
        for i, row in zip(missing, made, strict=True):
            self.spare[i] = np.ascontiguousarray(row)
        for i in wanted:
            self.resident[i] = self.spare.pop(i)

    def unload(self, indices: list[int]) -> None:
        for i in indices:
            row = self.resident.pop(i, None)
            if row is not None and len(self.spare) < self.performance_count:
                self.spare[i] = row

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
        if not self.keep_outputs:
            responses = [respond(s.id, 0, 0) for s in samples]
        start = time.perf_counter_ns()
        try:
            batch = self.library.batch([s.index for s in samples])
            start = time.perf_counter_ns()
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
