"""The timing processes' memory policy (reproscope.runtime.memory): its variables, the re-execution
that puts them in force, and what a result records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reproscope.runtime import memory

SRC = str(Path(memory.__file__).parents[1])


def test_environment_sets_and_removes_only_its_own_variables() -> None:
    base = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    on = memory.environment(True, base)
    assert on["PATH"] == "/bin"
    assert on["THP_MEM_ALLOC_ENABLE"] == "1"
    assert on["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    off = memory.environment(False, on)
    assert off == base  # the user's own tunable survives both ways
    assert memory.environment(False, {"PATH": "/bin"}) == {"PATH": "/bin"}
    assert memory.environment(True, on) == on


PROBE = """
import json, os, sys
from reproscope.runtime import memory
print("started", flush=True)
memory.apply(sys.argv[1] == "on")
print(json.dumps(memory.describe(sys.argv[1] == "on")))
"""


def run_probe(policy: str, extra: dict[str, str]) -> tuple[int, dict]:
    env = {**os.environ, "PYTHONPATH": SRC, **extra}
    env.pop("REPROSCOPE_MEMORY_APPLIED", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, policy], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return out.count("started"), json.loads(out[-1])


def test_apply_re_executes_once_with_the_variables_in_force() -> None:
    starts, described = run_probe("on", {})
    assert starts == 2  # once as launched, once re-executed with the variables
    assert described["huge_pages"] is True
    assert described["env"] == memory.HUGE_PAGES_ENV
    assert described["thp_mode"] in {"always", "madvise", "never", None}


def test_apply_does_nothing_when_the_variables_already_hold() -> None:
    starts, described = run_probe("off", {})
    assert starts == 1
    assert described["env"] == {"GLIBC_TUNABLES": None, "THP_MEM_ALLOC_ENABLE": None}
    starts, described = run_probe("off", {"THP_MEM_ALLOC_ENABLE": "1"})
    assert starts == 2 and described["env"]["THP_MEM_ALLOC_ENABLE"] is None
