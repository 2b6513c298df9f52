"""Configs are data: every config file and `--config` value Snakemake is given passes the
project's checks before Snakemake parses it.

Snakemake reads `--configfile` itself, before the Snakefile runs, and evaluates a config
that sets `__use_yte__: true` (YTE templates run Python expressions). So the checks run
from three places (README, "Configs are data"):

* `reproscope snakemake ARGS` (`python -m reproscope.plan.configcheck snakemake ARGS`): checks
  every config source named by ARGS and the profiles they use, then replaces itself with
  `snakemake ARGS`;
* the workflow profile `profiles/default`, which Snakemake parses before any config file,
  runs `check_snakemake_args(sys.argv[1:])` for a plain `snakemake` in this repository;
* the top of the Snakefile re-reads every config file Snakemake was given
  (`check_workflow_configs`), for runs that bypass both (the Python API).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reproscope.errors import InputError, InputErrors
from reproscope.yamlio import check_values, load_yaml, parse_yaml

MAX_CONFIG_ARG_BYTES = 10_000
# Keys that make YTE evaluate a document (Snakemake passes every config file and profile
# through yte.process_yaml(require_use_yte=True)).
EVALUATING_KEYS = ("__use_yte__", "__definitions__", "__variables__")
DEFAULT_CONFIG = "config/config.yaml"


def check_config_file(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A config (or profile) file read as plain data: regular file, size, encoding,
    alias and value limits, a mapping, and no construct that Snakemake would evaluate."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(
            path,
            "",
            f"a {what} file is a mapping of fields",
            "write 'field: value' lines, like config/config.yaml",
        )
    for key in EVALUATING_KEYS:
        if key in data:
            raise InputError(
                path,
                key,
                "turns the file into a YTE template whose expressions Snakemake would run "
                f"as Python while reading it; a {what} is data, nothing in it is executed",
                f"remove '{key}' and write the values themselves",
            )
    _refuse_expressions(data, path, "")
    return data


def _refuse_expressions(data: Any, path: str | Path, where: str) -> None:
    """YTE expression keys ('?if ...', '?for ...') anywhere, which only a template has."""
    if isinstance(data, dict):
        for key, value in data.items():
            field = f"{where}.{key}" if where else key
            if key.startswith("?"):
                raise InputError(
                    path,
                    field,
                    "a YTE expression key; configs are data and are never evaluated",
                    "write the resulting values instead",
                )
            _refuse_expressions(value, path, field)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _refuse_expressions(value, path, f"{where}[{i}]")


def check_config_arg(entry: str) -> None:
    """One `--config KEY=VALUE`: bounded in size, and its value (which Snakemake may parse
    as YAML) within the alias and value limits."""
    label = "--config"
    if len(entry.encode("utf-8", "surrogateescape")) > MAX_CONFIG_ARG_BYTES:
        raise InputError(
            label,
            entry[:40],
            f"over {MAX_CONFIG_ARG_BYTES} bytes",
            "put large settings in a --configfile",
        )
    key, sep, value = entry.partition("=")
    if not sep:
        raise InputError(label, key, "not KEY=VALUE", "write --config KEY=VALUE")
    if "\x00" in entry:
        raise InputError(label, key, "contains a NUL byte", "remove it")
    try:
        parsed = parse_yaml(value, label) if value.strip() else None
    except InputError as exc:
        if exc.problem.startswith("not valid YAML"):
            return  # Snakemake keeps such a value as a plain string
        raise InputError(label, key, exc.problem, exc.fix) from exc
    if isinstance(parsed, dict | list):
        check_values(parsed, label, key)


def _profile_files(profiles: Iterable[str]) -> list[Path]:
    from snakemake.cli import get_profile_dir

    files = []
    for profile in profiles:
        entry = get_profile_dir(profile) if profile and profile != "none" else None
        if entry is not None:
            files.append(Path(entry[1]))
    return files


def check_snakemake_args(argv: Sequence[str]) -> None:
    """Check every config source a Snakemake command line names: --configfile(s),
    --config values and the configfile/config entries of its --profile files."""
    from snakemake.cli import get_argument_parser

    args, _ = get_argument_parser().parse_known_args(list(argv))
    errors: list[InputError] = []
    configfiles = [Path(p) for p in args.configfile or []]
    entries = list(args.config or [])
    for profile in _profile_files(args.profile or []):
        try:
            data = check_config_file(profile, what="profile")
        except InputError as exc:
            errors.append(exc)
            continue
        for key in ("configfile", "configfiles"):
            value = data.get(key, [])
            configfiles.extend(Path(p) for p in ([value] if isinstance(value, str) else value))
        config = data.get("config", [])
        if isinstance(config, Mapping):
            entries.extend(f"{k}={v}" for k, v in config.items())
        else:
            entries.extend(str(c) for c in ([config] if isinstance(config, str) else config))
    for path in configfiles:
        try:
            check_config_file(path)
        except InputError as exc:
            errors.append(exc)
    for entry in entries:
        try:
            check_config_arg(entry)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise InputErrors(errors)


def check_workflow_configs(configfiles: Iterable[Path], overrides: Mapping[str, Any]) -> None:
    """At the top of the Snakefile: every config file Snakemake was given (or the default),
    re-read through the checks, and the --config values as parsed."""
    files = [Path(f) for f in configfiles] or [Path(DEFAULT_CONFIG)]
    errors: list[InputError] = []
    for path in files:
        try:
            check_config_file(path)
        except InputError as exc:
            errors.append(exc)
    try:
        check_values(dict(overrides), "--config")
    except InputError as exc:
        errors.append(exc)
    if errors:
        raise InputErrors(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """`reproscope snakemake ARGS`: check the config sources, then run snakemake ARGS."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "snakemake":
        print("usage: reproscope snakemake [snakemake arguments]", file=sys.stderr)
        return 2
    try:
        check_snakemake_args(argv[1:])
    except (InputError, InputErrors) as exc:
        print(f"reproscope: the study cannot start:\n{exc}", file=sys.stderr)
        return 1
    os.execv(sys.executable, [sys.executable, "-m", "snakemake", *argv[1:]])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
