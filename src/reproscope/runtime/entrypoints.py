"""Architecture entry points: the one place a manifest names code, and the registry that
keeps it to reviewed model builders.

A manifest (or an ablation or diagnosis variant) may name only a builder listed in
`reproscope.runtime.builders` (reviewed literals), with `args`/`kwargs` that are typed
scalars within the ranges or values its entry gives (never a path). Nothing of a
framework's own namespace (torch, numpy, tensorflow, keras outside keras.applications) is
a builder, whatever is pinned. `check_entry_point` and `check_builder_args` are the static
checks (the workflow's interpreter, without importing the framework); `resolve_entry_point`
and `build_architecture` repeat them inside the environment, on the object actually
resolved, before it is called. Standard library only: it runs in every environment.
"""

from __future__ import annotations

import importlib
import math
import re
import types
from collections.abc import Iterable
from typing import Any

from reproscope.runtime import builders

_COMPONENT = r"[A-Za-z][A-Za-z0-9_]*"
ENTRY_POINT = re.compile(rf"({_COMPONENT}(?:\.{_COMPONENT})*):({_COMPONENT}(?:\.{_COMPONENT})*)")
REGISTRY_FILE = "src/reproscope/runtime/builders.py"
TYPES = {"int", "float", "bool", "str", "null"}


class EntryPointRefused(RuntimeError):
    """An entry point that is not a registered builder, or arguments its entry refuses."""


def _load_registry() -> dict[str, dict[str, Any]]:
    registry = builders.BUILDERS
    for name, entry in registry.items():  # the file is reviewed; these hold it to its rules
        if not ENTRY_POINT.fullmatch(name) or set(entry) != {"package", "pinned", "params"}:
            raise ValueError(f"{REGISTRY_FILE}: malformed entry {name!r}")
        if not _inside(name.partition(":")[0], [entry["package"]]):
            raise ValueError(f"{REGISTRY_FILE}: {name!r} lies outside its package")
        for param in entry["params"]:
            kinds = _kinds(param)
            if not kinds or not kinds <= TYPES or ("str" in kinds and "values" not in param):
                raise ValueError(f"{REGISTRY_FILE}: {name!r} parameter {param.get('name')!r}")
    return registry


def _kinds(param: dict[str, Any]) -> set[str]:
    kind = param.get("type")
    return set(kind) if isinstance(kind, list) else {kind}


def _inside(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


BUILDERS: dict[str, dict[str, Any]] = _load_registry()
# The builders reproscope ships (the package is never allowed as a whole: its modules
# import subprocess); they need no pinned package of their own.
SHIPPED_ENTRY_POINTS = frozenset(n for n in BUILDERS if n.startswith("reproscope."))


def check_entry_point(entry_point: str, packages: Iterable[str] | None = None) -> str | None:
    """What is wrong with entry_point; None when it is a registered builder (and, given
    `packages`, the import names of the environment's pinned packages, its package is pinned)."""
    if not isinstance(entry_point, str) or not ENTRY_POINT.fullmatch(entry_point):
        return (
            f"{entry_point!r} is not 'module:attribute.path' of public names "
            "(no component may start with '_')"
        )
    entry = BUILDERS.get(entry_point)
    if entry is None:
        return f"{entry_point!r} is not a registered model builder ({REGISTRY_FILE})"
    if packages is not None and entry["pinned"]:
        top = entry["package"].split(".")[0]
        if top not in set(packages):
            return (
                f"builder {entry_point!r} needs package {top!r}, which the environment does not pin"
            )
    return None


def _value_problem(value: Any, param: dict[str, Any]) -> str | None:
    kinds = _kinds(param)
    if "values" in param:
        if any(value is v or (type(value) is type(v) and value == v) for v in param["values"]):
            return None
        if isinstance(value, str) and ("/" in value or "\\" in value or value[:1] in ".~"):
            return f"{value!r} looks like a path; no builder argument is a path"
        return f"{value!r} is not one of {param['values']}"
    if value is None:
        return None if "null" in kinds else "null is not allowed"
    if isinstance(value, bool):
        return None if "bool" in kinds else f"{value!r} is a boolean, not {param['type']}"
    if isinstance(value, int) and ({"int", "float"} & kinds):
        number: float = value
    elif isinstance(value, float) and "float" in kinds:
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
        number = value
    else:
        return f"{value!r} ({type(value).__name__}) is not of type {param['type']}"
    low, high = param.get("min"), param.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        return f"{value!r} is outside [{low}, {high}]"
    return None


def check_builder_args(entry_point: str, args: Any, kwargs: Any) -> list[tuple[str, str]]:
    """(field, problem) for each argument the builder's registry entry refuses; the
    entry point itself must be registered (check_entry_point)."""
    entry = BUILDERS.get(entry_point)
    if entry is None:
        return []
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return [("architecture", "args must be a list and kwargs a mapping")]
    params = entry["params"]
    by_name = {p["name"]: p for p in params}
    problems: list[tuple[str, str]] = []
    if len(args) > len(params):
        problems.append(
            (
                f"architecture.args[{len(params)}]",
                f"{entry_point!r} takes at most {len(params)} positional arguments "
                f"({', '.join(by_name)})",
            )
        )
    given = set()
    for i, (value, param) in enumerate(zip(args, params, strict=False)):
        given.add(param["name"])
        if problem := _value_problem(value, param):
            problems.append((f"architecture.args[{i}]", f"{param['name']}: {problem}"))
    for key, value in kwargs.items():
        field = f"architecture.kwargs.{key}"
        if key not in by_name:
            problems.append(
                (
                    field,
                    f"{entry_point!r} has no registered argument {key!r} ({', '.join(by_name)})",
                )
            )
        elif key in given:
            problems.append((field, f"{key!r} is also given positionally in args"))
        else:
            given.add(key)
            if problem := _value_problem(value, by_name[key]):
                problems.append((field, problem))
    for param in params:
        if param.get("required") and param["name"] not in given:
            problems.append(("architecture.kwargs", f"{param['name']!r} is required"))
    return problems


def resolve_entry_point(entry_point: str, packages: Iterable[str]) -> Any:
    """'module:attr.path' -> the callable, checked on what was resolved: it is a registered
    builder, and every module passed through and the callable's defining module lie inside
    the builder's registered package."""
    problem = check_entry_point(entry_point, list(packages))
    if problem:
        raise EntryPointRefused(f"architecture.entry_point refused: {problem}")
    allowed = [BUILDERS[entry_point]["package"]]
    module_name, _, attr_path = entry_point.partition(":")
    obj: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise EntryPointRefused(
                f"architecture.entry_point {entry_point!r}: no attribute {attr!r} "
                f"in this environment ({exc})"
            ) from exc
        where = obj.__name__ if isinstance(obj, types.ModuleType) else _defining_module(obj)
        if where is None or not _inside(where, allowed):
            raise EntryPointRefused(
                f"architecture.entry_point refused: {entry_point!r} reaches {attr!r}, "
                f"defined in {where!r}, outside the builder's package {allowed[0]!r}"
            )
    if not callable(obj) or isinstance(obj, types.ModuleType):
        raise EntryPointRefused(f"architecture.entry_point {entry_point!r} is not callable")
    return obj


def _defining_module(obj: Any) -> str | None:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else None


def build_architecture(arch: dict[str, Any]) -> Any:
    """Call a job's architecture entry point (resolved and checked against the registry
    and arch['packages'], the import names of the environment's pinned packages)."""
    if "packages" not in arch:
        raise EntryPointRefused(
            "the job names no allowed packages for its architecture entry point; "
            "jobs are written by the workflow (rules/common.smk), not by hand"
        )
    problem = check_entry_point(arch["entry_point"], arch["packages"])
    if problem:
        raise EntryPointRefused(f"architecture.entry_point refused: {problem}")
    # the arguments are checked before the builder's module is even imported
    problems = check_builder_args(arch["entry_point"], arch.get("args"), arch.get("kwargs"))
    if problems:
        raise EntryPointRefused(
            "architecture refused: " + "; ".join(f"{f}: {p}" for f, p in problems)
        )
    builder = resolve_entry_point(arch["entry_point"], arch["packages"])
    return builder(*arch["args"], **arch["kwargs"])
