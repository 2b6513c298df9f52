"""Environment locks: envs/<name>.lock.txt in pip's --require-hashes format.

Standard library only: the post-deploy check of a conda environment runs this module
inside the new environment, before anything else is installed there.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from reproscope.runtime.digests import sha256_file

HEADER = (
    "# reproscope environment lock, written by `python -m reproscope.acquire.lock`; do not edit."
)
LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)\s+--hash=sha256:(?P<sha>[0-9a-f]{64})$"
)
SOURCE = re.compile(r"^# source: (?P<path>\S+) sha256=(?P<sha>[0-9a-f]{64})$")
TARGET = re.compile(r"^# target: (?P<target>.+)$")
LOCK_COMMAND = "python -m reproscope.acquire.lock"
# What a fresh environment holds besides its lock: the installer (conda's python brings
# setuptools and wheel) and, in .venv, this project itself.
INSTALLERS = frozenset({"pip", "setuptools", "wheel", "reproscope"})


class LockError(ValueError):
    """A lock that cannot be used, or an environment that differs from its lock."""


@dataclass(frozen=True)
class Lock:
    path: Path
    packages: dict[str, tuple[str, str]]  # normalised name -> (version, sha256)
    sources: dict[str, str]  # file name (relative to the lock's folder) -> sha256
    target: str

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)


def normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def lock_path(env_file: Path) -> Path:
    """envs/<name>.yaml -> envs/<name>.lock.txt"""
    return env_file.with_name(env_file.stem + ".lock.txt")


def current_target() -> str:
    """The platform and Python a lock is valid for (wheels are chosen for it)."""
    return (
        f"{sys.platform}-{platform.machine()} cpython-{sys.version_info[0]}.{sys.version_info[1]}"
    )


def render(packages: dict[str, tuple[str, str]], sources: dict[str, str], target: str) -> str:
    lines = [HEADER]
    lines += [f"# source: {name} sha256={sha}" for name, sha in sorted(sources.items())]
    lines.append(f"# target: {target}")
    for name in sorted(packages):
        version, sha = packages[name]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{sha}")
    return "\n".join(lines) + "\n"


def read_lock(path: str | Path) -> Lock:
    path = Path(path)
    if not path.is_file():
        raise LockError(f"{path}: no such lock; write it with `{LOCK_COMMAND}`")
    text = path.read_text().replace("\\\n", " ")
    packages: dict[str, tuple[str, str]] = {}
    sources: dict[str, str] = {}
    target = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if m := SOURCE.match(line):
                sources[m["path"]] = m["sha"]
            elif m := TARGET.match(line):
                target = m["target"]
            continue
        m = LINE.match(re.sub(r"\s+", " ", line))
        if not m:
            raise LockError(
                f"{path}: line {number} {line[:80]!r} is not 'name==version --hash=sha256:<hex>'; "
                f"regenerate the lock with `{LOCK_COMMAND}`"
            )
        packages[normalise(m["name"])] = (m["version"], m["sha"])
    if not packages or not target:
        raise LockError(
            f"{path}: no packages or no '# target:' line; regenerate it with `{LOCK_COMMAND}`"
        )
    return Lock(path=path, packages=packages, sources=sources, target=target)


def check_usable(lock: Lock) -> None:
    """The lock was made from its sources as they are now, for this platform and Python."""
    for name, sha in lock.sources.items():
        source = lock.path.parent / name
        if source.is_file() and sha256_file(source) != sha:
            env_name = lock.path.name.removesuffix(".lock.txt")
            raise LockError(
                f"{lock.path}: {source} changed since the lock was written; "
                f"regenerate the lock with `{LOCK_COMMAND} {env_name}`"
            )
    if lock.target != current_target():
        raise LockError(
            f"{lock.path}: locked for {lock.target}, this machine is {current_target()}; "
            f"build on a {lock.target} machine or regenerate the lock here with `{LOCK_COMMAND}`"
        )


_LIST = (
    "import json, sys; from importlib import metadata; "
    "print(json.dumps({'python': sys.version.split()[0], 'packages': "
    "{d.metadata['Name']: d.version for d in metadata.distributions() if d.metadata['Name']}}))"
)


def installed(python: str | Path) -> tuple[str, dict[str, str]]:
    """The Python version and every distribution (normalised name -> version) of an interpreter."""
    out = subprocess.run(
        [str(python), "-I", "-c", _LIST], check=True, capture_output=True, text=True
    ).stdout
    data = json.loads(out)
    return data["python"], {normalise(k): v for k, v in sorted(data["packages"].items())}


def differences(
    lock: Lock, packages: dict[str, str], allow_extra: frozenset[str] = frozenset()
) -> list[str]:
    """How an installed set differs from the lock, one line per package (empty: identical)."""
    found = []
    for name, (version, _) in sorted(lock.packages.items()):
        have = packages.get(name)
        if have is None:
            found.append(f"{name}=={version} is locked but not installed")
        elif have != version:
            found.append(f"{name} is {have}, the lock says {version}")
    for name in sorted(set(packages) - set(lock.packages) - allow_extra):
        found.append(f"{name}=={packages[name]} is installed but not in the lock")
    return found


def verify(lock: Lock, python: str | Path, allow_extra: frozenset[str] = frozenset()) -> None:
    """Fail, naming each package, unless the interpreter's installed set is the lock's."""
    _, packages = installed(python)
    wrong = differences(lock, packages, allow_extra)
    if wrong:
        raise LockError(
            f"the environment of {python} differs from {lock.path}:\n  "
            + "\n  ".join(wrong)
            + f"\nrebuild it from the lock, or regenerate the lock with `{LOCK_COMMAND}`"
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m reproscope.acquire.lockfile verify LOCK [PYTHON]`: the post-deploy check."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] != "verify":
        print("usage: python -m reproscope.acquire.lockfile verify LOCK [PYTHON]", file=sys.stderr)
        return 2
    lock = read_lock(args[1])
    try:
        check_usable(lock)
        verify(lock, args[2] if len(args) == 3 else sys.executable, INSTALLERS)
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{lock.path}: the environment matches the lock ({len(lock.packages)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
