"""The runner interface: load an artifact on a device, run one batch, synchronise."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist on this system; reported, not a crash."""


class Runner(Protocol):
    framework: str

    def load(self, artifact: Path, job: dict[str, Any]) -> None:
        """Load the artifact on job['device'] with job['threads'] CPU threads."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch and return host logits; device work is finished on return."""

    def info(self) -> dict[str, Any]:
        """Framework versions and every setting that can change speed or results."""


def resolve_entry_point(entry_point: str) -> Any:
    """'module:attr.attr' -> the object; only the manifest's documented entry point."""
    module_name, _, attr_path = entry_point.partition(":")
    obj: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    return obj
