"""One folder per framework, runners/<name>/: facts.py, which the workflow side reads
without importing the framework, and runner.py, imported lazily so that each
environment needs only its own framework. A framework is its folder and a line here."""

from __future__ import annotations

import importlib

from reproscope.runtime.runners.base import DeviceUnavailable, Runner
from reproscope.runtime.runners.facts import FrameworkFacts
from reproscope.runtime.runners.onnxruntime.facts import FACTS as ONNXRUNTIME
from reproscope.runtime.runners.pytorch.facts import FACTS as PYTORCH
from reproscope.runtime.runners.tensorflow.facts import FACTS as TENSORFLOW

#: A manifest's framework.name -> its facts. An environment that pins CPU-only builds of
#: several frameworks is refused for CUDA with the reason of the first in this order.
FRAMEWORKS: dict[str, FrameworkFacts] = {
    "onnxruntime": ONNXRUNTIME,
    "tensorflow": TENSORFLOW,
    "pytorch": PYTORCH,
}


def make_runner(framework: str) -> Runner:
    if framework not in FRAMEWORKS:
        raise KeyError(framework)
    return importlib.import_module(f"{__name__}.{framework}.runner").make()


__all__ = ["FRAMEWORKS", "DeviceUnavailable", "FrameworkFacts", "Runner", "make_runner"]
