"""PyTorch's facts: a state_dict loaded into the manifest's architecture."""

from __future__ import annotations

from collections.abc import Mapping

from reproscope.runtime.runners.facts import FrameworkFacts


def cpu_only(pins: Mapping[str, str]) -> str | None:
    if pins.get("torch", "").endswith("+cpu"):
        return f"it pins torch=={pins['torch']}, a CPU-only build"
    return None


FACTS = FrameworkFacts(
    format="pytorch-state-dict",
    suffix="pt",
    distributions=("torch",),
    recorded=("torch",),
    cpu_only=cpu_only,
)
