"""Environment locks: written by one command, built from alone, checked against the build."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reproscope.acquire import lock as lock_command
from reproscope.acquire.envfile import read_env_file
from reproscope.acquire.envs import HOST, build, record
from reproscope.acquire.lockfile import (
    Lock,
    LockError,
    check_usable,
    current_target,
    differences,
    installed,
    lock_path,
    normalise,
    read_lock,
    render,
    site_entries,
    unowned,
    verify,
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


# ---- issue 25: a lock is read exactly as pip reads it, or refused; the installed set
# includes .pth files and folders without metadata


def _pip_reads(path: Path) -> dict[str, tuple[str, list[str]]]:
    """What pip itself takes from a requirements file: name -> (specifier, sha256 list)."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    read = {}
    for req in parse_requirements(str(path), session=PipSession()):
        name, _, version = req.requirement.partition("==")
        read[normalise(name)] = (version.strip(), req.options.get("hashes", {}).get("sha256", []))
    return read


@pytest.mark.parametrize("path", sorted((REPO / "envs").glob("*.lock.txt")), ids=lambda p: p.name)
def test_committed_locks_read_as_pip_reads_them(path: Path) -> None:
    lock = read_lock(path)
    assert _pip_reads(path) == {n: (v, [sha]) for n, (v, sha) in lock.packages.items()}


def test_the_old_reader_and_pip_disagreed_on_corpus_locks() -> None:
    """Why the refusals matter: pip installs a line that a comment ending in '\\' hid from
    the old reader, and reads a second hash, a blank continuation, ${VAR} and a trailing
    comment otherwise than the committed lock they were copied from."""
    bad = REPO / "tests" / "bad_inputs" / "lock"
    base = _pip_reads(REPO / "envs" / "onnxruntime-1.30.lock.txt")
    assert any(n.startswith("evil") for n in _pip_reads(bad / "lock-comment-continuation.lock.txt"))
    for case in ("two-hashes", "blank-after-continuation", "env-var", "marker"):
        assert _pip_reads(bad / f"lock-{case}.lock.txt") != base, case
    for path in sorted(bad.glob("*.lock.txt")):
        with pytest.raises(LockError):
            read_lock(path)


def _valid_lock(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "tiny.lock.txt"
    text = render({"six": ("1.17.0", "a" * 64)}, {}, current_target())
    path.write_text(text)
    return path, text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"# caf\xfc\n", r"line 2 .* the byte 0xfc"),  # Latin-1 in a comment
        (b"six==1.17.0 --hash=sha256:" + b"b" * 64 + b"\r\n", "line 2 .*a carriage return"),
        (b"\t--hash=sha256:" + b"b" * 64 + b"\n", r"line 2 .*the byte 0x09"),
        (b"\xef\xbb\xbf# BOM\n", r"line 2 .*the byte 0xef"),
    ],
)
def test_lock_bytes_pip_could_read_otherwise_are_refused(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path, text = _valid_lock(tmp_path)
    lines = text.encode().split(b"\n")
    path.write_bytes(lines[0] + b"\n" + data + b"\n".join(lines[1:]))
    with pytest.raises(LockError, match=expected) as info:
        read_lock(path)
    assert str(info.value).startswith(f"{path}: line 2 ") and "Fix: regenerate" in str(info.value)


def test_lock_without_a_final_newline_is_refused(tmp_path: Path) -> None:
    path, text = _valid_lock(tmp_path)
    path.write_text(text.rstrip("\n"))
    with pytest.raises(LockError, match=r"line 4 .*not ended by a newline"):
        read_lock(path)


def test_latin1_lock_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """lockfile read/verify (post-deploy), lock --check and build (build_env)."""
    env_path = _tiny_env(tmp_path)
    lock = lock_path(env_path)
    good = render(
        {"six": ("1.17.0", "a" * 64)}, {"tiny.yaml": sha256_file(env_path)}, current_target()
    )
    lock.write_bytes(good.replace("# target", "# caf\xfc\n# target").encode("latin-1"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for command in (
        [sys.executable, "-m", "reproscope.acquire.lockfile", "read", str(lock)],
        [sys.executable, "-m", "reproscope.acquire.lockfile", "verify", str(lock)],
        [
            sys.executable,
            "-m",
            "reproscope.acquire.lock",
            "--check",
            "--envs",
            str(env_path.parent),
            "--pyproject",
            str(REPO / "pyproject.toml"),
        ],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "0xfc" in done.stderr, done.stderr
        assert str(lock) in done.stderr and "line 3" in done.stderr
    with pytest.raises(LockError, match="line 3"):
        build(read_env_file("tiny", env_path), tmp_path / "prefix", io.StringIO())
    assert not (tmp_path / "prefix").exists()  # refused before anything was built


def test_lock_check_fails_on_a_tampered_lock(tmp_path: Path) -> None:
    env_path = _tiny_env(tmp_path, ("six==1.17.0",))
    lock = lock_path(env_path)
    good = render(
        {"six": ("1.17.0", "a" * 64)}, {"tiny.yaml": sha256_file(env_path)}, current_target()
    )
    lock.write_text(good)
    args = ["--check", "--envs", str(env_path.parent), "--pyproject", str(REPO / "pyproject.toml")]
    assert lock_command.main(args) == 0
    hidden = f"evil @ file:///tmp/evil-1.0-py3-none-any.whl --hash=sha256:{'e' * 64}"
    lock.write_text(good.replace("# target", f"# note \\\n{hidden}\n# target"))
    assert lock_command.main(args) == 1
    lock.write_text(good.replace("# target", "# -*- coding: utf-7 -*-\n# target"))
    assert lock_command.main(args) == 1


def _fake_dist(site: Path, name: str, files: dict[str, str], record: bool = True) -> None:
    """A distribution as pip installs it: files, and a dist-info whose RECORD lists them."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    if record:
        listed = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in listed))


@pytest.fixture
def bare_venv(tmp_path: Path) -> tuple[Path, Path]:
    """(python, site-packages) of a fresh virtualenv without pip (no network)."""
    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    python = prefix / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    return python, site


def test_installed_set_includes_pth_files_and_folders_without_metadata(
    tmp_path: Path, bare_venv: tuple[Path, Path]
) -> None:
    python, site = bare_venv
    _fake_dist(site, "fake", {"fake/__init__.py": "", "fake-init.pth": "import fake\n"})
    lock = Lock(tmp_path / "x.lock.txt", {"fake": ("1.0", "a" * 64)}, {}, current_target())
    verify(lock, python)  # the locked distribution's own .pth (in its RECORD) is its own
    (site / "evil.pth").write_text("import os; os.system('true')\n")
    with pytest.raises(LockError, match=r"evil\.pth: a \.pth file that no installed"):
        verify(lock, python)
    (site / "evil.pth").unlink()
    (site / "hidden").mkdir()
    (site / "hidden" / "__init__.py").write_text("")
    with pytest.raises(LockError, match=r"hidden: a file or folder that no installed"):
        verify(lock, python)
    (site / "hidden" / "__init__.py").unlink()
    (site / "hidden").rmdir()
    # a variant that deletes its own metadata: its files stay, unlisted
    _fake_dist(site, "ghost", {"ghost/__init__.py": "", "ghost.pth": "import ghost\n"})
    for f in (site / "ghost-1.0.dist-info").iterdir():
        f.unlink()
    (site / "ghost-1.0.dist-info").rmdir()
    with pytest.raises(LockError) as info:
        verify(lock, python)
    assert "ghost.pth: a .pth file" in str(info.value) and "ghost: a file or folder" in str(
        info.value
    )


def test_a_pth_file_of_an_unlocked_distribution_is_named(
    tmp_path: Path, bare_venv: tuple[Path, Path]
) -> None:
    python, site = bare_venv
    _fake_dist(site, "fake", {"fake/__init__.py": ""})
    _fake_dist(site, "extra", {"extra.pth": "import os\n"})
    lock = Lock(tmp_path / "x.lock.txt", {"fake": ("1.0", "a" * 64)}, {}, current_target())
    entries = site_entries(python)
    assert (
        unowned(lock, entries, frozenset({"extra"}))
        == [f"{site / 'extra.pth'}: a .pth file of extra, which is not in the lock"]
        or unowned(lock, entries, frozenset()) != []
    )
    with pytest.raises(LockError, match="extra==1.0 is installed but not in the lock"):
        verify(lock, python)
