"""How a job is started: ``python -m <module> <job JSON>``, whoever starts it.

The workflow's shell rules run shell() (Snakemake fills the interpreter, the job and the
log); a timing round (reproscope.runtime.rounds) and the greedy diagnosis
(reproscope.report.greedy) run inference jobs with run_inference(). The package comes
from $REPROSCOPE_SRC, which the workflow sets to its checkout's src/.
Env-side: standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

INFER = "reproscope.runtime.infer"
ROUNDS = "reproscope.runtime.rounds"
CONVERT = "reproscope.runtime.convert.main"
RANDOM_INIT = "reproscope.runtime.random_init"

SRC_VARIABLE = "REPROSCOPE_SRC"


def command(python: str, module: str, job: str) -> list[str]:
    """The command that runs one job (its JSON, or a file holding it) in an interpreter."""
    return [python, "-m", module, job]


def shell(module: str, job: str = "{params.job:q}") -> str:
    """A shell rule's command: command() with Snakemake's params.python and job, the
    package on PYTHONPATH, and everything the job prints in the rule's log."""
    run = " ".join(command("{params.python}", module, job))
    return f'PYTHONPATH="${SRC_VARIABLE}" {run} > {{log}} 2>&1'


def interpreter(python: str) -> str:
    """A python as the workflow names it (the host's by a quoted variable, never by an
    absolute path), as a path to run."""
    return os.path.expandvars(python.strip('"'))


def run_inference(
    python: str, job: dict[str, Any], src: str, log: IO[str], check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run one inference job to its end, with src on PYTHONPATH and its output in log."""
    return subprocess.run(
        command(interpreter(python), INFER, json.dumps(job)),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": src},
        check=check,
    )


def job_argument(argv: list[str], module: str) -> str | None:
    """The JSON text of a launched module's one argument (inline JSON or a file holding it);
    None, after printing the usage, when there is not exactly one."""
    if len(argv) != 2:
        print(f"usage: python -m {module} JOB.json|'{{...}}'", file=sys.stderr)
        return None
    return argv[1] if argv[1].lstrip().startswith("{") else Path(argv[1]).read_text()
