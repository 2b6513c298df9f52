"""PyTorch runner: a state_dict loaded with weights_only into the manifest's architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from reproscope.runners.base import DeviceUnavailable, resolve_entry_point


class TorchRunner:
    framework = "pytorch"

    def __init__(self) -> None:
        self.device = "cpu"
        self.model: torch.nn.Module | None = None
        self.weights_only = True

    def load(self, artifact: Path, job: dict[str, Any]) -> None:
        torch.set_num_threads(job["threads"])
        torch.set_num_interop_threads(1)
        self.device = job["device"]
        if self.device == "cuda" and not torch.cuda.is_available():
            raise DeviceUnavailable("torch.cuda.is_available() is False")
        self.weights_only = not job.get("unsafe_pickle", False)
        state = torch.load(artifact, map_location="cpu", weights_only=self.weights_only)
        arch = job["architecture"]
        model = resolve_entry_point(arch["entry_point"])(*arch["args"], **arch["kwargs"])
        model.load_state_dict(state, strict=True)
        self.model = model.eval().to(self.device)

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self.model is not None
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            y = self.model(x)
            if self.device == "cuda":
                torch.cuda.synchronize()
            return y.float().cpu().numpy()

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
