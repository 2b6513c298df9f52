"""JSON Schema (2020-12) validation with messages that name the field and the fix."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from reproscope.errors import InputError, InputErrors


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("reproscope.schemas").joinpath(f"{name}.schema.yaml").read_text()
    schema = yaml.safe_load(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 224.0 as an integer; a size, count or index written as a float
    # is a mistake (and breaks range() and indexing in jobs), so only int is.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@cache
def _validator(name: str) -> Any:
    """One validator per schema (validators are immutable; reused for every file)."""
    return _Validator(load_schema(name))


def validate(data: Any, schema_name: str, file: str | Path) -> None:
    """Raise InputErrors listing every violation of the named schema in data."""
    validator = _validator(schema_name)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        unique: dict[str, InputError] = {}  # an identifier can break 'pattern' and 'not' alike
        for error in errors:
            converted = _to_input_error(error, file)
            unique.setdefault(str(converted), converted)
        raise InputErrors(list(unique.values()))


def field_path(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".")


BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _to_input_error(error: jsonschema.ValidationError, file: str | Path) -> InputError:
    field = field_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        name = f"{field}.{missing}" if field else missing
        if missing == "sha256" and name == "source.sha256":
            return InputError(
                file,
                name,
                "a remote source (http/https url or pypi) has no checksum",
                "add 'sha256:' with the 64 lower-case hex digits of the artifact's sha256",
            )
        desc = _describe(schema.get("properties", {}).get(missing, {}))
        return InputError(file, name, "required field is missing", f"add '{missing}'{desc}")
    if validator == "additionalProperties" and value is False:
        allowed = ", ".join(sorted(schema.get("properties", {})))
        extra = [str(k) for k in error.instance if k not in schema.get("properties", {})]
        name = ".".join(filter(None, [field, extra[0] if extra else ""]))
        return InputError(file, name, "unknown field", f"remove it or use one of: {allowed}")
    if validator == "enum":
        allowed = ", ".join(map(repr, value))
        return InputError(
            file, field, f"{error.instance!r} is not allowed", f"use one of {allowed}"
        )
    if validator == "const":
        return InputError(file, field, f"{error.instance!r} is not allowed", f"use {value!r}")
    if validator == "type":
        return InputError(
            file,
            field,
            f"expected {value}, got {type(error.instance).__name__}",
            f"write a value of type {value}",
        )
    if validator in BOUNDS:
        return InputError(
            file,
            field,
            f"{error.instance!r} is out of range",
            f"use a value {BOUNDS[validator]} {value}{_describe(schema)}",
        )
    if validator == "pattern" or (validator == "not" and "pattern" in str(value)):
        identifier = "not" in schema  # the identifier definition: a name, never a path
        hint = (
            " (names: letters, digits, '.', '_', '-'; no path separators or '..')"
            if identifier
            else ""
        )
        return InputError(
            file,
            field,
            f"{error.instance!r} has the wrong form",
            f"match {_shown(schema.get('pattern', 'the allowed form'))}{hint}{_describe(schema)}",
        )
    if validator == "oneOf" and (field == "source" or field.endswith(".source")):
        return InputError(
            file,
            field,
            "a source needs exactly one of url, pypi or derived",
            "keep one of 'url', 'pypi', 'derived'",
        )
    if validator == "uniqueItems":
        return InputError(file, field, "items repeat", "list each item once")
    if validator in {"minItems", "maxItems", "minProperties"}:
        return InputError(file, field, error.message, f"respect {validator} {value}")
    return InputError(
        file, field, error.message, f"see the schema ({validator}){_describe(schema)}"
    )


def _shown(pattern: str) -> str:
    return pattern.replace("(?![\\s\\S])", "$")


def _describe(schema: Any) -> str:
    if isinstance(schema, dict) and schema.get("description"):
        return f" ({schema['description'].strip()})"
    return ""
