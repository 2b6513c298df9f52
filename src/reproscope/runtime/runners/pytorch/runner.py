"""PyTorch runner: a state_dict loaded with weights_only into the manifest's architecture."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reproscope.runtime.entrypoints import build_architecture
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.peak import gemm_operand
from reproscope.runtime.runners.base import DeviceUnavailable, stage_ms


class TorchRunner:
    framework = "pytorch"

    def __init__(self) -> None:
        self.device = "cpu"
        self.model: torch.nn.Module | None = None
        self.weights_only = True

    def load(self, artifact: Path, job: InferenceJob) -> None:
        torch.set_num_threads(job.threads)
        if torch.get_num_interop_threads() != 1:  # settable once per process (a group reloads)
            torch.set_num_interop_threads(1)
        self.device = job.device
        if self.device == "cuda" and not torch.cuda.is_available():
            raise DeviceUnavailable("torch.cuda.is_available() is False")
        self.weights_only = not job.unsafe_pickle
        model = build_architecture(job.architecture)  # checked before anything is loaded
        state = torch.load(artifact, map_location="cpu", weights_only=self.weights_only)
        model.load_state_dict(state, strict=True)
        self.model = model.eval().to(self.device)
        placed = {p.device.type for p in self.model.parameters()}
        if placed != {self.device}:
            raise DeviceUnavailable(f"model parameters are on {sorted(placed)}, not {self.device}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            y = self.model(x)
            if self.device == "cuda":
                torch.cuda.synchronize()
            return y.float().cpu().numpy()

    def run_stages(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """run() split into host-to-device copy, compute and device-to-host copy (ms)."""
        assert self.model is not None
        sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)
        with torch.inference_mode():
            t0 = time.perf_counter_ns()
            x = torch.from_numpy(batch).to(self.device)
            sync()
            t1 = time.perf_counter_ns()
            y = self.model(x)
            sync()
            t2 = time.perf_counter_ns()
            out = y.float().cpu().numpy()
            t3 = time.perf_counter_ns()
        return out, stage_ms(t0, t1, t2, t3, self.device)

    def gemm(self) -> tuple[Callable[[], Any], str]:
        a = torch.from_numpy(gemm_operand()).to(self.device)
        sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)

        def product() -> None:
            torch.mm(a, a)
            sync()

        return product, f"torch.mm {torch.__version__} {self.device}"

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "framework_version": torch.__version__,
            "api": "python eager (torch.inference_mode)",
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "weights_only": self.weights_only,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cuda_version": torch.version.cuda,
        }
        if self.device == "cuda":
            info["cudnn_version"] = torch.backends.cudnn.version()
            info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        return info


def make() -> TorchRunner:
    return TorchRunner()
