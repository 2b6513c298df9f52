"""Environment locks: written by one command, built from alone, checked against the build."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from reproscope.acquire import lock as lock_command
from reproscope.acquire.envfile import read_env_file
from reproscope.acquire.envs import HOST, build, record
from reproscope.acquire.lockfile import (
    LockError,
    check_usable,
    current_target,
    differences,
    installed,
    lock_path,
    read_lock,
    render,
)
from reproscope.runtime.digests import sha256_file

REPO = Path(__file__).resolve().parents[1]
# Two small pure-Python wheels from the tensorflow lock: quick to fetch, cached after the first.
TINY_PINS = ("six==1.17.0", "namex==0.1.0")


def _tiny_env(root: Path, pins: tuple[str, ...] = TINY_PINS) -> Path:
    envs = root / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    path = envs / "tiny.yaml"
    lines = "".join(f"      - {p}\n" for p in pins)
    path.write_text(f"name: tiny\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n{lines}")
    return path


@pytest.fixture(scope="module")
def tiny_locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny environment file with the lock that `python -m reproscope.acquire.lock` writes."""
    root = tmp_path_factory.mktemp("tiny")
    path = _tiny_env(root)
    assert (
        lock_command.main(["--envs", str(path.parent), "--pyproject", str(REPO / "pyproject.toml")])
        == 0
    )
    return path


def test_lock_lists_every_package_with_hash_and_target(tiny_locked: Path) -> None:
    lock = read_lock(lock_path(tiny_locked))
    assert {n: v for n, (v, _) in lock.packages.items()} == {"six": "1.17.0", "namex": "0.1.0"}
    assert all(len(sha) == 64 for _, sha in lock.packages.values())
    assert lock.target == current_target()
    assert lock.sources == {"tiny.yaml": sha256_file(tiny_locked)}
    deploy = tiny_locked.with_name("tiny.post-deploy.sh").read_text()
    assert "--require-hashes --no-deps -r" in deploy and lock.sha256 in deploy


def test_build_twice_gives_the_lock_and_identical_sets(tiny_locked: Path, tmp_path: Path) -> None:
    env = read_env_file("tiny", tiny_locked)
    sets, identities = [], []
    for n in (1, 2):
        built = build(env, tmp_path / f"prefix{n}", io.StringIO())
        rec = record(env, built)
        identities.append(rec["lock_sha256"])
        sets.append(installed(built["python"])[1])
    assert identities[0] == identities[1] == sha256_file(lock_path(tiny_locked))
    assert sets[0] == sets[1] == {"six": "1.17.0", "namex": "0.1.0"}


def test_changed_sha256_fails_naming_the_package(tiny_locked: Path, tmp_path: Path) -> None:
    path = _tiny_env(tmp_path)
    good = lock_path(tiny_locked).read_text().replace(sha256_file(tiny_locked), sha256_file(path))
    sha = read_lock(lock_path(tiny_locked)).packages["namex"][1]
    lock_path(path).write_text(good.replace(sha, "0" * 64))
    with pytest.raises(LockError, match=r"namex==0\.1\.0: the lock says sha256 0{64}"):
        build(read_env_file("tiny", path), tmp_path / "prefix", io.StringIO())


def test_installed_set_differing_from_lock_is_named(tiny_locked: Path) -> None:
    lock = read_lock(lock_path(tiny_locked))
    assert differences(lock, {"six": "1.17.0", "namex": "0.1.0"}) == []
    wrong = differences(lock, {"six": "1.16.0", "extra": "1"})
    assert wrong == [
        "namex==0.1.0 is locked but not installed",
        "six is 1.16.0, the lock says 1.17.0",
        "extra==1 is installed but not in the lock",
    ]


def test_stale_or_foreign_lock_is_refused(tmp_path: Path) -> None:
    path = _tiny_env(tmp_path)
    packages = {"six": ("1.17.0", "a" * 64)}
    lock_path(path).write_text(render(packages, {"tiny.yaml": "b" * 64}, current_target()))
    stale = r"tiny\.yaml changed .*`python -m reproscope\.acquire\.lock tiny`"
    with pytest.raises(LockError, match=stale):
        check_usable(read_lock(lock_path(path)))
    lock_path(path).write_text(
        render(packages, {"tiny.yaml": sha256_file(path)}, "win32-arm64 cpython-3.9")
    )
    with pytest.raises(LockError, match="locked for win32-arm64 cpython-3.9"):
        check_usable(read_lock(lock_path(path)))
    lock_path(path).write_text("six>=1\n")
    with pytest.raises(LockError, match="line 1 'six>=1' is not"):
        read_lock(lock_path(path))
    lock_path(path).unlink()
    with pytest.raises(LockError, match="no such lock"):
        build(read_env_file("tiny", path), tmp_path / "prefix", io.StringIO())


def test_committed_locks_are_current() -> None:
    """Every envs/*.yaml has its lock, made from the file (and pyproject) as committed."""
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for path in envs:
        env = read_env_file(path.stem, path)
        assert lock_command.check(env, REPO / "pyproject.toml") == [], path
        if path.stem != HOST:
            assert path.with_name(f"{path.stem}.post-deploy.sh").is_file()


def test_host_is_the_interpreter_identified_by_its_lock() -> None:
    env = read_env_file(HOST, REPO / "envs" / "host.yaml")
    log = io.StringIO()
    rec = record(env, build(env, Path("unused"), log))
    assert rec["method"] == "host" and rec["lock_sha256"] == sha256_file(
        REPO / "envs" / "host.lock.txt"
    )
    assert rec["python_version"] == sys.version.split()[0]
    assert isinstance(rec["host_differs"], list)
    assert json.loads(json.dumps(rec)) == rec
