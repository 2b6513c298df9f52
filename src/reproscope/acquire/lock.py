"""`python -m reproscope.acquire.lock [NAME ...]`: write every environment's lock, in one command.

For each envs/<name>.yaml it writes, beside it:
  <name>.lock.txt          every transitive pip package, exact version and archive sha256,
                           resolved by pip for this platform and Python (--require-hashes format)
  <name>.post-deploy.sh    what Snakemake's conda deployment runs in the new environment:
                           install the lock with --require-hashes --no-deps, then verify it
  <name>.<subdir>.pin.txt  Snakemake's conda pin file (conda's explicit list with sha256) of the
                           file's conda packages; only where conda or mamba is on PATH, else the
                           existing pin file is kept and the command says so.
The `host` environment (the interpreter itself) is locked from pyproject.toml's dependencies and
the `frameworks` and `dev` extras, plus host.yaml's pins: what `make` installs into .venv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from reproscope.acquire.envfile import EnvFile, read_env_file
from reproscope.acquire.envs import HOST, conda_tool
from reproscope.acquire.lockfile import (
    LOCK_COMMAND,
    LockError,
    current_target,
    lock_path,
    normalise,
    read_lock,
    render,
)
from reproscope.runtime.digests import sha256_file
from reproscope.yamlio import load_yaml

HOST_EXTRAS = ("frameworks", "dev")
PROJECT = "reproscope"


def host_requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *(r for e in HOST_EXTRAS for r in extras.get(e, []))]


def resolve(requirements: list[str]) -> dict[str, tuple[str, str]]:
    """pip's resolution of requirements for this interpreter: name -> (version, archive sha256)."""
    with tempfile.TemporaryDirectory(prefix="reproscope-lock-") as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--no-input",
                "--report",
                str(report),
                *requirements,
            ],
            check=True,
        )
        items = json.loads(report.read_text())["install"]
    packages: dict[str, tuple[str, str]] = {}
    for item in items:
        name, version = normalise(item["metadata"]["name"]), item["metadata"]["version"]
        if name == PROJECT:
            continue
        info = item["download_info"]
        archive = info.get("archive_info", {})
        sha = (
            archive.get("hashes", {}).get("sha256")
            or archive.get("hash", "").partition("sha256=")[2]
        )
        url = urlparse(info["url"])
        if not sha and url.scheme == "file" and Path(unquote(url.path)).is_file():
            sha = sha256_file(Path(unquote(url.path)))
        if not sha:
            raise LockError(
                f"pip resolved {name}=={version} from {info['url']}, which is not an archive "
                "with a sha256; pin a released version from an index or a wheel file"
            )
        packages[name] = (version, sha)
    return packages


def sources_of(env: EnvFile, pyproject: Path) -> dict[str, Path]:
    sources = {env.path.name: env.path}
    if env.name == HOST:
        sources[str(Path("..") / pyproject.name)] = pyproject
    return sources


def write_lock(env: EnvFile, pyproject: Path) -> Path:
    requirements = list(env.requirements)
    if env.name == HOST:
        requirements += host_requirements(pyproject)
    packages = resolve(requirements)
    shas = {name: sha256_file(path) for name, path in sources_of(env, pyproject).items()}
    out = lock_path(env.path)
    out.write_text(render(packages, shas, current_target()))
    return out


def write_post_deploy(env: EnvFile) -> Path:
    lock = lock_path(env.path)
    out = env.path.with_name(env.path.stem + ".post-deploy.sh")
    out.write_text(
        "#!/usr/bin/env bash\n"
        f"# Written by `{LOCK_COMMAND}`. Snakemake's conda deployment runs this inside the\n"
        f"# environment it built from {env.path.stem}.<platform>.pin.txt (conda packages),\n"
        "# from the workflow's directory: the lock is read as pip would read it (or refused)\n"
        "# before pip sees it, the pip packages come from the lock alone, then the installed\n"
        "# set (distributions, .pth files, folders without metadata) is compared with the lock.\n"
        f"# lock sha256={sha256_file(lock)}\n"
        "set -euo pipefail\n"
        f"PYTHONPATH=src python -m reproscope.acquire.lockfile read {lock.as_posix()}\n"
        "python -m pip install --no-input --require-hashes --no-deps -r "
        f"{lock.as_posix()}\n"
        f"PYTHONPATH=src python -m reproscope.acquire.lockfile verify {lock.as_posix()}\n"
    )
    return out


def conda_subdir(tool: str) -> str:
    info = json.loads(
        subprocess.run([tool, "info", "--json"], check=True, capture_output=True).stdout
    )
    return str(info["platform"])


def write_pin(env: EnvFile, tool: str) -> Path:
    """Snakemake's <env>.<subdir>.pin.txt: the explicit list of the file's conda packages."""
    data: dict[str, Any] = load_yaml(env.path)
    conda_deps = [d for d in data["dependencies"] if isinstance(d, str)]
    channels = [c for c in data.get("channels", []) if c != "nodefaults"]
    out = env.path.with_name(f"{env.path.stem}.{conda_subdir(tool)}.pin.txt")
    with tempfile.TemporaryDirectory(prefix="reproscope-pin-") as tmp:
        prefix = str(Path(tmp) / "env")
        channel_args = [a for c in channels for a in ("-c", c)]
        subprocess.run(
            [tool, "create", "--yes", "--quiet", "-p", prefix, "--override-channels", *channel_args]
            + conda_deps,
            check=True,
        )
        listing = _explicit_list(tool, prefix)
    out.write_text(listing)
    return out


def _explicit_list(tool: str, prefix: str) -> str:
    """conda's explicit list with sha256 (conda >= 24); md5 where the tool has no --sha256."""
    for digest in ("--sha256", "--md5"):
        done = subprocess.run(
            [tool, "list", "-p", prefix, "--explicit", digest], capture_output=True, text=True
        )
        if done.returncode == 0:
            if digest != "--sha256":
                print(f"warning: {tool} list has no --sha256: md5 in the pin", file=sys.stderr)
            return done.stdout
    raise LockError(f"`{tool} list --explicit` failed: {done.stderr.strip()}")


def check(env: EnvFile, pyproject: Path) -> list[str]:
    """Why env's lock is missing or stale (empty: up to date); no network."""
    try:
        lock = read_lock(lock_path(env.path))
    except LockError as exc:
        return [str(exc)]
    problems = []
    for name, path in sources_of(env, pyproject).items():
        if lock.sources.get(name) != sha256_file(path):
            problems.append(f"{lock.path}: {path} changed since the lock was written")
    missing = [
        f"{d}=={v}"
        for d, v in env.pins.items()
        if lock.packages.get(d, ("",))[0].split("+")[0] != v
    ]
    if missing:
        problems.append(f"{lock.path}: does not lock {', '.join(missing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=LOCK_COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="environment names (default: every envs/*.yaml)")
    parser.add_argument("--envs", type=Path, default=Path("envs"), help="folder of the files")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--check", action="store_true", help="only report missing or stale locks")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in args.envs.glob("*.yaml"))
    envs = [read_env_file(n, args.envs / f"{n}.yaml") for n in names]
    if args.check:
        problems = [p for env in envs for p in check(env, args.pyproject)]
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print(f"regenerate with `{LOCK_COMMAND}`", file=sys.stderr)
        return 1 if problems else 0
    tool = conda_tool()
    if tool is None:
        print(
            "conda/mamba not found: writing pip locks and post-deploy scripts only; existing "
            "*.pin.txt files are kept (rerun where conda exists to refresh them); without a pin "
            "file Snakemake's conda builds the conda part from the .yaml",
            file=sys.stderr,
        )
    for env in envs:
        written = [write_lock(env, args.pyproject)]
        if env.name != HOST:  # the interpreter itself: nothing to deploy
            written.append(write_post_deploy(env))
        if tool and env.name != HOST:
            written.append(write_pin(env, tool))
        print(f"{env.name}: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
