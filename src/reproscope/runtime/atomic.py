"""Files that appear whole or not at all: written beside their target, then moved onto it."""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"
#: A write that fails for want of room: the disk or quota is full, or RLIMIT_FSIZE was hit.
NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class NoRoom(OSError):
    """A file could not be written whole for want of room; nothing was left in its place."""


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; moved onto ``target`` when the block
    ends normally, removed when it raises. It keeps the target's suffix, which some writers
    (Keras, matplotlib) go by, and the process id, so that two writers never share it;
    temporaries of the same target left by dead processes (a killed job) are removed.
    A write that runs out of room raises NoRoom, which says so and names the target."""
    target = Path(target)
    tmp = target.with_name(f"{TMP_PREFIX}{os.getpid()}-{target.name}")
    _remove_dead_temporaries(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        raise NoRoom(
            exc.errno,
            f"{target}: not written: {exc.strerror} (the disk or quota is full, or a file-size "
            f"limit was reached); nothing was left in its place. Fix: free space on "
            f"{target.parent} (or raise the limit) and run again",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _remove_dead_temporaries(target: Path) -> None:
    for tmp in target.parent.glob(f"{TMP_PREFIX}*-{glob.escape(target.name)}"):
        pid = tmp.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if (
            pid.isdigit()
            and tmp.name == f"{TMP_PREFIX}{pid}-{target.name}"
            and not _alive(int(pid))
        ):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


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
