"""A rule script's stderr, kept in its log as well as shown: Snakemake points a failed job at
its log, and a refusal (a stale result, a bad input) should read the same in both places."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from reproscope.errors import InputError, InputErrors


class _Tee:
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def log_stderr(log: str | Path) -> None:
    """From here on, everything written to stderr (tracebacks included) also goes to log."""
    sys.stderr = _Tee(sys.__stderr__, open(log, "w"))  # noqa: SIM115 (lives as long as the job)


@contextmanager
def refuse_cleanly(log: TextIO, *more: type[BaseException]) -> Iterator[None]:
    """A bad input (InputError, InputErrors, OSError from a refused link, and the error
    types given) ends the job with its message, in the log and on stderr, and exit
    status 1: no traceback, since the message names the file, the problem and the fix."""
    try:
        yield
    except (InputError, InputErrors, OSError, *more) as exc:
        message = f"reproscope: refused: {exc}"
        log.write(message + "\n")
        log.flush()
        print(message, file=sys.stderr)
        raise SystemExit(1) from None
