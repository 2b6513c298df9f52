"""Digests that identify what a job read: a file's sha256, an environment's lock identity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the lowercase hex sha256 of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def env_identity(lock_json: str | os.PathLike[str]) -> str | None:
    """An environment's identity, from the results/envs/<env>/lock.json its build wrote:
    the sha256 of the committed lock it was built from (None when not built)."""
    path = Path(lock_json)
    return json.loads(path.read_text())["lock_sha256"] if path.is_file() else None
