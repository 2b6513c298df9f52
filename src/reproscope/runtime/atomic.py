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


class LinkRefused(OSError):
    """A path to delete or overwrite goes through a symbolic link (out of results/)."""


def _link_on_the_way(path: Path) -> Path | None:
    """The first symbolic link among ``path`` and its parents below the ``results`` folder
    (or below its grandparent when it is not under one), or None."""
    path = Path(os.path.abspath(path))
    parts = path.parts
    anchor = max((i for i, p in enumerate(parts) if p == "results"), default=len(parts) - 3)
    for i in range(max(anchor, 0) + 1, len(parts) + 1):
        here = Path(*parts[:i])
        if here.is_symlink():
            return here
    return None


def check_no_link(path: str | Path) -> None:
    """Refuse (LinkRefused) to write or delete ``path`` when a symbolic link lies on the way
    to it inside results/: a results tree copied from elsewhere would otherwise have its
    targets' files deleted or overwritten."""
    link = _link_on_the_way(Path(path))
    if link is not None:
        raise LinkRefused(
            f"{link}: is a symbolic link (to {os.readlink(link)}); reproscope never deletes or "
            f"overwrites through links out of results/, so {path} was left alone. Fix: remove "
            f"the link (rm {link}) or replace it by a real folder, and run again"
        )


def remove_tree(path: str | Path) -> None:
    """shutil.rmtree(path) when it exists, refusing links on the way (``check_no_link``)."""
    import shutil

    check_no_link(path)
    if Path(path).is_dir():
        shutil.rmtree(path)
