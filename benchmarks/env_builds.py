"""Reproducibility of environment builds: each environment built twice from its lock.

Builds every named environment (default: both ONNX Runtime environments and torch) twice,
each time in a fresh temporary directory, with the same code as the build_env rule
(reproscope.acquire.envs.build), and prints per environment: the identity (lock_sha256) each build
records, whether the two installed sets (name==version) are identical, a digest of every
installed file under site-packages with its hash (from the RECORDs), and each build's wall
time.
Exits 1 when any pair differs.

    python benchmarks/env_builds.py [ENV ...]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reproscope.acquire.envfile import read_env_file
from reproscope.acquire.envs import build, record
from reproscope.acquire.lockfile import installed

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["onnxruntime-1.30", "onnxruntime-1.23", "torch-2.13"]
_RECORDS = (
    "import hashlib, sys; from importlib import metadata\n"
    "h, n = hashlib.sha256(), 0\n"
    "for d in sorted(metadata.distributions(), key=lambda d: d.metadata['Name'].lower()):\n"
    "    for line in d.read_text('RECORD').splitlines():\n"
    "        if not line.startswith('../'):\n"
    "            h.update(line.encode() + b'\\n'); n += 1\n"
    "print(h.hexdigest(), n)"
)


def records_digest(python: str) -> tuple[str, int]:
    """A digest of every installed file under site-packages, with its hash, from the RECORDs.

    Launcher scripts in bin/ (RECORD paths starting '../') are left out: their shebang names
    the prefix, so they differ between two directories by construction.
    """
    out = subprocess.run([python, "-I", "-c", _RECORDS], check=True, capture_output=True, text=True)
    digest, count = out.stdout.split()
    return digest, int(count)


def build_once(name: str, root: Path) -> dict:
    env = read_env_file(name, REPO / "envs" / f"{name}.yaml")
    start = time.perf_counter()
    built = build(env, root / "prefix", io.StringIO())
    seconds = time.perf_counter() - start
    return {
        "lock_sha256": record(env, built)["lock_sha256"],
        "installed": installed(built["python"])[1],
        "records": records_digest(built["python"]),
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("envs", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    failed = False
    columns = "same_lock same_set same_files  n_pkgs n_files  build1_s build2_s"
    print(f"{'env':<18} {'lock_sha256':<12}  {columns}")
    for name in args.envs:
        runs = []
        for _ in range(2):
            with tempfile.TemporaryDirectory(prefix=f"envbuild-{name}-") as tmp:
                runs.append(build_once(name, Path(tmp)))
        a, b = runs
        same = (
            a["lock_sha256"] == b["lock_sha256"],
            a["installed"] == b["installed"],
            a["records"] == b["records"],
        )
        failed |= not all(same)
        print(
            f"{name:<18} {a['lock_sha256'][:12]}  {same[0]!s:<9} {same[1]!s:<8} {same[2]!s:<10}"
            f"  {len(a['installed']):>6} {a['records'][1]:>7}  {a['seconds']:>8.1f}"
            f" {b['seconds']:>8.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
