"""The `reproscope` command line: validate gives the workflow's errors, compare gives
comparisons.csv's statistics, every subcommand has --help, and plain `snakemake` without
the set-up says what to run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reproscope.acquire.lockfile import read_lock
from reproscope.plan.configcheck import check_config_file, check_snakemake_args
from reproscope.plan.manifest import load_manifest
from reproscope.plan.study import load_study
from reproscope.report.cli import (
    Progress,
    compare_runs,
    input_kind,
    main,
    missing_requirements,
    require_setup,
)
from reproscope.report.compare import EQUIVALENT, UNPAIRED, outcome, welch_test
from tests.test_portable import copy_project
from tests.test_validation import (
    BAD,
    CONFIG_CASES,
    LOCK_CASES,
    MANIFEST_CASES,
    PROFILE_CASES,
    ROOT,
    STUDY_CASES,
    Case,
)

CLI = [sys.executable, "-m", "reproscope.report.cli"]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


# ---- validate


def test_validate_accepts_every_shipped_input() -> None:
    paths = [
        str(p.relative_to(ROOT))
        for pattern in ("manifests/*.yaml", "config/*.yaml", "envs/*")
        for p in sorted(ROOT.glob(pattern))
    ]
    result = cli("validate", *paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths)
    assert all(line.startswith(("ok ", "skip ")) for line in lines)
    assert sum(line.startswith("ok config/") for line in lines) == len(
        list(ROOT.glob("config/*.yaml"))
    )


def workflow_error(case: Case) -> Exception:
    """The error the workflow's own readers raise for a bad-input case, from the repository
    root: a config is checked as data (the workflow profile) before its study loads."""
    path = Path("tests/bad_inputs") / case.path
    try:
        if case in MANIFEST_CASES:
            load_manifest(path)
        elif case in LOCK_CASES:
            read_lock(path)
        elif case in PROFILE_CASES:
            check_snakemake_args(["--profile", str(path)])
        else:
            config = path / "config.yaml" if path.is_dir() else path
            load_study(check_config_file(config), str(config))
    except Exception as exc:
        return exc
    raise AssertionError(f"{case.id} was accepted")


EVERY_CASE = MANIFEST_CASES + CONFIG_CASES + STUDY_CASES + LOCK_CASES + PROFILE_CASES


@pytest.mark.parametrize("case", EVERY_CASE, ids=lambda c: c.id)
def test_validate_refuses_each_bad_input_with_the_workflows_message(
    case: Case, at_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = str(workflow_error(case))
    assert main(["validate", str(Path("tests/bad_inputs") / case.path)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


def test_validate_message_is_what_snakemake_prints() -> None:
    """The same text as a real workflow run refusing the config."""
    bad = "tests/bad_inputs/config/unknown-device.yaml"
    validated = cli("validate", bad)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", bad],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert validated.returncode == 1 and run.returncode != 0
    message = validated.stderr.splitlines()[1]
    assert message.startswith(bad) and "field 'study.devices[1]'" in message
    # Snakemake names the config file by its absolute path
    assert message.replace(bad, str(ROOT / bad), 1) in run.stdout


def test_validate_refuses_a_folder_that_is_no_profile(tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path))
    assert result.returncode == 1 and "is not a profile: it has no config.yaml" in result.stderr


def test_the_kind_of_a_path() -> None:
    assert input_kind(ROOT / "manifests" / "resnet50-v1-onnx.yaml") == "manifest"
    assert input_kind(ROOT / "config" / "smoke.yaml") == "config"
    assert input_kind(ROOT / "envs" / "host.yaml") == "env"
    assert input_kind(ROOT / "envs" / "host.lock.txt") == "lock"
    assert input_kind(ROOT / "envs" / "host.post-deploy.sh") == "skip"
    assert input_kind(ROOT / "profiles" / "slurm") == "profile"
    assert input_kind(BAD / "study" / "unknown-environment") == "config"


# ---- compare


def runs(values: dict[tuple[str, str, int], list[float]]) -> pd.DataFrame:
    """A runs.csv: one row per (env, scenario, batch size) and round."""
    rows = []
    for (env, scenario, batch), figures in values.items():
        column = {
            "FixedBatch": "latency_ms_p50",
            "SingleStream": "early_stopping_p90_ms",
            "Offline": "throughput_ips",
        }[scenario]
        for r, value in enumerate(figures):
            rows.append(
                {
                    "model": "m",
                    "manifest": "m-onnx",
                    "framework": "onnxruntime",
                    "env": env,
                    "device": "cpu",
                    "system": "local",
                    "scenario": scenario,
                    "batch_size": batch,
                    "repeat": r,
                    "status": "ok",
                    "latency_ms_p50": None,
                    "throughput_ips": None,
                    "early_stopping_p90_ms": None,
                    "server_max_qps": None,
                    column: value,
                }
            )
    return pd.DataFrame(rows)


def test_compare_uses_welch_and_the_verdicts_of_comparisons_csv() -> None:
    a = runs(
        {
            ("ort", "FixedBatch", 1): [10.0, 10.2, 9.9],
            ("ort", "Offline", 8): [100, 98, 101],
            ("ort", "SingleStream", 1): [12.0, 12.5, 11.8],
        }
    )
    b = runs(
        {
            ("ort", "FixedBatch", 1): [5.0, 5.1, 4.9],  # twice as fast
            ("ort", "SingleStream", 1): [12.1, 12.3, 11.9],
            ("ort", "Offline", 8): [99, 100, 100],
            ("other", "FixedBatch", 1): [1.0, 1.0],  # only in B: not compared
        }
    )
    table = compare_runs(a, b, 0.10)
    assert len(table) == 3 and set(table["pairing"]) == {UNPAIRED}
    single = table[table["scenario"] == "SingleStream"].iloc[0]
    assert single["metric"] == "early_stopping_p90_ms"  # MLPerf's figure, as comparisons.csv
    assert single["value_a"] == 12.0 and single["value_b"] == 12.1
    fixed = table[table["scenario"] == "FixedBatch"].iloc[0]
    test = welch_test([10.0, 10.2, 9.9], [5.0, 5.1, 4.9])
    assert (fixed["ratio_b_over_a"], fixed["ci95_low"], fixed["ci95_high"]) == (
        test.ratio,
        *test.ci95,
    )
    assert (fixed["ci90_low"], fixed["ci90_high"], fixed["p_value"]) == (*test.ci90, test.p_value)
    assert fixed["verdict"] == outcome(test, True, 0.10) == "faster beyond margin"
    offline = table[table["scenario"] == "Offline"].iloc[0]
    assert offline["metric"] == "throughput_ips" and offline["rounds"] == 3
    other = welch_test([100, 98, 101], [99, 100, 100])
    assert offline["verdict"] == outcome(other, False, 0.10) == EQUIVALENT
    assert table["p_value_holm"].notna().all()


def test_compare_command_on_two_results_folders(tmp_path: Path) -> None:
    figures = {("ort", "FixedBatch", 1): [10.0, 10.3, 9.8, 10.1]}
    for study in ("a", "b"):
        (tmp_path / study / "summary").mkdir(parents=True)
        runs(figures).to_csv(tmp_path / study / "summary" / "runs.csv", index=False)
    result = cli(
        "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--csv", str(tmp_path / "c.csv")
    )
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "c.csv")
    assert written["verdict"].tolist() == [EQUIVALENT]  # a study against itself
    assert EQUIVALENT in result.stdout
    missing = cli("compare", str(tmp_path / "a"), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no runs.csv" in missing.stderr


# ---- the other subcommands


@pytest.mark.parametrize("command", ["validate", "compare", "report", "lock", "snakemake", "run"])
def test_every_subcommand_has_help(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_report_without_a_display_prints_the_path(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("<html></html>")
    result = subprocess.run(
        [*CLI, "report", "--no-build", "--output", str(page)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # no DISPLAY
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(page.resolve())


def test_lock_check_runs_the_lock_command() -> None:
    assert (
        cli("lock", "--check").returncode
        == subprocess.run(
            [sys.executable, "-m", "reproscope.acquire.lock", "--check"],
            cwd=ROOT,
            capture_output=True,
        ).returncode
    )


def test_progress_is_plain_lines_in_a_log(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log:
        progress = Progress(log)
        progress.step(1, 2, "checking")
        progress.line("ok a", log)
        progress.done()
    assert (tmp_path / "log").read_text() == "ok a\n"


# ---- plain snakemake without the set-up


def test_require_setup_names_what_to_run(tmp_path: Path) -> None:
    assert missing_requirements() == []  # this interpreter has had the set-up
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["snakemake==9.27.1", "no-such-dist==1.0"]\n')
    assert missing_requirements(pyproject) == ["no-such-dist"]
    with pytest.raises(SystemExit) as info:
        require_setup(pyproject)
    assert str(info.value).startswith("reproscope: run `make setup` first")


def test_plain_snakemake_without_the_set_up_says_what_to_run(tmp_path: Path) -> None:
    """A clone whose set-up is missing a package: the profile's first words are the fix,
    with no traceback and no usage; the clone's own src/ is the package imported."""
    project = copy_project(tmp_path / "clone")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace('"psutil==', '"reproscope-absent-dist==1.0",\n    "psutil==', 1)
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n"], capture_output=True, text=True, cwd=project
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Using workflow specific profile")  # Snakemake's own notice
    assert lines[1].startswith(
        f"reproscope: run `make setup` first, then `. .venv/bin/activate` (in {project})"
    )
    assert lines[1].endswith("lacks reproscope-absent-dist") and len(lines) == 2
    assert "usage:" not in result.stderr and "Traceback" not in result.stderr


# ---- config/README.md


def schema_keys(node: dict, defs: dict, path: str = "") -> set[str]:
    """Every key path of the config schema (`<name>` for a mapping's own keys)."""
    while "$ref" in node:
        node = {
            **defs[node["$ref"].split("/")[-1]],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    keys = {path} if path else set()
    for key, sub in (node.get("properties") or {}).items():
        keys |= schema_keys(sub, defs, f"{path}.{key}" if path else key)
    if isinstance(node.get("additionalProperties"), dict):
        keys |= schema_keys(node["additionalProperties"], defs, f"{path}.<name>")
    for alternative in node.get("oneOf", []) + node.get("anyOf", []):
        keys |= schema_keys(alternative, defs, path) - {path}
    return keys


def test_config_readme_describes_every_key() -> None:
    from reproscope.plan.schema import load_schema

    schema = load_schema("config")
    keys = schema_keys(schema, schema["$defs"])
    documented = set(
        re.findall(r"^\| `([^`]+)` \|", (ROOT / "config" / "README.md").read_text(), re.M)
    )
    assert len(keys) > 80
    assert sorted(keys - documented) == []


def test_the_cluster_template_and_its_two_partition_study_validate() -> None:
    template = "profiles/slurm-template"
    result = cli("validate", template, f"{template}/study.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"ok {template} (profile)",
        f"ok {template}/study.yaml (config)",
    ]
