"""`reproscope`: the command line for the everyday questions (here, in the top layer,
because its subcommands reach every layer).

    reproscope validate PATH...          are these manifests, configs, environment files,
                                         locks and profiles valid (the workflow's errors)?
    reproscope compare RESULTS_A RESULTS_B   what changed between two studies' runs.csv?
    reproscope report [--no-open]        build the HTML report and open it
    reproscope lock [NAME...]            rewrite the environment locks
    reproscope snakemake ARGS            check the config sources, then run snakemake ARGS

Every subcommand takes --help. Only the standard library is imported at the top, so the
workflow profile can import :func:`require_setup` before the set-up has installed anything.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[3]  # this checkout (src/reproscope/report/cli.py)
SETUP_HINT = "run `make setup` first, then `. .venv/bin/activate`"


# ---- the set-up


def missing_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The host dependencies of pyproject.toml that this interpreter lacks (by distribution
    name); empty after `make setup`."""
    project = tomllib.loads(pyproject.read_text())["project"]
    missing = []
    for requirement in project["dependencies"]:
        name = re.split(r"[\s=<>!~;\[]", requirement, maxsplit=1)[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def require_setup(pyproject: Path = ROOT / "pyproject.toml") -> None:
    """Exit with one line saying what to run when the set-up is missing (for the workflow
    profile, which Snakemake reads first: a message, no traceback, no usage)."""
    if missing := missing_requirements(pyproject):
        sys.exit(
            f"reproscope: {SETUP_HINT} (in {pyproject.parent}); this Python "
            f"({sys.executable}) lacks {', '.join(missing)}"
        )


# ---- progress: a status line on a terminal, plain lines in a log


class Progress:
    """``step(i, n, text)`` rewrites one status line on a terminal and prints nothing to a
    log; ``line(text)`` is a result line in both."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._open = False

    def step(self, i: int, n: int, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r\033[K[{i}/{n}] {text}")
            self.stream.flush()
            self._open = True

    def line(self, text: str, stream: TextIO | None = None) -> None:
        if self._open:
            self.stream.write("\r\033[K")
            self._open = False
        print(text, file=stream or sys.stdout, flush=True)

    def done(self) -> None:
        if self._open:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._open = False


# ---- validate


def input_kind(path: Path) -> str:
    """What a path holds: manifest, config, env, lock, profile, or skip (a file the lock
    command generates). A directory is a profile or a study case (its config.yaml)."""
    name = path.name
    if name.endswith(".lock.txt"):
        return "lock"
    if name.endswith((".post-deploy.sh", ".pin.txt")):
        return "skip"
    if path.is_dir():
        return "config" if _study_config(path / "config.yaml") else "profile"
    folder = path.parent.name
    if folder in ("manifests", "manifest"):
        return "manifest"
    if folder == "envs":
        return "env"
    if folder in ("config", "study") or _study_config(path):
        return "config"
    if folder in ("profiles", "profile") or path.name == "config.yaml":
        return "profile"
    return "manifest"


def _study_config(path: Path) -> bool:
    from reproscope.yamlio import load_yaml

    try:
        data = load_yaml(path)
    except Exception:  # the check proper reports it
        return False
    return isinstance(data, dict) and bool({"study", "manifests"} & set(data))


def check_config(path: Path) -> None:
    """A study config as the workflow checks it: as data (before Snakemake parses it), then
    the study it loads (manifests, environments, locks, budgets). A config without
    `manifests` is an overlay, given after config/config.yaml (merged as Snakemake does)."""
    from snakemake.utils import update_config

    from reproscope.plan.configcheck import DEFAULT_CONFIG, check_config_file
    from reproscope.plan.study import load_study
    from reproscope.runtime.fingerprint import gpus

    config = check_config_file(path)
    if "manifests" not in config and path.resolve() != Path(DEFAULT_CONFIG).resolve():
        base = check_config_file(DEFAULT_CONFIG)
        update_config(base, config)
        config = base
    load_study(config, str(path), gpu_present=bool(gpus()))


def check_path(path: Path, kind: str) -> None:
    """Raise the error the workflow gives for path, read as kind."""
    from reproscope.acquire.envfile import read_env_file
    from reproscope.acquire.lockfile import LOCK_COMMAND, lock_path, read_lock
    from reproscope.errors import InputError
    from reproscope.plan.configcheck import check_snakemake_args
    from reproscope.plan.manifest import load_manifest
    from reproscope.yamlio import is_kind

    if kind == "manifest":
        load_manifest(path)
    elif kind == "config":
        check_config(path / "config.yaml" if is_kind(path, "dir") else path)
    elif kind == "env":
        read_env_file(path.name.removesuffix(".yaml"), path)
        if not lock_path(path).is_file():  # the study's check, named by the env file
            raise InputError(
                path,
                "(document)",
                f"has no lock {str(lock_path(path))!r}: environments are built from their "
                "lock alone",
                f"write it with `{LOCK_COMMAND} --envs {path.parent} {path.stem}`",
            )
    elif kind == "lock":
        read_lock(path)
    elif kind == "profile":
        if not is_kind(path / "config.yaml", "file"):
            raise InputError(
                path,
                "(document)",
                "is not a profile: it has no config.yaml",
                "name a manifest, a study config, an envs/ file, a lock or a profile folder",
            )
        check_snakemake_args(["--profile", str(path)])


def cmd_validate(args: argparse.Namespace) -> int:
    from reproscope.acquire.lockfile import LockError
    from reproscope.errors import InputError, InputErrors

    progress = Progress()
    failed = 0
    for i, path in enumerate(args.paths, 1):
        kind = args.kind or input_kind(path)
        progress.step(i, len(args.paths), f"{kind} {path}")
        if kind == "skip":
            progress.line(f"skip {path} (written by `reproscope lock`)")
            continue
        try:
            check_path(path, kind)
        except (InputError, InputErrors, LockError) as exc:
            failed += 1
            progress.line(f"invalid {path} ({kind}):\n{exc}", sys.stderr)
            continue
        progress.line(f"ok {path} ({kind})")
    progress.done()
    if failed:
        print(f"reproscope: {failed} of {len(args.paths)} inputs are invalid", file=sys.stderr)
    return 1 if failed else 0


# ---- compare


def runs_csv(results: Path) -> Path:
    """A study's runs.csv: the path itself, or its place under a results folder."""
    from reproscope.runtime import layout

    if results.is_dir():
        return results / Path(layout.summary("runs.csv")).relative_to(layout.RESULTS)
    return results


# runs.csv's column for each scenario's figure (runtime.rounds.SCENARIO_METRIC), where
# it is not the metric's own name
RUNS_COLUMN = {"p50_ms": "latency_ms_p50"}


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, min_effect: float) -> pd.DataFrame:
    """Each configuration, scenario and batch size measured in both studies: B over A, its
    95 % and 90 % CIs and p-value (unpaired: Welch across the two studies' rounds), Holm's
    adjustment over the table, and the outcome, in the columns of comparisons.csv."""
    import numpy as np
    import pandas as pd

    from reproscope.report.aggregate import CONFIG
    from reproscope.report.compare import (
        TEST_COLUMNS,
        UNPAIRED,
        test_columns,
        welch_test,
        with_holm,
    )
    from reproscope.runtime.rounds import SCENARIO_METRIC

    def figures(runs: pd.DataFrame) -> dict[tuple, list[float]]:
        found: dict[tuple, list[float]] = {}
        for row in runs[runs["status"] == "ok"].to_dict("records"):
            metric = SCENARIO_METRIC[row["scenario"]][0]
            value = row.get(RUNS_COLUMN.get(metric, metric))
            if value is not None and not pd.isna(value):
                key = (*(row[k] for k in CONFIG), row["scenario"], int(row["batch_size"]))
                found.setdefault(key, []).append(float(value))
        return found

    side_a, side_b = figures(a), figures(b)
    rows = []
    for key in sorted(set(side_a) & set(side_b), key=str):
        *config, scenario, batch_size = key
        metric, lower_is_better = SCENARIO_METRIC[scenario]
        test = welch_test(side_a[key], side_b[key])
        rows.append(
            {
                "kind": "study",
                "pairing": UNPAIRED,
                "scenario": scenario,
                "batch_size": batch_size,
                "metric": metric,
                **dict(zip(CONFIG, config, strict=True)),
                "rounds": min(len(side_a[key]), len(side_b[key])),
                "value_a": float(np.median(side_a[key])),
                "value_b": float(np.median(side_b[key])),
                **test_columns(test, lower_is_better, min_effect),
            }
        )
    columns = ["kind", "pairing", "scenario", "batch_size", "metric", *CONFIG]
    return with_holm(rows, [*columns, "rounds", "value_a", "value_b", *TEST_COLUMNS])


def _study_min_effect(runs: Path) -> float | None:
    """The min_effect a study's comparisons.csv states (beside its runs.csv)."""
    import pandas as pd

    comparisons = runs.with_name("comparisons.csv")
    if not comparisons.is_file():
        return None
    column = pd.read_csv(comparisons).get("min_effect")
    return None if column is None or column.empty else float(column.iloc[0])


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from reproscope.report.compare import MIN_EFFECT
    from reproscope.report.tables import rounded, write_csv

    files = [runs_csv(args.results_a), runs_csv(args.results_b)]
    for path in files:
        if not path.is_file():
            print(
                f"reproscope: {path}: no runs.csv. Fix: name a results folder (or a runs.csv) "
                "of a study that has run",
                file=sys.stderr,
            )
            return 2
    min_effect = args.min_effect or _study_min_effect(files[0]) or MIN_EFFECT
    table = compare_runs(*(pd.read_csv(p) for p in files), min_effect)
    if table.empty:
        print("reproscope: the two studies measured no configuration in common", file=sys.stderr)
        return 1
    shown = rounded(table)
    if args.csv:
        write_csv(shown, args.csv)
    columns = ["scenario", "batch_size", "model", "env", "device", "system", "rounds"]
    columns += ["ratio_b_over_a", "ci95_low", "ci95_high", "verdict"]
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(shown[columns].to_string(index=False))
    print(f"B = {files[1]} over A = {files[0]}; pairing {table['pairing'].iloc[0]}")
    return 0


# ---- report, lock, snakemake


def report_path() -> Path:
    from reproscope.runtime import layout

    return Path(layout.RESULTS) / "report.html"


def can_open_browser() -> bool:
    """A graphical browser can start: not on a headless Linux (no display), where
    webbrowser would fall back to a text browser in this terminal."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def cmd_report(args: argparse.Namespace) -> int:
    path = args.output
    if not args.no_build:
        command = [sys.executable, "-m", "reproscope.plan.configcheck", "snakemake"]
        command += ["--report", str(path), *args.snakemake_args]
        print(f"reproscope: building {path} (snakemake --report)", file=sys.stderr, flush=True)
        built = subprocess.run(command, check=False)
        if built.returncode != 0:
            return built.returncode
    if not path.is_file():
        print(f"reproscope: {path} does not exist. Fix: run `reproscope report`", file=sys.stderr)
        return 1
    print(path.resolve())
    if not args.no_open and can_open_browser():
        webbrowser.open(path.resolve().as_uri())
    return 0


def cmd_snakemake(argv: list[str]) -> int:
    from reproscope.plan.configcheck import main

    return main(["snakemake", *argv])


def cmd_lock(argv: list[str]) -> int:
    from reproscope.acquire.lock import main

    return main(argv)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="reproscope",
        description="Reproduce ML model evaluations from declarative manifests, with Snakemake.",
    )
    subs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = subs.add_parser(
        "validate",
        help="check manifests, configs, environment files, locks and profiles",
        description="Check each PATH with the workflow's own checks and print its errors "
        "(file, field, fix). The kind comes from the folder and the name (manifests/, "
        "config/, envs/*.yaml, *.lock.txt, a profile folder) unless --kind says it. "
        "Exit status 1 when any is invalid.",
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument(
        "--kind", choices=["manifest", "config", "env", "lock", "profile"], help="read as"
    )
    validate.set_defaults(run=cmd_validate)
    compare = subs.add_parser(
        "compare",
        help="compare two studies' runs.csv",
        description="Compare every configuration, scenario and batch size that two studies "
        "both measured: B over A, its 95 %% CI (Welch across the two studies' rounds) and "
        "the verdict, with the statistics and labels of comparisons.csv.",
    )
    compare.add_argument(
        "results_a", type=Path, metavar="RESULTS_A", help="results folder or runs.csv"
    )
    compare.add_argument(
        "results_b", type=Path, metavar="RESULTS_B", help="results folder or runs.csv"
    )
    compare.add_argument(
        "--min-effect",
        type=float,
        help="smallest relative difference a verdict claims (default: study A's, else 0.10)",
    )
    compare.add_argument("--csv", type=Path, help="also write the table to this CSV")
    compare.set_defaults(run=cmd_compare)
    report = subs.add_parser(
        "report",
        help="build the HTML report and open it",
        description="Build the HTML report (snakemake --report, after the config checks) "
        "and open it in a browser; on a machine without a display, print its path.",
    )
    report.add_argument("--output", type=Path, default=report_path(), help="default: %(default)s")
    report.add_argument("--no-build", action="store_true", help="open the existing report")
    report.add_argument("--no-open", action="store_true", help="print the path only")
    report.add_argument(
        "snakemake_args",
        nargs="*",
        metavar="SNAKEMAKE_ARG",
        help="passed to snakemake after --, e.g. -- --configfile config/smoke.yaml",
    )
    report.set_defaults(run=cmd_report)
    subs.add_parser(
        "lock",
        help="rewrite the environment locks (python -m reproscope.acquire.lock)",
        add_help=False,
    )
    subs.add_parser(
        "snakemake",
        aliases=["run"],
        help="check the config sources and profiles, then run snakemake ARGS",
        description="reproscope snakemake ARGS: check every config file, --config value and "
        "profile that ARGS name (configs are data, profiles are literals), then run "
        "`snakemake ARGS` in this Python. `snakemake --help` lists ARGS.",
    )
    return top


# Subcommands whose arguments belong to another program, passed on verbatim.
PASSTHROUGH_RUN: dict[str, Callable[[list[str]], int]] = {
    "snakemake": cmd_snakemake,
    "run": cmd_snakemake,
    "lock": cmd_lock,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if (
        argv
        and argv[0] in PASSTHROUGH_RUN
        and not (argv[0] != "lock" and argv[1:2] in (["-h"], ["--help"]))
    ):
        return PASSTHROUGH_RUN[argv[0]](argv[1:])
    args: Any = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
