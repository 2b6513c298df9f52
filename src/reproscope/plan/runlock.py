"""Stale Snakemake locks: tell a killed run's locks from a live run's.

Snakemake locks a working directory with files under ``.snakemake/locks/`` that name no
process, and removes them when it exits; a run killed by SIGKILL, the OOM killer or a lost
node leaves them behind, and every later run refuses with ``LockException`` until
``--unlock``. So each main Snakemake process of this workflow (not its jobs' processes)
also holds a shared ``flock`` on ``.snakemake/reproscope-run.lock`` for as long as it
lives, taken when the Snakefile loads, before Snakemake writes its locks. The kernel
releases a flock when its process dies, however it dies. A process that can take the flock
exclusively is the only run alive in the directory: any lock files present were left by a
dead run, and it removes them and says so in one line. Otherwise another run is alive, the
lock files stay, and Snakemake refuses as it always has when the runs' files overlap.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import TextIO

SNAKEMAKE_DIR = Path(".snakemake")
RUN_LOCK = SNAKEMAKE_DIR / "reproscope-run.lock"
SNAKEMAKE_LOCKS = SNAKEMAKE_DIR / "locks"

_held: list[int] = []  # this process's descriptor on RUN_LOCK (a flock lives with it)


def claim_run(root: str | os.PathLike[str] = ".", out: TextIO = sys.stderr) -> list[Path]:
    """Hold the run lock under ``root`` (the working directory) for this process's life;
    remove Snakemake's lock files when no other run is alive. Returns those removed."""
    if _held:
        return []
    path = Path(root) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not inherited by the jobs this process starts (O_CLOEXEC is Python's default), so a
    # job that outlives a killed run does not keep the run alive.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    _held.append(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another run of this directory is alive: its locks stand
        fcntl.flock(fd, fcntl.LOCK_SH)
        return []
    locks = sorted(p for p in (Path(root) / SNAKEMAKE_LOCKS).glob("*.lock") if p.is_file())
    for lock in locks:
        lock.unlink(missing_ok=True)
    fcntl.flock(fd, fcntl.LOCK_SH)  # from here on, other runs may start beside this one
    if locks:
        print(
            f"reproscope: removed {len(locks)} stale Snakemake lock file(s) in "
            f"{Path(root) / SNAKEMAKE_LOCKS}: the run that made them is no longer alive "
            f"(killed, or its node lost), so no --unlock is needed",
            file=out,
            flush=True,
        )
    return locks
