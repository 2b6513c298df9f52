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
    """A lock that cannot be used, or an environment that differs from its lock. A lock
    read_lock refuses also carries the field (a line, or '(document)'), problem and fix."""

    def __init__(
        self, message: str, field: str = "(document)", problem: str = "", fix: str = ""
    ) -> None:
        super().__init__(message)
        self.field, self.problem, self.fix = field, problem or message, fix or LOCK_FIX


LOCK_FIX = f"regenerate the lock with `{LOCK_COMMAND}` (a lock is only ever written by it)"


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


MAX_LOCK_BYTES = 4_000_000
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
VERSION = r"[0-9][A-Za-z0-9.+!_-]*"  # PEP 440 (with a local part); no '#', ';', '@', '$', space
HASH = r"--hash=sha256:(?P<sha>[0-9a-f]{64})"
REQUIREMENT = re.compile(rf"(?P<name>{NAME})==(?P<version>{VERSION})(?: {HASH})?(?P<cont> \\)?")
HASH_LINE = re.compile(rf"    {HASH}")
# pip decodes a requirements file by the coding cookie of its first lines (PEP 263): a
# cookie could make pip read other text than this reader; any mention is refused.
COOKIE = re.compile(r"coding[:=]|fileencoding", re.IGNORECASE)


def _lock_problem(path: Path, number: int, line: str, problem: str) -> LockError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    problem = f"{shown!r} {problem}"
    return LockError(f"{path}: line {number} {problem}. Fix: {LOCK_FIX}", f"line {number}", problem)


def _document_problem(path: Path, problem: str) -> LockError:
    return LockError(f"{path}: {problem}. Fix: {LOCK_FIX}", "(document)", problem)


def read_lock(path: str | Path) -> Lock:
    """The lock, read exactly as `pip install --require-hashes -r` reads it, or refused.

    The grammar is what `render` writes and nothing else: printable ASCII lines, comments
    that start a line and never end in a backslash (pip does not join a comment with the
    next line), one `name==version` per package with exactly one `--hash=sha256:` on the
    same line or on one continuation line, no pip options (`-e`, `--index-url`, `-r`, ...),
    no URLs, markers, extras, environment variables or coding cookies; and the text must be
    byte for byte what `render` makes of what was read."""
    path = Path(path)
    if not path.is_file():
        raise LockError(f"{path}: no such lock; write it with `{LOCK_COMMAND}`")
    with path.open("rb") as f:
        raw = f.read(MAX_LOCK_BYTES + 1)
    if len(raw) > MAX_LOCK_BYTES:
        raise _document_problem(path, f"over {MAX_LOCK_BYTES} bytes, not a lock")
    packages: dict[str, tuple[str, str]] = {}
    sources: dict[str, str] = {}
    target = ""
    pending: tuple[int, str, str, str] | None = None  # (line, name, version, raw) awaiting a hash
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        raise _lock_problem(
            path,
            len(lines),
            lines[-1].decode("ascii", "replace") if lines else "",
            "is not ended by a newline",
        )
    for number, data in enumerate(lines, 1):
        bad = next((b for b in data if not 0x20 <= b <= 0x7E), None)
        if bad is not None:
            shown = data.decode("ascii", "backslashreplace")
            what = "a carriage return" if bad == 0x0D else f"the byte 0x{bad:02x}"
            raise _lock_problem(
                path, number, shown, f"holds {what}; a lock is printable ASCII with LF line ends"
            )
        line = data.decode("ascii")
        if COOKIE.search(line):
            raise _lock_problem(
                path,
                number,
                line,
                "looks like a coding cookie, which would make pip decode the file otherwise",
            )
        if "${" in line:
            raise _lock_problem(
                path, number, line, "holds '${', which pip expands from the environment"
            )
        if pending is not None:
            m = HASH_LINE.fullmatch(line)
            if not m and HASH_LINE.fullmatch(line.removesuffix(" \\")):
                raise _lock_problem(
                    path, number, line, "continues to a second --hash: a lock holds one per package"
                )
            if not m:
                raise _lock_problem(
                    path,
                    number,
                    line,
                    "follows a line ending in '\\' but is not '    --hash=sha256:<hex>'",
                )
            _add(path, packages, pending, m["sha"])
            pending = None
            continue
        if not line:
            continue
        if line.startswith("#"):
            if line.endswith("\\"):
                raise _lock_problem(
                    path,
                    number,
                    line,
                    "is a comment ending in '\\': pip does not join it with the next line, "
                    "an older reader did",
                )
            if m := SOURCE.fullmatch(line):
                sources[m["path"]] = m["sha"]
            elif m := TARGET.fullmatch(line):
                target = m["target"]
            continue
        if line.startswith("-"):
            raise _lock_problem(
                path, number, line, "is a pip option (-e, --index-url, -r, ...), never in a lock"
            )
        m = REQUIREMENT.fullmatch(line)
        if not m or (m["sha"] is None) == (m["cont"] is None):
            raise _lock_problem(path, number, line, "is not 'name==version --hash=sha256:<hex>'")
        entry = (number, m["name"], m["version"], line)
        if m["sha"] is None:
            pending = entry
        else:
            _add(path, packages, entry, m["sha"])
    if pending is not None:
        raise _lock_problem(path, pending[0], pending[3], "ends in '\\' with no hash after it")
    if not packages or not target:
        raise _document_problem(path, "no packages or no '# target:' line")
    lock = Lock(path=path, packages=packages, sources=sources, target=target)
    if raw.decode("ascii") != render(packages, sources, target):
        raise _document_problem(
            path,
            f"not in the form `{LOCK_COMMAND}` writes (comments, order, layout or names "
            "differ), so pip could read it otherwise",
        )
    return lock


def _add(
    path: Path, packages: dict[str, tuple[str, str]], entry: tuple[int, str, str, str], sha: str
) -> None:
    number, name, version, line = entry
    key = normalise(name)
    if key in packages:
        raise _lock_problem(path, number, line, f"locks {key!r} a second time")
    packages[key] = (version, sha)


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


# Run inside the environment: every top-level entry of its site-packages with the
# distribution whose RECORD lists it (None: no metadata owns it), and which are .pth files.
_OWNERS = r"""
import json, re, sys, sysconfig
from importlib import metadata
from pathlib import Path
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
sites = sorted({Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")})
owner, entries = {}, []
for site in sites:
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if not name:
            continue
        info = Path(str(dist._path)).name if hasattr(dist, "_path") else None
        if info:
            owner[(str(site), info)] = norm(name)
        for f in dist.files or []:
            parts = Path(str(f)).parts
            if parts and parts[0] not in ("..", "/") and not Path(str(f)).is_absolute():
                owner.setdefault((str(site), parts[0]), norm(name))
        if dist.files is None:  # no RECORD (an installer's own, e.g. from conda)
            for top in (dist.read_text("top_level.txt") or "").split():
                owner.setdefault((str(site), top), norm(name))
    if site.is_dir():
        for entry in sorted(site.iterdir()):
            if entry.name == "__pycache__":
                continue
            entries.append([str(entry), entry.suffix == ".pth", owner.get((str(site), entry.name))])
print(json.dumps(entries))
"""


def site_entries(python: str | Path) -> list[tuple[str, bool, str | None]]:
    """Each top-level entry of the interpreter's site-packages: (path, is a .pth file, the
    normalised name of the distribution whose RECORD lists it, or None)."""
    out = subprocess.run(
        [str(python), "-I", "-c", _OWNERS], check=True, capture_output=True, text=True
    ).stdout
    return [(path, bool(pth), owner) for path, pth, owner in json.loads(out)]


def unowned(
    lock: Lock, entries: list[tuple[str, bool, str | None]], allow_extra: frozenset[str]
) -> list[str]:
    """Files and folders of site-packages no locked distribution brought: a .pth file (it
    runs at every start of the interpreter) not in a locked (or installer) distribution's
    RECORD, and any module or folder no distribution's metadata lists."""
    allowed = set(lock.packages) | allow_extra
    found = []
    for path, pth, owner in entries:
        if owner is None:
            kind = ".pth file" if pth else "file or folder"
            found.append(f"{path}: a {kind} that no installed distribution's RECORD lists")
        elif pth and owner not in allowed:
            found.append(f"{path}: a .pth file of {owner}, which is not in the lock")
    return found


def verify(lock: Lock, python: str | Path, allow_extra: frozenset[str] = frozenset()) -> None:
    """Fail, naming each package or file, unless the interpreter's installed set is the
    lock's: the same distributions and versions, and nothing in site-packages (a .pth file,
    a package without metadata) that no locked distribution's RECORD lists."""
    _, packages = installed(python)
    wrong = differences(lock, packages, allow_extra)
    wrong += unowned(lock, site_entries(python), allow_extra)
    if wrong:
        raise LockError(
            f"the environment of {python} differs from {lock.path}:\n  "
            + "\n  ".join(wrong)
            + f"\nFix: rebuild it from the lock, or regenerate the lock with `{LOCK_COMMAND}`"
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m reproscope.acquire.lockfile verify LOCK [PYTHON]`: the post-deploy check;
    `... read LOCK`: is the lock readable, current and for this platform (before pip reads it)."""
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m reproscope.acquire.lockfile {read LOCK | verify LOCK [PYTHON]}"
    if not (args[:1] == ["read"] and len(args) == 2) and not (
        args[:1] == ["verify"] and len(args) in (2, 3)
    ):
        print(usage, file=sys.stderr)
        return 2
    try:
        lock = read_lock(args[1])
        check_usable(lock)
        if args[0] == "verify":
            verify(lock, args[2] if len(args) == 3 else sys.executable, INSTALLERS)
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args[0] == "read":
        print(f"{lock.path}: {len(lock.packages)} packages, read as pip reads them")
    else:
        print(f"{lock.path}: the environment matches the lock ({len(lock.packages)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
