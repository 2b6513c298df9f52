"""ONNX Runtime runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from reproscope.runners.base import DeviceUnavailable

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRunner:
    framework = "onnxruntime"

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self.options = ort.SessionOptions()

    def load(self, artifact: Path, job: dict[str, Any]) -> None:
        provider = PROVIDERS[job["device"]]
        if provider not in ort.get_available_providers():
            raise DeviceUnavailable(f"{provider} not in {ort.get_available_providers()}")
        self.options.intra_op_num_threads = job["threads"]
        self.options.inter_op_num_threads = 1
        self.options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = (
            [provider] if provider == "CPUExecutionProvider" else [provider, PROVIDERS["cpu"]]
        )
        self.session = ort.InferenceSession(str(artifact), self.options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self.session is not None
        # run() copies outputs to host memory, which synchronises the device.
        return self.session.run(None, {self.input_name: batch})[0]

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
