"""Files that appear whole or not at all: written beside their target, then moved onto it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; moved onto ``target`` when the block
    ends normally, removed when it raises. It keeps the target's suffix, which some writers
    (Keras) insist on, and the process id, so that two writers never share it."""
    target = Path(target)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: str | Path, text: str) -> None:
    with replacing(target) as tmp:
        tmp.write_text(text)
