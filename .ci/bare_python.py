"""A bare copy of this Python: its standard library and pip, none of its site-packages.

CI builds the project's venv from this copy, so no package that the machine's interpreter
happens to carry (numpy, PyYAML, pytest, ...) can stand in for one the set-up failed to
install. Usage: python3.11 .ci/bare_python.py DEST LOCK; prints DEST/bin/python3.X.
Exits non-zero, naming them, if the copy still has any of LOCK's packages.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

KEEP = re.compile(r"^(pip|pip-[^/]*\.dist-info)$")
SKIP_STDLIB = {"test", "idlelib", "site-packages", "__pycache__"}
LIST = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"
)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def copy_bare(dest: Path) -> Path:
    """The interpreter, its shared library and its standard library; from a prefix such as
    /usr only those, never the rest of it."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = base / "lib" / version
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "bin").mkdir(parents=True)
    (dest / "lib").mkdir()
    for item in (base / "bin").glob(f"{version}*"):
        shutil.copy2(item, dest / "bin" / item.name, follow_symlinks=True)
    for name in ("python3", "python"):
        (dest / "bin" / name).symlink_to(version)
    for item in (base / "lib").glob("libpython*"):
        shutil.copy2(item, dest / "lib" / item.name, follow_symlinks=False)
    if (base / "include" / version).is_dir():
        shutil.copytree(base / "include" / version, dest / "include" / version, symlinks=True)
    shutil.copytree(
        stdlib,
        dest / "lib" / version,
        symlinks=True,
        ignore=lambda d, names: [n for n in names if Path(d) == stdlib and n in SKIP_STDLIB],
    )
    site = dest / "lib" / version / "site-packages"
    site.mkdir()
    if (stdlib / "site-packages").is_dir():
        for item in (stdlib / "site-packages").iterdir():
            if KEEP.match(item.name):
                shutil.copytree(item, site / item.name, symlinks=True)
    return dest / "bin" / version


def main() -> int:
    dest, lock = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    locked = {
        normalise(m.group(1))
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.M)
    }
    here = {normalise(d.metadata["Name"]) for d in importlib.metadata.distributions()}
    carried = sorted(here & locked)
    print(
        f"{sys.executable} carries {len(carried)} of {lock}'s packages"
        + (f" ({', '.join(carried)})" if carried else "")
        + f": the venv is built from a bare copy in {dest}",
        file=sys.stderr,
    )
    python = copy_bare(dest)
    listed = subprocess.run(
        [str(python), "-I", "-c", LIST],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    left = sorted({normalise(n) for n in json.loads(listed)} & locked)
    if left:
        print(f"the bare interpreter {python} still has {', '.join(left)}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
