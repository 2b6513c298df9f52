"""Style gates as tests: snakemake --lint, snakefmt --check and ruff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config", ["config/config.yaml", "config/smoke.yaml"])
def test_snakemake_lint(config: str) -> None:
    result = run(sys.executable, "-m", "snakemake", "--lint", "--configfile", config)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Congratulations" in output, output[-3000:]


@pytest.mark.parametrize("tool", ["snakefmt", "ruff"])
def test_formatters(tool: str) -> None:
    # The venv's own tool, never one that happens to be on PATH.
    path = Path(sys.executable).parent / tool
    if not path.is_file():
        pytest.fail(f"{tool} is not installed beside {sys.executable}: `make setup` installs it")
    if tool == "snakefmt":
        result = run(str(path), "--check", ".")
    else:
        result = run(str(path), "check", "src", "scripts", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
