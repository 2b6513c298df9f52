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

Profiles are data too: Snakemake evaluates every `default-resources`, `set-resources` and
`set-threads` value as a Python expression (after expanding `$VARS` and `~`), from a
profile, the workflow profile or the command line alike. Each must be a literal number or
one plain word (`RESOURCE_VALUE`), checked before Snakemake parses it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
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
WORKFLOW_PROFILE = "profiles/default/config.yaml"
# Options (and profile keys) whose values Snakemake evaluates as Python expressions.
RESOURCE_OPTIONS = {
    "default-resources": "default_resources",
    "set-resources": "set_resources",
    "set-threads": "set_threads",
}
# A literal: one word of letters, digits and _ . : , - (a100, gpu:1, 4GB, n1-standard-4,
# 0.5), never a call, an operator over names, a quote, a '$' or '~', a space or a newline;
# a '.' only between digits (no attribute access) and no '__'.
RESOURCE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:,-]{0,127}")
RESOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


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


def resource_value_problem(value: Any) -> str | None:
    """Why Snakemake could evaluate value as more than a literal; None for a literal."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"{value!r} is not a number or a plain word"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if isinstance(value, int | float):
        return None
    if (
        not RESOURCE_VALUE.fullmatch(value)
        or "__" in value
        or re.search(r"\.[^0-9]|[^0-9]\.", value)
    ):
        return (
            f"{value[:60]!r} is not a literal number or one plain word (letters, digits and "
            "_ . : , -; a '.' only in a number): Snakemake evaluates such values as Python"
        )
    return None


def _resource_errors(file: str | Path, key: str, value: Any) -> list[InputError]:
    """Errors for one profile entry (default-resources, set-resources, set-threads) in
    any of the forms Snakemake accepts: a mapping, a list of 'A=B' strings, or one."""
    fix = (
        "write a number (mem_mb: 4000) or a plain word (slurm_partition: a100); Snakemake "
        "would evaluate anything else as Python, and reproscope refuses it"
    )
    errors: list[InputError] = []

    def name_error(field: str, name: Any, what: str) -> None:
        if not isinstance(name, str) or not RESOURCE_NAME.fullmatch(name):
            errors.append(
                InputError(file, field, f"{name!r} is not a {what} name", "use an identifier")
            )

    def value_error(field: str, value: Any) -> None:
        if problem := resource_value_problem(value):
            errors.append(InputError(file, field, problem, fix))

    nested = key == "set-resources"
    if value is None:
        return []
    if isinstance(value, Mapping):
        for name, item in value.items():
            field = f"{key}.{name}"
            name_error(field, name, "rule" if key != "default-resources" else "resource")
            if nested:
                if not isinstance(item, Mapping):
                    errors.append(InputError(file, field, "is not a mapping of resources", fix))
                    continue
                for res, res_value in item.items():
                    name_error(f"{field}.{res}", res, "resource")
                    value_error(f"{field}.{res}", res_value)
            else:
                value_error(field, item)
        return errors
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        return [InputError(file, key, f"{value!r} is not a mapping or a list", fix)]
    for i, entry in enumerate(entries):
        field = f"{key}[{i}]"
        if not isinstance(entry, str):
            errors.append(InputError(file, field, f"{entry!r} is not 'NAME=VALUE'", fix))
            continue
        target, sep, literal = entry.partition("=")
        if not sep:
            errors.append(InputError(file, field, f"{entry[:60]!r} is not 'NAME=VALUE'", fix))
            continue
        if nested:
            rule, colon, res = target.partition(":")
            name_error(field, rule if colon else None, "rule")
            name_error(field, res, "resource")
        else:
            name_error(field, target, "resource" if key == "default-resources" else "rule")
        value_error(field, literal)
    return errors


def check_profile_resources(data: Mapping[str, Any], file: str | Path) -> list[InputError]:
    """Every value of a profile that Snakemake evaluates is a literal (RESOURCE_VALUE)."""
    errors = []
    for key, value in data.items():
        option = key.replace("_", "-") if isinstance(key, str) else key
        if option in RESOURCE_OPTIONS:
            errors.extend(_resource_errors(file, option, value))
    return errors


def _raw_resource_args(argv: Sequence[str]) -> dict[str, list[str]]:
    """The command line's --default-resources, --set-resources and --set-threads values
    as written (Snakemake's own parser, with its evaluating parse functions removed)."""
    from snakemake.cli import get_argument_parser

    parser = get_argument_parser()
    for action in parser._actions:
        if action.dest in RESOURCE_OPTIONS.values():
            action.__class__ = argparse._StoreAction  # keep the strings, build nothing
    args, _ = parser.parse_known_args(list(argv))
    found = {}
    for option, dest in RESOURCE_OPTIONS.items():
        value = getattr(args, dest, None)
        if isinstance(value, list):
            found[option] = [str(v) for v in value]
    return found


def check_snakemake_args(argv: Sequence[str]) -> None:
    """Check every config source a Snakemake command line names: --configfile(s),
    --config values and the configfile/config entries of its --profile files."""
    from snakemake.cli import get_argument_parser

    args, _ = get_argument_parser().parse_known_args(list(argv))
    errors: list[InputError] = []
    configfiles = [Path(p) for p in args.configfile or []]
    entries = list(args.config or [])
    for option, values in _raw_resource_args(argv).items():
        errors.extend(_resource_errors(f"--{option}", option, values))
    profiles = _profile_files(args.profile or [])
    if args.workflow_profile and args.workflow_profile != "none":
        profiles += _profile_files([args.workflow_profile])
    elif args.workflow_profile != "none":
        # reproscope's own, beside the Snakefile (a YTE template of its code, so only the
        # values Snakemake evaluates are checked)
        workflow_dir = Path(args.snakefile).parent if args.snakefile else Path()
        own = workflow_dir / WORKFLOW_PROFILE
        if own.is_file():
            try:
                errors.extend(check_profile_resources(load_yaml(own), own))
            except InputError as exc:
                errors.append(exc)
    for profile in profiles:
        try:
            data = check_config_file(profile, what="profile")
        except InputError as exc:
            errors.append(exc)
            continue
        errors.extend(check_profile_resources(data, profile))
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
