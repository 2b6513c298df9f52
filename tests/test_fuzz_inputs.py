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
