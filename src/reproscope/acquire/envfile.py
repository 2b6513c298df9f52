"""Pinned environment files: conda environment YAML whose pip section pins every package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reproscope.errors import InputError
from reproscope.runtime.runners import FRAMEWORKS
from reproscope.yamlio import load_yaml

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9.+!_-]+)$")
# Distributions whose import name is not their normalised distribution name.
IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    **{dist: names for facts in FRAMEWORKS.values() for dist, names in facts.import_names.items()},
    "opencv-python-headless": ("cv2",),
    "opencv-python": ("cv2",),
    "pillow": ("PIL",),
    "nvidia-ml-py": ("pynvml",),
    "pyyaml": ("yaml",),
}


@dataclass(frozen=True)
class EnvFile:
    """A parsed environment file."""

    name: str
    path: Path
    python: str | None
    pins: dict[str, str]  # normalised distribution name -> exact version
    requirements: tuple[str, ...]

    def import_names(self) -> set[str]:
        names: set[str] = set()
        for dist in self.pins:
            names.update(IMPORT_NAMES.get(dist, (dist.replace("-", "_"),)))
        return names

    def cpu_only(self) -> str | None:
        """Why the pins show a CPU-only build (CUDA jobs must not run here), else None."""
        for facts in FRAMEWORKS.values():
            reason = facts.cpu_only(self.pins)
            if reason:
                return reason
        return None

    def version_of(self, dist: str) -> str | None:
        return self.pins.get(normalise(dist))


def normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def read_env_file(name: str, path: str | Path) -> EnvFile:
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise InputError(
            path,
            "dependencies",
            "missing or not a list",
            "write a conda environment file with a 'dependencies' list",
        )
    python: str | None = None
    pip_lines: list[str] = []
    fields: list[str] = []  # the YAML path of each pip line, for messages
    for i, dep in enumerate(data["dependencies"]):
        if isinstance(dep, str) and dep.startswith("python"):
            python = dep.split("=", 1)[1].lstrip("=") if "=" in dep else None
        elif isinstance(dep, dict) and "pip" in dep:
            if not isinstance(dep["pip"], list):
                raise InputError(
                    path,
                    f"dependencies[{i}].pip",
                    "not a list",
                    "list one 'name==version' per line",
                )
            pip_lines.extend(str(x) for x in dep["pip"])
            fields.extend(f"dependencies[{i}].pip[{j}]" for j in range(len(dep["pip"])))
    if not pip_lines:
        raise InputError(
            path,
            "dependencies.pip",
            "no pip section",
            "add '- pip:' with exact pins such as 'numpy==2.4.6'",
        )
    pins: dict[str, str] = {}
    for field, line in zip(fields, pip_lines, strict=True):
        match = PIN.fullmatch(line.strip())
        if not match:
            raise InputError(
                path,
                field,
                f"{line!r} is not an exact pin",
                "pin every package as 'name==version' (e.g. 'torch==2.13.0')",
            )
        pins[normalise(match.group(1))] = match.group(3)
    return EnvFile(
        name=name,
        path=path,
        python=python,
        pins=pins,
        requirements=tuple(x.strip() for x in pip_lines),
    )
