"""Fuzzing the loaders (issue 12): seeded random mutations of the shipped manifests and
study configs, as data and as bytes. Loading gives a valid manifest or study, or the
project's own error (InputError/InputErrors) naming a file and a fix; never another
exception. Seeded, so a failure reproduces; bounded to a few thousand cases.
"""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from reproscope.errors import InputError, InputErrors
from reproscope.plan.configcheck import check_config_file
from reproscope.plan.manifest import load_manifest
from reproscope.plan.study import load_study
from reproscope.yamlio import load_yaml
from tests import tinystudy

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "manifests").glob("*.yaml"))
CONFIGS = [ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"]
CASES = 1500  # per test; about 10 s each on one core

HOSTILE_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    -float("inf"),
    0,
    -1,
    1,
    10**30,
    2**63,
    224.0,
    1.5,
    1e308,
    -0.0,
    "",
    "x\n",
    "a\x00b",
    "../x",
    "/dev/zero",
    "os:system",
    "torch:os.system",
    "reproscope.acquire.envs:build_env",
    "https://u:p@example.com/x",
    "file:///dev/zero",
    "(",
    "()",
    "^(a)(b)$",
    [],
    {},
    None,
    True,
    "a" * 300,
    [1, 2, 3],
    [224.0, 224],
    {"x": 1},
    {"evil": {"overrides": {"architecture.entry_point": "os:system"}}},
    ["no-such-model"],
]
TEXT_INSERTS = [
    "\x00",
    "\xff",
    "\t",
    "&a ",
    "*a",
    "*zz",
    "!!python/name:os.system ",
    "? ",
    ": ",
    "__use_yte__: true\n",
    "[" * 50,
    "{",
    "- ",
    "'",
    '"',
    "\n  ",
    "1: x\n",
    "!!binary ",
    "2001-12-14t21:59:43.10-05:00",
    ".nan",
    "<<: *a\n",
    "9" * 5000,
]


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


def mutate_data(data: Any, rng: random.Random) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(paths(data)[1:] or [()])
        if not where:
            continue
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        key, op = where[-1], rng.random()
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        elif op < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.85 and isinstance(parent, dict):
            parent[rng.choice([7, "unknown_field", "__use_yte__", "Name", str(key).upper()])] = 1
        else:  # graft another subtree of the document here
            source = data
            for k in rng.choice(paths(data)):
                source = source[k]
            parent[key] = copy.deepcopy(source)
    return data


def mutate_text(text: str, rng: random.Random) -> bytes:
    raw = text
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(raw) + 1)
        op = rng.random()
        if op < 0.5:
            raw = raw[:at] + rng.choice(TEXT_INSERTS) + raw[at:]
        elif op < 0.75:
            raw = raw[:at] + raw[at + rng.randint(1, 40) :]
        else:
            raw = raw[:at]
    data = raw.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        data = data.replace(b"e", bytes([rng.randrange(256)]), 1)
    return data


def write(path: Path, data: Any, rng: random.Random) -> None:
    if rng.random() < 0.6:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(mutate_text(path.read_text(), rng))


def own_error_only(load: Any, path: Path) -> str:
    """'ok' or 'error'; any other exception propagates (the caller reports the input)."""
    try:
        load(path)
    except (InputError, InputErrors) as exc:
        errors = exc.errors if isinstance(exc, InputErrors) else [exc]
        assert errors and all(e.file and e.field and e.fix for e in errors), str(exc)
        return "error"
    return "ok"


def load_config_and_study(path: Path) -> None:
    check_config_file(path)
    load_study(load_yaml(path), str(path))


def test_mutated_manifests(tmp_path: Path) -> None:
    rng = random.Random(12)
    shutil.copytree(ROOT / "manifests" / "labels", tmp_path / "labels")
    originals = [(p, yaml.safe_load(p.read_text())) for p in MANIFESTS]
    outcomes = {"ok": 0, "error": 0}
    for i in range(CASES):
        source, data = rng.choice(originals)
        path = tmp_path / f"case-{i % 50}.yaml"
        path.write_text(source.read_text())
        write(path, mutate_data(data, rng), rng)
        try:
            outcomes[own_error_only(load_manifest, path)] += 1
        except AssertionError:
            raise
        except Exception as exc:
            pytest.fail(f"case {i}: {type(exc).__name__}: {exc}\n{path.read_bytes()[:3000]!r}")
    assert outcomes["error"] > CASES // 2 and outcomes["ok"] > 0, outcomes


def test_mutated_configs_and_studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config files and study directories (a mutated manifest beside the shipped ones)."""
    monkeypatch.chdir(ROOT)
    rng = random.Random(1212)
    configs = [(p, yaml.safe_load(p.read_text())) for p in CONFIGS]
    manifests = tmp_path / "manifests"
    outcomes = {"ok": 0, "error": 0}
    for i in range(CASES):
        source, config = rng.choice(configs)
        config = copy.deepcopy(config)
        if rng.random() < 0.3:  # a study whose manifests directory holds one mutated manifest
            shutil.rmtree(manifests, ignore_errors=True)
            shutil.copytree(ROOT / "manifests", manifests)
            victim = rng.choice(sorted(manifests.glob("*.yaml")))
            write(victim, mutate_data(yaml.safe_load(victim.read_text()), rng), rng)
            config["manifests"] = str(manifests)
        else:
            config = mutate_data(config, rng)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        if rng.random() < 0.3:
            path.write_bytes(mutate_text(path.read_text(), rng))
        try:
            outcomes[own_error_only(load_config_and_study, path)] += 1
        except AssertionError:
            raise
        except Exception as exc:
            pytest.fail(f"case {i}: {type(exc).__name__}: {exc}\n{path.read_bytes()[:3000]!r}")
    assert outcomes["error"] > CASES // 2 and outcomes["ok"] > 0, outcomes


# ---- issue 25: locks and profiles


LOCK_INSERTS = [
    " \\\n",
    "\\",
    "# -*- coding: utf-7 -*-\n",
    "# vim: set fileencoding=utf-7 :\n",
    "\r",
    "\t",
    "\xfc",
    "--extra-index-url https://example.com/simple\n",
    "-e .\n",
    " # note \\\n",
    "${HOME}",
    " @ file:///tmp/x.whl",
    "; python_version > '3'",
    "==",
    "\n",
    "    --hash=sha256:" + "e" * 64 + "\n",
    "[extra]",
]


def test_mutated_locks(tmp_path: Path) -> None:
    """A mutated lock is read as pip reads it, or refused with a LockError naming the line
    (or the document) and a fix; never another exception."""
    from reproscope.acquire.lockfile import LockError, read_lock
    from tests.test_locks import _pip_reads

    rng = random.Random(25)
    locks = sorted((ROOT / "envs").glob("*.lock.txt"))
    outcomes = {"ok": 0, "error": 0}
    for i in range(600):
        text = rng.choice(locks).read_text()
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.7:
                text = text[:at] + rng.choice(LOCK_INSERTS) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 40) :]
        path = tmp_path / f"case-{i % 20}.lock.txt"
        path.write_bytes(text.encode("utf-8"))
        try:
            lock = read_lock(path)
        except LockError as exc:
            assert exc.field and exc.problem and exc.fix and str(path) in str(exc), str(exc)
            outcomes["error"] += 1
            continue
        except Exception as exc:
            pytest.fail(f"case {i}: {type(exc).__name__}: {exc}\n{text[:3000]!r}")
        assert _pip_reads(path) == {n: (v, [s]) for n, (v, s) in lock.packages.items()}
        outcomes["ok"] += 1
    assert outcomes["error"] > 500, outcomes


PROFILE_VALUES: list[Any] = [
    "__import__('os').system('true')",
    "shutil.rmtree",
    "$HOME",
    "~/x",
    "a100\n",
    "2*input.size_mb",
    "base64//MSsx",
    "'quoted'",
    "lambda: 1",
    "a100",
    "gpu:1",
    "4GB",
    1000,
    1.5,
    True,
    None,
    [],
    {},
    {"mem_mb": "exec('x')"},
    ["mem_mb=1000", "x=open('f')"],
]


def test_mutated_profiles(tmp_path: Path) -> None:
    """A mutated profile passes the check only when every value Snakemake evaluates is a
    literal; otherwise the project's own error, never another exception."""
    from reproscope.plan.configcheck import check_snakemake_args, resource_value_problem

    rng = random.Random(2525)
    base = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    base["set-resources"] = {"accuracy": {"mem_mb": 2000, "slurm_partition": "sysb"}}
    base["set-threads"] = {"accuracy": 2}
    profile = tmp_path / "profile"
    profile.mkdir()
    outcomes = {"ok": 0, "error": 0}
    for i in range(150):
        data = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            value = copy.deepcopy(rng.choice(PROFILE_VALUES))
            where = rng.choice(
                [
                    ("default-resources", "mem_mb"),
                    ("default-resources", "slurm_partition"),
                    ("set-resources", "accuracy", "mem_mb"),
                    ("set-resources", "accuracy"),
                    ("set-threads", "accuracy"),
                    ("set-threads",),
                    ("default-resources",),
                ]
            )
            parent = data
            for key in where[:-1]:
                if not isinstance(parent.get(key), dict):
                    parent[key] = {}
                parent = parent[key]
            parent[where[-1]] = value
        (profile / "config.yaml").write_text(yaml.safe_dump(data))
        if rng.random() < 0.2:
            (profile / "config.yaml").write_bytes(
                mutate_text((profile / "config.yaml").read_text(), rng)
            )
        try:
            outcome = own_error_only(lambda p: check_snakemake_args(["--profile", str(p)]), profile)
        except AssertionError:
            raise
        except Exception as exc:
            pytest.fail(f"case {i}: {type(exc).__name__}: {exc}\n{data!r}")
        outcomes[outcome] += 1
        if outcome == "ok":  # then every value Snakemake would evaluate is a literal
            read = yaml.safe_load((profile / "config.yaml").read_text()) or {}
            for key in ("default-resources", "set-resources", "set-threads"):
                text = yaml.safe_dump(read.get(key))
                assert "(" not in text and "$" not in text and "__" not in text, read
    assert resource_value_problem("gpu:1") is None


# ---- issue 25: images and labels files, mutated at random: pixels or an InputError naming
# the file, never another exception


def _seed_images(root: Path) -> list[bytes]:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    seeds = []
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "L"), ("GIF", "P"), ("BMP", "RGB")):
        pixels = rng.integers(0, 255, size=(37, 53, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
        seeds.append(buf.getvalue())
    return seeds


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.4 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind < 0.6:
            out = out[: rng.randrange(len(out) + 1)]  # truncated
        elif kind < 0.8 and len(out) > 24:
            # PNG/GIF/BMP headers: width and height fields near the start
            at = rng.randrange(8, 24)
            out[at : at + 2] = rng.choice([b"\xff\xff", b"\x7f\xff", b"\x00\x00", b"\x4e\x20"])
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(out)


def test_mutated_images(tmp_path: Path) -> None:
    """In a fresh process: OpenCV's thread pool, started by a large decode, must not exist
    in the test process, which later forks preprocessing workers."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        failures, outcomes = pool.submit(_fuzz_images, str(tmp_path)).result(timeout=600)
    assert not failures, "\n".join(failures)
    assert outcomes["ok"] and outcomes["error"], outcomes


def _fuzz_images(root: str) -> tuple[list[str], dict[str, int]]:
    from reproscope.acquire.preprocess import geometric

    tmp_path = Path(root)
    failures: list[str] = []
    rng = random.Random(25)
    seeds = _seed_images(tmp_path)
    outcomes = {"ok": 0, "error": 0}
    for i in range(300):
        path = tmp_path / f"img{i}.bin"
        path.write_bytes(_mutate_bytes(rng.choice(seeds), rng))
        decoder = rng.choice(["pil", "opencv"])
        spec = tinystudy.geometric_spec(decoder, 16, rng.choice(["shorter_side", "squash"]))
        try:
            pixels = geometric(path, spec)
        except InputError as exc:
            if exc.file != str(path) or not exc.fix:
                failures.append(f"case {i} ({decoder}): the error does not name it: {exc}")
            outcomes["error"] += 1
            continue
        except Exception as exc:  # noqa: BLE001
            failures.append(f"case {i} ({decoder}): {type(exc).__name__}: {exc}")
            continue
        if pixels.shape != (16, 16, 3) or pixels.dtype.name != "uint8":
            failures.append(f"case {i} ({decoder}): pixels {pixels.shape} {pixels.dtype}")
        outcomes["ok"] += 1
    return failures, outcomes


LABEL_INSERTS = [
    "\u00b2".encode(),  # a digit to str.isdigit, not to int()
    "\u0663".encode(),  # Arabic-Indic three
    b"\xe9",  # Latin-1
    b'"',
    b"\x00",
    b"\r",
    b"x" * 200_000,
    b",,,,",
    b" 99999999999999999999999",
]


def test_mutated_labels_files(tmp_path: Path) -> None:
    from reproscope.acquire.datasets import read_labels

    rng = random.Random(26)
    files = [f"n{i:08d}_{i}.JPEG" for i in range(5)]
    seeds = {
        "csv": "ImageId,label\n" + "".join(f"{f},n{i:08d}\n" for i, f in enumerate(files)),
        "kaggle-loc": "ImageId,PredictionString\n"
        + "".join(f"{f[:-5]},n{i:08d} 1 2 3 4\n" for i, f in enumerate(files)),
        "caffe": "".join(f"{f} {i}\n" for i, f in enumerate(files)),
    }
    for i in range(600):
        form = rng.choice(sorted(seeds))
        path = tmp_path / "labels.txt"
        data = mutate_text(seeds[form], rng)
        if rng.random() < 0.5:  # what breaks labels files in the wild
            at = rng.randrange(len(data) + 1)
            insert = rng.choice(LABEL_INSERTS)
            data = data[:at] + insert + data[at:]
        path.write_bytes(data)
        try:
            read_labels(tmp_path, files, {"file": "labels.txt", "format": form}, "c.yaml", "f")
        except InputError as exc:
            assert exc.fix and (exc.file == str(path) or exc.file == "c.yaml"), exc
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"case {i} ({form}): {type(exc).__name__}: {exc}")
