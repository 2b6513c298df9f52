"""Build pinned environments (conda/mamba when present, else a virtualenv) and lock them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from reproscope.envfile import EnvFile, normalise
from reproscope.fetch import sha256_file

HOST = "host"


def conda_tool() -> str | None:
    """mamba or conda on PATH, preferring mamba."""
    for tool in ("mamba", "conda"):
        if shutil.which(tool):
            return tool
    return None


def env_python(prefix: Path, env_name: str) -> Path:
    if env_name == HOST:
        return Path(sys.executable)
    return prefix / "bin" / "python"


def build(env: EnvFile, prefix: Path, log: Any) -> dict[str, Any]:
    """Create the environment at prefix; return how it was built."""
    if env.name == HOST:
        log.write("host environment: the current interpreter, nothing to build\n")
        return {"method": "host", "python": sys.executable}
    if prefix.exists():
        shutil.rmtree(prefix)
    tool = conda_tool()
    if tool:
        log.write(f"building {env.name} with {tool} from {env.path}\n")
        _run([tool, "env", "create", "--yes", "-p", str(prefix), "-f", str(env.path)], log)
        return {"method": tool, "python": str(prefix / "bin" / "python")}
    log.write(
        "conda/mamba not found: building a virtualenv from the pip section of "
        f"{env.path} with {sys.executable} (Python {sys.version.split()[0]}; the file asks "
        f"for python {env.python or 'unspecified'})\n"
    )
    if env.python and not sys.version.startswith(env.python):
        log.write(f"warning: Python {sys.version.split()[0]} does not match {env.python}\n")
    _run([sys.executable, "-m", "venv", str(prefix)], log)
    python = str(prefix / "bin" / "python")
    report = prefix / "pip-report.json"
    _run(
        [python, "-m", "pip", "install", "--no-input", "--report", str(report), *env.requirements],
        log,
    )
    return {"method": "venv", "python": python, "pip_report": str(report)}


def _run(cmd: list[str], log: Any) -> None:
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)


def lock(env: EnvFile, built: dict[str, Any]) -> dict[str, Any]:
    """Exact resolved versions of every distribution, with archive hashes where pip knows them."""
    python = built["python"]
    listing = json.loads(
        subprocess.run(
            [python, "-c", _LIST_DISTRIBUTIONS], check=True, capture_output=True, text=True
        ).stdout
    )
    installed = dict(sorted(listing["packages"].items()))
    hashes = _report_hashes(Path(built["pip_report"])) if built.get("pip_report") else {}
    missing = [
        f"{d}=={v}"
        for d, v in env.pins.items()
        if installed.get(d) != v and installed.get(d, "").split("+")[0] != v.split("+")[0]
    ]
    return {
        "environment": env.name,
        "file": str(env.path),
        "file_sha256": sha256_file(env.path),
        "method": built["method"],
        "python_version": listing["python"],
        "packages": {d: {"version": v, "sha256": hashes.get(d)} for d, v in installed.items()},
        "pins_unsatisfied": missing,
    }


def _report_hashes(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text())
    hashes = {}
    for item in data.get("install", []):
        name = normalise(item["metadata"]["name"])
        archive = item.get("download_info", {}).get("archive_info", {})
        sha = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").partition("=")[2]
        if sha:
            hashes[name] = sha
    return hashes


_LIST_DISTRIBUTIONS = (
    "import json, re, sys; from importlib import metadata; "
    "print(json.dumps({'python': sys.version.split()[0], 'packages': "
    "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
    "for d in metadata.distributions() if d.metadata['Name']}}))"
)
