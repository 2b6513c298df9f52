"""Manifests parsed and schema-checked before, kept by the sha256 of their bytes.

Planning a study reads every manifest, and parsing plus JSON Schema validation is most of
that (about 2 ms a manifest): re-planning a study of hundreds of models after one edit
re-reads only the edited one (benchmarks/scale_dag.py). An entry holds the checked data;
its key covers the manifest's bytes and the code and schema that checked them, so a change
to either is a miss. Only data that passed is kept: a refusal is always re-derived.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from reproscope.runtime.atomic import write_text

#: What decides whether bytes parse and pass the manifest schema.
CHECKING_CODE = (
    ("reproscope", "yamlio.py"),
    ("reproscope.plan", "schema.py"),
    ("reproscope.plan", "manifest.py"),
    ("reproscope.schemas", "manifest.schema.yaml"),
)


@cache
def checking_code_sha256() -> str:
    digest = hashlib.sha256()
    for package, name in CHECKING_CODE:
        digest.update(resources.files(package).joinpath(name).read_bytes())
    for distribution in ("jsonschema", "PyYAML"):
        digest.update(f"{distribution}=={metadata.version(distribution)}".encode())
    return digest.hexdigest()


class ParseCache:
    """Checked manifest data by content, in one folder (layout.parse_cache)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _entry(self, raw: bytes) -> Path:
        key = hashlib.sha256(checking_code_sha256().encode() + b"\0" + raw).hexdigest()
        return self.folder / f"{key}.json"

    def get(self, raw: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(self._entry(raw).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, raw: bytes, data: dict[str, Any]) -> None:
        entry = self._entry(raw)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_text(entry, json.dumps(data, sort_keys=True))
        except OSError:
            pass  # a cache that cannot be written costs time, never a result
