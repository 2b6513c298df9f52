"""Safe YAML reading: size, encoding and alias-expansion limits before yaml.safe_load."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from reproscope.errors import InputError

try:
    from yaml import CSafeLoader as _CSafeLoader
except ImportError:  # PyYAML built without libyaml
    _CSafeLoader = None

MAX_YAML_BYTES = 1_000_000
MAX_YAML_NODES = 100_000
MAX_INT = 2**63 - 1  # larger integers are no count, size or seed a study uses


def is_kind(path: str | Path, kind: str) -> bool:
    """Path.is_dir/is_file that answer False, not raise, for any name a user can write
    (too long, a NUL byte, no permission)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISDIR(mode) if kind == "dir" else stat.S_ISREG(mode)


def read_capped(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of a regular file of at most max_bytes; anything else is an InputError.

    A FIFO, a device or a directory is refused from os.stat, before it is opened (reading
    a FIFO would block); the file is opened non-blocking and read no further than the cap,
    so a file that grows after the stat cannot exhaust memory either.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(path, "", f"cannot read the file ({reason})", "check the path") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            path,
            "",
            f"not a regular file ({_kind(info.st_mode)})",
            "point at a YAML file; FIFOs, devices and directories are never read",
        )
    if info.st_size > max_bytes:
        raise InputError(
            path,
            "",
            f"file is {info.st_size} bytes, over the {max_bytes}-byte limit",
            "manifests and configs are small; remove embedded data",
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after the stat
                raise InputError(path, "", "not a regular file", "point at a YAML file")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read(max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(
            path, "", f"cannot read the file ({exc.strerror})", "check the path"
        ) from exc
    if len(raw) > max_bytes:
        raise InputError(
            path,
            "",
            f"file is over the {max_bytes}-byte limit",
            "manifests and configs are small; remove embedded data",
        )
    return raw


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def load_yaml(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read a YAML file that a user wrote; every failure names the file."""
    path = Path(path)
    return parse_bytes(read_capped(path, max_bytes), path)


def parse_bytes(raw: bytes, path: str | Path) -> Any:
    """The data of YAML file bytes (read with read_capped), checked as load_yaml checks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            path,
            "",
            f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})",
            "save the file as UTF-8",
        ) from exc
    data = parse_yaml(text, path)
    check_values(data, path)
    return data


def parse_yaml(text: str, path: str | Path) -> Any:
    """YAML text -> data, with the alias, nesting and duplicate-key limits; errors name path."""
    loader = None
    try:
        loader = _loader_for(text)  # the reader refuses NUL and other bytes here
        node = loader.get_single_node()
        if node is None:
            raise InputError(path, "", "the file is empty", "write the document")
        expanded = _expanded_size(node, {})
        duplicate = _duplicate_key(node, "", set())
        # The limits are checked on the composed tree, so it is built into data only once.
        data = loader.construct_document(node) if expanded <= MAX_YAML_NODES else None
    except yaml.YAMLError as exc:
        raise InputError(path, "", f"not valid YAML: {exc}", "fix the YAML syntax") from exc
    except RecursionError as exc:
        raise InputError(
            path,
            "",
            "the document is nested too deeply to read",
            "flatten the nested lists/mappings",
        ) from exc
    except (ValueError, OverflowError, TypeError) as exc:
        # e.g. an integer of thousands of digits (Python's int conversion limit), an
        # unhashable mapping key, a date out of range
        problem = (
            "an integer has thousands of digits"
            if "integer string conversion" in str(exc)
            else f"a value cannot be read ({exc})"
        )
        raise InputError(path, "", problem, "write plain, short values") from exc
    finally:
        if loader is not None:
            loader.dispose()
    if expanded > MAX_YAML_NODES:
        raise InputError(
            path,
            "",
            f"aliases expand to {expanded} nodes (limit {MAX_YAML_NODES})",
            "remove the nested anchors/aliases",
        )
    if duplicate:
        field, first, second = duplicate
        raise InputError(
            path,
            field,
            f"the key is written twice (lines {first} and {second}); YAML would "
            "silently keep the last one",
            "keep a single entry for the key",
        )
    return data


def check_values(data: Any, path: str | Path, where: str = "") -> None:
    """Plain data only: string keys, finite floats, integers of at most 64 bits, strings
    without NUL, and none of YAML's dates or binary values."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise InputError(
                    path,
                    f"{where}[{key!r}]" if where else repr(key),
                    f"the key is not text but {type(key).__name__} {key!r}",
                    "write field names as text (quote it)",
                )
            check_values(value, path, f"{where}.{key}" if where else key)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_values(value, path, f"{where}[{i}]")
    elif isinstance(data, bool) or data is None:
        return
    elif isinstance(data, int):
        if abs(data) > MAX_INT:
            raise InputError(
                path, where, "the integer is too large", f"use a value within +-{MAX_INT}"
            )
    elif isinstance(data, float):
        if not math.isfinite(data):
            raise InputError(path, where, f"{data} is not a finite number", "write a finite number")
    elif isinstance(data, str):
        if "\x00" in data:
            raise InputError(path, where, "the text contains a NUL byte", "remove it")
    else:
        raise InputError(
            path,
            where,
            f"a {type(data).__name__} value is not allowed",
            "write a number, text, true/false, a list or a mapping (quote dates)",
        )


def _loader_for(text: str) -> yaml.SafeLoader:
    """libyaml's safe loader when present (fast); the pure-Python one when the text has
    characters it would pass over, so that they are reported."""
    if _CSafeLoader is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return yaml.SafeLoader(text)
    return _CSafeLoader(text)


def _duplicate_key(node: yaml.Node, where: str, seen: set[int]) -> tuple[str, int, int] | None:
    """(field path, first line, second line) of the first mapping key written twice."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            found = _duplicate_key(child, f"{where}[{i}]", seen)
            if found:
                return found
    elif isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            field = f"{where}.{key.value}" if where else key.value
            line = key.start_mark.line + 1
            if (key.tag, key.value) in lines:
                return field, lines[key.tag, key.value], line
            lines[key.tag, key.value] = line
            found = _duplicate_key(value, field, seen)
            if found:
                return found
    return None


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count after alias expansion; aliases share node objects, so memoise by id."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive aliases
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = min(total, MAX_YAML_NODES + 1)
    return memo[key]
