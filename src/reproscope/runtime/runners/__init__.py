"""One runner per framework, imported lazily so each environment needs only its own."""

from __future__ import annotations

import importlib

from reproscope.runtime.runners.base import DeviceUnavailable, Runner

RUNNER_MODULES = {
    "pytorch": "reproscope.runtime.runners.torch_runner",
    "onnxruntime": "reproscope.runtime.runners.onnx_runner",
    "tensorflow": "reproscope.runtime.runners.tf_runner",
}


def make_runner(framework: str) -> Runner:
    module = importlib.import_module(RUNNER_MODULES[framework])
    return module.make()


__all__ = ["DeviceUnavailable", "Runner", "make_runner"]
