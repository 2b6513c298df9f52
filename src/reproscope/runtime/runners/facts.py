"""What the workflow side knows about a framework without importing it: each framework's
folder (runners/<name>/facts.py) states these; its runner.py is what imports the framework."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: Why an environment's pins (normalised distribution -> version) are a CPU-only build.
CpuOnly = Callable[[Mapping[str, str]], str | None]


@dataclass(frozen=True)
class FrameworkFacts:
    format: str  # the artifact format the runner loads (a manifest's source.format)
    suffix: str  # the file suffix of such an artifact
    # The distributions whose pinned version is the framework's version (the first pinned).
    distributions: tuple[str, ...]
    # The distributions whose versions a result's fingerprint records.
    recorded: tuple[str, ...]
    cpu_only: CpuOnly
    # Distribution -> the import names it provides, where they differ from its name.
    import_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
