"""ONNX Runtime's facts: an ONNX file, run by the CPU build or by onnxruntime-gpu."""

from __future__ import annotations

from collections.abc import Mapping

from reproscope.runtime.runners.facts import FrameworkFacts


def cpu_only(pins: Mapping[str, str]) -> str | None:
    if "onnxruntime" in pins and "onnxruntime-gpu" not in pins:
        return "it pins onnxruntime, the CPU-only build (CUDA needs onnxruntime-gpu)"
    return None


FACTS = FrameworkFacts(
    format="onnx",
    suffix="onnx",
    distributions=("onnxruntime", "onnxruntime-gpu"),
    recorded=("onnxruntime", "onnxruntime-gpu", "onnx"),
    cpu_only=cpu_only,
    import_names={"onnxruntime-gpu": ("onnxruntime",)},
)
