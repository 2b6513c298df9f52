"""Build an environment from its committed lock and record its identity (the lock's sha256).

One mechanism per run: with Snakemake's conda deployment (`--sdm conda`), Snakemake builds the
environment from the pin file and the post-deploy script that `python -m reproscope.acquire.lock`
writes, and nothing is built here; otherwise a virtualenv is built here from the lock alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from reproscope.acquire.envfile import EnvFile
from reproscope.acquire.lockfile import (
    LOCK_COMMAND,
    Lock,
    LockError,
    check_usable,
    differences,
    installed,
    lock_path,
    read_lock,
    verify,
)
from reproscope.runtime.atomic import remove_tree

HOST = "host"
MECHANISMS = ("venv", "conda")


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


def build(env: EnvFile, prefix: Path, log: Any, mechanism: str = "venv") -> dict[str, Any]:
    """Make (or, for host and conda, check) the environment; return how, with its lock."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism {mechanism!r} is not one of {MECHANISMS}")
    lock = read_lock(lock_path(env.path))
    check_usable(lock)
    if env.name == HOST:
        _, packages = installed(sys.executable)
        differ = differences(lock, packages, allow_extra=frozenset(packages))
        log.write(f"host environment: the current interpreter {sys.executable}, nothing built\n")
        for line in differ:
            log.write(f"warning: {line} ({lock.path}); `make test` installs the lock in .venv\n")
        return {"method": "host", "python": sys.executable, "lock": lock, "host_differs": differ}
    if mechanism == "conda":
        log.write(
            f"{env.name}: Snakemake's conda deployment builds it from the pin file and "
            f"{env.path.stem}.post-deploy.sh (which installs and verifies {lock.path})\n"
        )
        return {"method": "conda", "python": None, "lock": lock}
    if prefix.exists() or prefix.is_symlink():
        remove_tree(prefix)  # never through a link out of results/
    log.write(f"building {env.name} as a virtualenv from {lock.path} alone\n")
    _run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], log)
    python = str(env_python(prefix, env.name))
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-input"]
    try:
        _run([*install, "--require-hashes", "--no-deps", "-r", str(lock.path)], log)
    except subprocess.CalledProcessError as exc:
        raise LockError(_install_failure(lock, exc.stdout or "")) from None
    verify(lock, python)
    log.write(f"{env.name}: the installed set is the lock's ({len(lock.packages)} packages)\n")
    return {"method": "venv", "python": python, "lock": lock}


def _run(cmd: list[str], log: Any) -> None:
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(done.stdout)
    done.check_returncode()


_MISMATCH = re.compile(
    r"^\s+(\S+==\S+) from \S+.*:\n\s+Expected sha256 (\w+)\n\s+Got\s+(\w+)", re.M
)


def _install_failure(lock: Lock, output: str) -> str:
    """pip's failure, led by the packages whose archive does not match the lock."""
    found = [
        f"{pkg}: the lock says sha256 {want}, the archive pip fetched has {got}"
        for pkg, want, got in _MISMATCH.findall(output)
    ]
    head = f"building from {lock.path} failed"
    if found:
        return (
            f"{head}: archive hashes differ from the lock:\n  "
            + "\n  ".join(found)
            + f"\nthe lock is wrong or the archive changed; if the pins changed on purpose, "
            f"regenerate the lock with `{LOCK_COMMAND}`"
        )
    tail = "\n".join(output.strip().splitlines()[-15:])
    return f"{head}; pip said:\n{tail}"


def record(env: EnvFile, built: dict[str, Any]) -> dict[str, Any]:
    """results/envs/<env>/lock.json: the environment's identity is lock_sha256."""
    lock: Lock = built["lock"]
    python_version = installed(built["python"])[0] if built["python"] else None
    out = {
        "environment": env.name,
        "file": str(env.path),
        "lock": str(lock.path),
        "lock_sha256": lock.sha256,
        "target": lock.target,
        "method": built["method"],
        "python_version": python_version,
        "packages": {
            name: {"version": version, "sha256": sha}
            for name, (version, sha) in sorted(lock.packages.items())
        },
    }
    if "host_differs" in built:
        out["host_differs"] = built["host_differs"]
    return out
