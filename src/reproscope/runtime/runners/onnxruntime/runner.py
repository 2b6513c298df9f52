"""ONNX Runtime runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.peak import gemm_operand, onnx_matmul_model
from reproscope.runtime.runners.base import DeviceUnavailable, stage_ms

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRunner:
    framework = "onnxruntime"

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self.options = ort.SessionOptions()
        self.device = "cpu"

    def load(self, artifact: Path, job: InferenceJob) -> None:
        self.device = job.device
        provider = PROVIDERS[self.device]
        if provider not in ort.get_available_providers():
            raise DeviceUnavailable(f"{provider} not in {ort.get_available_providers()}")
        self.options.intra_op_num_threads = job.threads
        self.options.inter_op_num_threads = 1
        self.options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = (
            [provider] if provider == "CPUExecutionProvider" else [provider, PROVIDERS["cpu"]]
        )
        self.session = ort.InferenceSession(str(artifact), self.options, providers=providers)
        # onnxruntime-gpu lists CUDA as available even without a GPU or CUDA libraries and
        # then quietly falls back to the CPU: only the session's own list tells.
        if provider not in self.session.get_providers():
            raise DeviceUnavailable(
                f"{provider} is not in use after loading (session providers "
                f"{self.session.get_providers()}; available {ort.get_available_providers()})"
            )
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self.session is not None
        # run() copies outputs to host memory, which synchronises the device.
        return self.session.run(None, {self.input_name: batch})[0]

    def run_stages(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """On CUDA, IO binding separates the copies from compute; on the CPU there are none."""
        assert self.session is not None
        if self.device == "cpu":
            t0 = time.perf_counter_ns()
            out = self.run(batch)
            t3 = time.perf_counter_ns()
            return out, stage_ms(t0, t0, t3, t3, "cpu")
        binding = self.session.io_binding()
        t0 = time.perf_counter_ns()
        value = ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0)
        t1 = time.perf_counter_ns()
        binding.bind_ortvalue_input(self.input_name, value)
        binding.bind_output(self.session.get_outputs()[0].name, "cuda")
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        t2 = time.perf_counter_ns()
        out = binding.copy_outputs_to_cpu()[0]
        t3 = time.perf_counter_ns()
        return out, stage_ms(t0, t1, t2, t3, "cuda")

    def gemm(self) -> tuple[Callable[[], Any], str]:
        assert self.session is not None
        session = ort.InferenceSession(
            onnx_matmul_model(), self.options, providers=self.session.get_providers()
        )
        feed = {"A": gemm_operand(), "B": gemm_operand()}
        how = f"onnxruntime MatMul session {ort.__version__} {session.get_providers()[0]}"
        return (lambda: session.run(None, feed)), how

    def info(self) -> dict[str, Any]:
        return {
            "framework_version": ort.__version__,
            "api": "python InferenceSession.run",
            "providers": self.session.get_providers() if self.session else [],
            "intra_op_threads": self.options.intra_op_num_threads,
            "inter_op_threads": self.options.inter_op_num_threads,
            "graph_optimization_level": str(self.options.graph_optimization_level),
            "execution_mode": str(self.options.execution_mode),
        }


def make() -> OnnxRunner:
    return OnnxRunner()
