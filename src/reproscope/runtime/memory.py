"""Where a measured process's large buffers live: on transparent huge pages, or wherever the
allocator puts them. A study states it (``study.huge_pages``); every timing job records it.

Why it is a stated choice: with the kernel's THP mode ``madvise`` (the common default),
whether a buffer is backed by huge pages depends on where the allocator happened to place
it, so a fresh process's speed was a coin toss. Measured on a 2-core VM, EfficientNet-Lite0
in PyTorch 2.13, 2 threads, one process after another: batch 1 ran 19.5-21.3 ms per process
without the advice and 15.7-17.1 ms with it; batch 8 ran 136-180 ms and 101-119 ms (TensorFlow
and ONNX Runtime, which keep their own arenas, moved by under 3 %). At 1 thread, batch 1,
one inference took 4,693 minor page faults without the advice and none with it (28 ms and
20 ms per inference).

Both variables must be in place before the process starts (glibc reads its tunables at
load time), so :func:`apply` re-executes the process once when they are not.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

#: glibc (2.35 and later) advises its heap and mmap'd chunks onto huge pages; PyTorch's CPU
#: allocator gives tensors of 2 MB and more 2 MB-aligned, advised blocks.
HUGE_PAGES_ENV = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "THP_MEM_ALLOC_ENABLE": "1"}
_REEXECUTED = "REPROSCOPE_MEMORY_APPLIED"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _tunables(value: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in value.split(":") if item)
    return {name: setting for name, _, setting in pairs}


def environment(huge_pages: bool, base: dict[str, str]) -> dict[str, str]:
    """``base`` with the memory policy's variables set (or removed), other tunables kept."""
    ours = _tunables(HUGE_PAGES_ENV["GLIBC_TUNABLES"])
    tunables = {k: v for k, v in _tunables(base.get("GLIBC_TUNABLES", "")).items() if k not in ours}
    env = {k: v for k, v in base.items() if k not in HUGE_PAGES_ENV}
    if huge_pages:
        tunables.update(ours)
        env["THP_MEM_ALLOC_ENABLE"] = HUGE_PAGES_ENV["THP_MEM_ALLOC_ENABLE"]
    if tunables:
        env["GLIBC_TUNABLES"] = ":".join(f"{k}={v}" for k, v in tunables.items())
    return env


def apply(huge_pages: bool) -> None:
    """Make this process run under the policy: re-execute it (same interpreter, same
    arguments) with the variables set, unless they already are. Call it first thing, before
    any framework is imported."""
    wanted = environment(huge_pages, dict(os.environ))
    if wanted == dict(os.environ) or os.environ.get(_REEXECUTED):
        return
    wanted[_REEXECUTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], wanted)


def thp_mode() -> str | None:
    """The kernel's THP mode (``always``, ``madvise`` or ``never``), None where unknown."""
    try:
        text = THP_SETTING.read_text()
    except OSError:
        return None
    chosen = [word.strip("[]") for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else None


def describe(huge_pages: bool) -> dict[str, Any]:
    """What a result records: the policy, what the kernel does with it, and the variables
    in force. The advice has no effect under THP ``never`` or glibc before 2.35."""
    libc, version = platform.libc_ver()
    return {
        "huge_pages": huge_pages,
        "thp_mode": thp_mode(),
        "libc": f"{libc} {version}".strip() or None,
        "env": {name: os.environ.get(name) for name in HUGE_PAGES_ENV},
    }
