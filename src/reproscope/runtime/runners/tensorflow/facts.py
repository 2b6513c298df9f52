"""TensorFlow's facts: a .keras file, run by tensorflow (CUDA) or tensorflow-cpu."""

from __future__ import annotations

from collections.abc import Mapping

from reproscope.runtime.runners.facts import FrameworkFacts


def cpu_only(pins: Mapping[str, str]) -> str | None:
    if "tensorflow-cpu" in pins:
        return "it pins tensorflow-cpu (CUDA needs tensorflow[and-cuda])"
    return None


FACTS = FrameworkFacts(
    format="keras",
    suffix="keras",
    distributions=("tensorflow", "tensorflow-cpu"),
    recorded=("tensorflow", "tensorflow-cpu", "keras"),
    cpu_only=cpu_only,
    import_names={
        "tensorflow-cpu": ("tensorflow", "keras"),
        "tensorflow": ("tensorflow", "keras"),
    },
)
