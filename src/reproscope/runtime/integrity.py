"""Cached inputs checked against the digest recorded when they were made.

A model artifact and an environment's lock record get a sidecar ``<file>.sha256`` (the
``sha256sum`` format) from the step that made them; a preprocessing cache records its
chunks' digests in ``cache.json`` (reproscope.runtime.cache checks each chunk as it reads it).
A file whose bytes no longer match (bit rot, a stray write) stops the job with
``Damaged``: the file, both digests and the command that makes it again.
Env-side: standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from reproscope.runtime.atomic import write_text
from reproscope.runtime.digests import env_identity, sha256_file

SIDECAR_SUFFIX = ".sha256"


class Damaged(RuntimeError):
    """A cached input differs from the digest recorded when it was made."""

    def __init__(self, path: str | os.PathLike[str], expected: str, actual: str, fix: str) -> None:
        self.path, self.expected, self.actual = str(path), expected, actual
        super().__init__(
            f"{path}: field 'sha256': the file's sha256 is {actual} but {expected} was "
            f"recorded when it was made: it is damaged or was changed since, and was not "
            f"used. Fix: {fix}"
        )


def rebuild_fix(
    target: str | os.PathLike[str], remove: str | os.PathLike[str] | None = None
) -> str:
    """How to make ``target`` (a rule's output) again: force its rule, or delete it."""
    return (
        f"make it again with `snakemake --forcerun {target}` (or delete {remove or target} "
        f"and run the study again)"
    )


def sidecar(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def record(path: str | os.PathLike[str]) -> str:
    """Write ``path``'s sha256 beside it (``<path>.sha256``); return the digest."""
    digest = sha256_file(path)
    write_text(sidecar(path), f"{digest}  {Path(path).name}\n")
    return digest


def recorded(path: str | os.PathLike[str]) -> str:
    """The digest recorded for ``path``; 'none recorded' when its sidecar is absent."""
    try:
        return sidecar(path).read_text().split(maxsplit=1)[0]
    except (FileNotFoundError, IndexError):
        return f"none recorded ({sidecar(path)} is absent)"


def verified_sha256(path: str | os.PathLike[str]) -> str:
    """``path``'s sha256, after checking it against the digest recorded when it was made
    (Damaged when they differ or none was recorded)."""
    actual, expected = sha256_file(path), recorded(path)
    if actual != expected:
        raise Damaged(path, expected, actual, rebuild_fix(path))
    return actual


def verified_env_identity(lock_json: str | os.PathLike[str]) -> str | None:
    """``env_identity`` of a lock record whose bytes match the digest its build recorded;
    None when the environment was not built (no lock record)."""
    if not Path(lock_json).is_file():
        return None
    verified_sha256(lock_json)
    return env_identity(lock_json)
