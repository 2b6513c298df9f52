"""Safe YAML reading: size, encoding and alias-expansion limits before yaml.safe_load."""

from __future__ import annotations

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


def load_yaml(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read a YAML file that a user wrote; every failure names the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(
            path, "", f"cannot read the file ({exc.strerror})", "check the path"
        ) from exc
    if size > max_bytes:
        raise InputError(
            path,
            "",
            f"file is {size} bytes, over the {max_bytes}-byte limit",
            "manifests and configs are small; remove embedded data",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            path,
            "",
            f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})",
            "save the file as UTF-8",
        ) from exc
    loader = _loader_for(text)
    try:
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
