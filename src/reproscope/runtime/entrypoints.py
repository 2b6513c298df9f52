"""Architecture entry points: the one place a manifest names code, and the policy that keeps
it inside the packages pinned in the manifest's environment.

`check_entry_point` is the static check (the workflow's interpreter, without importing the
framework); `resolve_entry_point` repeats it inside the environment on the object actually
resolved, before the caller calls it. Standard library only: it runs in every environment.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Iterable
from typing import Any

from reproscope.runtime.architectures import SHIPPED_ENTRY_POINTS

_COMPONENT = r"[A-Za-z][A-Za-z0-9_]*"
ENTRY_POINT = re.compile(rf"({_COMPONENT}(?:\.{_COMPONENT})*):({_COMPONENT}(?:\.{_COMPONENT})*)")


class EntryPointRefused(RuntimeError):
    """An entry point that reaches outside the packages pinned in its environment."""


def allowed_modules(entry_point: str, packages: Iterable[str]) -> list[str]:
    """Module prefixes the entry point may resolve into: the import names of the pinned
    packages, plus for a builder reproscope ships (and only then) its own module."""
    allowed = sorted(p for p in packages if p != "reproscope")
    if entry_point in SHIPPED_ENTRY_POINTS:
        allowed.append(entry_point.partition(":")[0])
    return allowed


def _inside(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def check_entry_point(entry_point: str, packages: Iterable[str]) -> str | None:
    """What is wrong with entry_point for an environment whose pinned packages import as
    `packages`; None when it may be resolved."""
    match = ENTRY_POINT.fullmatch(entry_point)
    if not match:
        return (
            f"{entry_point!r} is not 'module:attribute.path' of public names "
            "(no component may start with '_')"
        )
    module, attrs = match.groups()
    allowed = allowed_modules(entry_point, packages)
    if module.split(".")[0] in sys.stdlib_module_names:
        return f"module {module!r} is in the Python standard library"
    if module.split(".")[0] == "reproscope" and entry_point not in SHIPPED_ENTRY_POINTS:
        return (
            f"{entry_point!r} is not one of the architectures reproscope ships "
            f"({', '.join(sorted(SHIPPED_ENTRY_POINTS))})"
        )
    if not _inside(module, allowed):
        return f"module {module!r} is not provided by a package pinned in the environment"
    for attr in attrs.split("."):
        if attr in sys.stdlib_module_names:
            return f"the attribute path reaches {attr!r}, a standard-library module"
    return None


def resolve_entry_point(entry_point: str, packages: Iterable[str]) -> Any:
    """'module:attr.path' -> the callable, checked on what was resolved: every module
    passed through and the callable's defining module lie inside the allowed packages."""
    packages = list(packages)
    problem = check_entry_point(entry_point, packages)
    if problem:
        raise EntryPointRefused(f"architecture.entry_point refused: {problem}")
    allowed = allowed_modules(entry_point, packages)
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
                f"defined in {where!r}, outside the allowed modules {allowed}"
            )
    if not callable(obj) or isinstance(obj, types.ModuleType):
        raise EntryPointRefused(f"architecture.entry_point {entry_point!r} is not callable")
    return obj


def _defining_module(obj: Any) -> str | None:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else None


def build_architecture(arch: dict[str, Any]) -> Any:
    """Call a job's architecture entry point (resolved and checked against
    arch['packages'], the import names of the environment's pinned packages)."""
    if "packages" not in arch:
        raise EntryPointRefused(
            "the job names no allowed packages for its architecture entry point; "
            "jobs are written by the workflow (rules/common.smk), not by hand"
        )
    builder = resolve_entry_point(arch["entry_point"], arch["packages"])
    return builder(*arch["args"], **arch["kwargs"])
