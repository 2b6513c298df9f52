"""Fault injection with real Snakemake runs of one tiny study, built once.

Kills: the workflow's process group gets SIGINT, SIGTERM or SIGKILL at a random (seeded)
moment of a run, and the same command is run again plainly (no --unlock): every final output
must then be byte-identical to the uninterrupted run's, except the fields that are timings.
Damage: one byte of a cache chunk, of a model artifact and of an environment's lock record
is changed (file times kept, as bit rot keeps them): the job that reads it stops with the
file, both digests and the command that rebuilds it. A full disk (RLIMIT_FSIZE): the
summary job stops with a clear error and leaves no partial table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reproscope.runtime import layout
from reproscope.runtime.digests import sha256_file
from tests import tinystudy
from tests.test_workflow import snakemake_command

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SEED = 31
TRIALS = 21  # 7 of each signal
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
#: Kill moments: every 4th trial while Snakemake starts (before it locks the directory),
#: the others while it runs jobs, up to this long after it locked it.
STARTING_S = 2.0
RUNNING_S = 5.0
#: The workflow's own files, copied once: an edit to the checkout during the test's minutes
#: does not change what its runs do.
WORKFLOW = ("Snakefile", "rules", "scripts", "src", "profiles", "report", "envs")
#: Fields of a job's record that are measured times or sizes, or the machine's state while it
#: ran (the CPU it was pinned to, other processes' load), not results.
TIMING_FIELDS = {"wall_s", "load_s", "peak_rss_bytes", "seconds", "compute_seconds"}
TIMING_FIELDS |= {"verify_seconds", "cpu_set", "system_state", "system_warnings"}
ACCURACY = layout.accuracy_result("local", "tiny-onnx", "host", "cpu")
#: What a trial kills: the run that makes a target, after its outputs were removed.
TARGETS = {
    "accuracy job": (ACCURACY, [ACCURACY]),
    "aggregate job": (layout.summary("accuracy.csv"), [layout.summary("accuracy.csv")]),
    "plot job": (layout.plot("accuracy_vs_claim.png"), [layout.plot("accuracy_vs_claim.png")]),
}
LOCKS = Path(".snakemake") / "locks"
INCOMPLETE = Path(".snakemake") / "incomplete"


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def final_outputs(root: Path) -> dict[str, str]:
    """Every result file (not logs, benchmarks or Snakemake's metadata) -> its digest, a
    job record's without its timing fields."""
    found = {}
    for path in sorted((root / "results").rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or relative.parts[1] in ("logs", "benchmarks", "envs"):
            continue
        if relative.parts[1] in ("inference", "timing") and path.suffix == ".json":
            record = without_timings(json.loads(path.read_text()))
            content = json.dumps(record, sort_keys=True).encode()
        else:
            content = path.read_bytes()
        found[str(relative)] = hashlib.sha256(content).hexdigest()
    lock = root / layout.env_lock("host")
    found[layout.env_lock("host")] = sha256_file(lock)
    return found


def differences(found: dict[str, str], reference: dict[str, str]) -> list[str]:
    return sorted(k for k in found.keys() | reference.keys() if found.get(k) != reference.get(k))


def command(root: Path, *args: str) -> list[str]:
    """snakemake_command on the workflow's copy beside the study."""
    found = snakemake_command(root, *args)
    found[found.index("-s") + 1] = str(root.parent / "workflow" / "Snakefile")
    return found


def run(root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(root, *args), capture_output=True, text=True, timeout=900, **kwargs
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The tiny study (ONNX Runtime only, batch size 1), run once uninterrupted."""
    base = tmp_path_factory.mktemp("faults")
    (base / "workflow").mkdir()
    for name in WORKFLOW:
        source, copy = tinystudy.REPO / name, base / "workflow" / name
        if source.is_dir():
            shutil.copytree(
                source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy(source, copy)
    root = base / "study"
    tinystudy.build(root, batch_sizes=(1,), models=["tiny-onnx"])
    result = run(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root, final_outputs(root)


def killed_run(root: Path, target: str, sig: signal.Signals, starting: bool, delay: float) -> str:
    """Start the run that makes target in a process group of its own and send sig to the
    whole group ``delay`` seconds after it started (``starting``) or after it locked the
    directory; return what it was making when killed."""
    proc = subprocess.Popen(
        command(root, target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while not starting and proc.poll() is None and not list((root / LOCKS).glob("*.lock")):
        time.sleep(0.02)
    try:
        proc.wait(timeout=delay)
        return "nothing: it had finished"
    except subprocess.TimeoutExpired:
        making = sorted(base64.b64decode(p.name).decode() for p in (root / INCOMPLETE).iterdir())
        os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    if sig == signal.SIGKILL:  # the group's job processes die with it, as on a lost node
        _wait_for_group(proc.pid)
    return ", ".join(making) or ("Snakemake starting" if starting else "Snakemake planning")


def _wait_for_group(pgid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def trials() -> Iterator[tuple[int, signal.Signals, str, bool, float]]:
    """(trial, signal, target, killed while starting, delay): seeded."""
    rng = random.Random(SEED)
    names = list(TARGETS)
    for k in range(TRIALS):
        target = names[(k // len(SIGNALS)) % len(names)]
        starting = k % 4 == 3
        delay = rng.uniform(0.1, STARTING_S if starting else RUNNING_S)
        yield k, SIGNALS[k % len(SIGNALS)], target, starting, delay


def test_killed_runs_resume_with_a_plain_rerun(study: tuple[Path, dict[str, str]]) -> None:
    root, reference = study
    log = []
    for k, sig, name, starting, delay in trials():
        target, made = TARGETS[name]
        for path in made:
            (root / path).unlink(missing_ok=True)
        killed = killed_run(root, target, sig, starting, delay)
        stale = sorted(p.name for p in (root / LOCKS).glob("*.lock"))
        rerun = run(root, target)  # plainly: no --unlock, no --rerun-incomplete
        said = rerun.stdout + rerun.stderr
        ran = said.count("\nlocalrule ") + said.count("\nrule ")
        moment = f"{delay:3.1f} s after {'its start' if starting else 'it locked'}"
        log.append(
            f"{k:2} {sig.name:7} {name:13} {moment:25} killed {killed}; "
            f"{len(stale)} lock files left; the re-run ran {ran} jobs"
        )
        assert rerun.returncode == 0, "\n".join(log) + "\n" + said[-4000:]
        assert "LockException" not in said
        if stale:
            assert "removed" in said and "stale Snakemake lock" in said, said[-2000:]
        assert not list((root / LOCKS).glob("*.lock"))
        changed = differences(final_outputs(root), reference)
        assert not changed, "\n".join(log) + f"\ndiffer from the uninterrupted run: {changed}"
    final = run(root)  # what the trials left outdated downstream (the summaries)
    assert final.returncode == 0, final.stderr[-4000:]
    assert not differences(final_outputs(root), reference)
    print("\n".join(log))
    assert any("SIGKILL" in line and "0 lock files" not in line for line in log)  # stale locks


def damage_one_byte(path: Path, at: int) -> bytes:
    """Flip the byte at offset ``at`` (from the end when negative), keeping the file's
    size and times; return the original bytes."""
    original = path.read_bytes()
    times = path.stat()
    damaged = bytearray(original)
    damaged[at] ^= 0x01
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    return original


def restore(path: Path, original: bytes) -> None:
    times = path.stat()
    path.write_bytes(original)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_damaged_inputs_are_refused(study: tuple[Path, dict[str, str]]) -> None:
    """One byte of a cache chunk, of the model and of the lock record: nothing is planned
    (file times kept), the forced accuracy job stops with the clear error, and no result
    carries the old digest; once repaired, the job gives the same result again."""
    root, reference = study
    cache = next((root / layout.RESULTS / "preprocess").rglob("cache.json"))
    chunk = cache.with_name("chunks") / "00000.npy"
    lock = root / layout.env_lock("host")
    text = lock.read_text()
    in_digest = text.index(json.loads(text)["lock_sha256"]) + 5  # the JSON stays valid
    cases = [
        (chunk, -1, str(cache.relative_to(root))),
        (root / layout.artifact("tiny-onnx", "onnx"), -1, layout.artifact("tiny-onnx", "onnx")),
        (lock, in_digest, layout.env_lock("host")),
    ]
    for path, at, rebuilt in cases:
        expected = sha256_file(path)
        original = damage_one_byte(path, at)
        try:
            if (root / ACCURACY).exists():  # the first case: its result is still there
                assert "Nothing to be done" in run(root, "-n", ACCURACY).stdout
            result = run(root, ACCURACY, "--forcerun", ACCURACY)
        finally:
            restore(path, original)
        assert result.returncode != 0
        logs = (root / layout.RESULTS / "logs" / "inference").rglob("accuracy.log")
        said = result.stdout + result.stderr + "".join(p.read_text() for p in logs)
        relative = str(path.relative_to(root))
        assert f"{relative}: field 'sha256'" in said, said[-3000:]
        damaged = bytearray(original)
        damaged[at] ^= 0x01
        assert expected in said and hashlib.sha256(bytes(damaged)).hexdigest() in said
        assert f"snakemake --forcerun {rebuilt}" in said
        assert not (root / ACCURACY).exists()  # no result made from it
    result = run(root, ACCURACY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not differences(final_outputs(root), reference)


def test_a_full_disk_leaves_no_partial_summary(study: tuple[Path, dict[str, str]]) -> None:
    """With the summary folder on a one-page filesystem standing in for a full disk, the
    summary job stops with the clear error and leaves no table behind, whole or partial,
    nor a temporary. (A file-size limit on the whole run cannot stand in: Snakemake's own
    start-up writes files larger than these tables.)"""
    root, _ = study
    summary = root / layout.RESULTS / "summary"
    kept = root / "summary-before"
    shutil.copytree(summary, kept)
    shutil.rmtree(summary)
    summary.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(summary)], check=True)
    try:
        result = run(root, layout.summary("runs.csv"), "--forcerun", "aggregate")
        said = result.stdout + result.stderr
        assert result.returncode != 0
        refused = re.search(r"results/summary/\S+\.csv: not written: No space left", said)
        assert refused, said[-3000:]
        assert "nothing was left in its place" in said and "Fix: free space" in said
        left = sorted(p.name for p in summary.iterdir())
        assert "runs.csv" not in left and not [n for n in left if n.startswith(".tmp-")], left
    finally:
        subprocess.run(["umount", str(summary)], check=True)
        shutil.rmtree(summary)
        shutil.copytree(kept, summary)
        shutil.rmtree(kept)
