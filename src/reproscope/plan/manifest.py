"""Model manifests: load, validate against the schema, and check what a schema cannot."""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproscope.acquire.preprocess import antialias_problem
from reproscope.errors import InputError, InputErrors
from reproscope.plan.parse_cache import ParseCache
from reproscope.plan.schema import validate
from reproscope.runtime.entrypoints import BUILDERS, check_builder_args, check_entry_point
from reproscope.runtime.runners import FRAMEWORKS
from reproscope.yamlio import is_kind, parse_bytes, read_capped

ARTIFACT_SUFFIX = {facts.format: facts.suffix for facts in FRAMEWORKS.values()}
MAX_LABELS_BYTES = 10_000_000


@dataclass(frozen=True)
class Manifest:
    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def model(self) -> str:
        return self.data["model"]

    @property
    def framework(self) -> str:
        return self.data["framework"]["name"]

    @property
    def environment(self) -> str:
        return self.data["environment"]

    @property
    def source(self) -> dict[str, Any]:
        return self.data["source"]

    @property
    def inputs(self) -> dict[str, Any]:
        return self.data["inputs"]

    @property
    def outputs(self) -> dict[str, Any]:
        return self.data["outputs"]

    @property
    def artifact_suffix(self) -> str:
        return ARTIFACT_SUFFIX[self.source["format"]]

    @property
    def labels_path(self) -> Path:
        return self.path.parent / self.outputs["labels"]["file"]


def load_manifest(path: str | Path, parsed: ParseCache | None = None) -> Manifest:
    """Read and validate one manifest; raise InputErrors naming the file and fields.

    With a parse cache, a manifest whose bytes were parsed and schema-checked before by
    the same code is taken from it; the checks that read other files always run."""
    path = Path(path)
    raw = read_capped(path)
    data = parsed.get(raw) if parsed is not None else None
    checked = data is not None
    if data is None:
        data = _parse_and_validate(raw, path)
    manifest = Manifest(path=path, data=data)
    errors = semantic_errors(manifest)
    if errors:
        raise InputErrors(errors)
    if parsed is not None and not checked:
        parsed.put(raw, data)  # only a manifest that passed every check
    return manifest


def _parse_and_validate(raw: bytes, path: Path) -> dict[str, Any]:
    data = parse_bytes(raw, path)
    if not isinstance(data, dict):
        raise InputError(
            path,
            "",
            "a manifest is a mapping of fields",
            "write 'field: value' lines, like the manifests in manifests/",
        )
    validate(data, "manifest", path)
    return data


def semantic_errors(m: Manifest, strict_labels: bool = True) -> list[InputError]:
    """Checks a schema cannot express; strict_labels=False allows an offset past the
    label list (a deliberately wrong convention in an ablation)."""
    errors: list[InputError] = []
    fmt = m.source["format"]
    expected = FRAMEWORKS[m.framework].format
    if fmt != expected:
        errors.append(
            InputError(
                m.path,
                "source.format",
                f"{fmt!r} cannot run on {m.framework}",
                f"use {expected!r} or change framework.name",
            )
        )
    if fmt == "pytorch-state-dict" and "architecture" not in m.data:
        errors.append(
            InputError(
                m.path,
                "architecture",
                "a state_dict has no architecture",
                "add architecture.entry_point ('module:callable'), args, kwargs",
            )
        )
    if "random_init" in m.source:
        errors.extend(_random_init_errors(m))
    elif fmt != "pytorch-state-dict" and "architecture" in m.data:
        errors.append(
            InputError(
                m.path,
                "architecture",
                f"unused for format {fmt!r}",
                "remove it; only state_dict sources need an architecture",
            )
        )
    errors.extend(architecture_errors(m))
    if m.source.get("unsafe_pickle") and fmt != "pytorch-state-dict":
        errors.append(
            InputError(m.path, "source.unsafe_pickle", "only applies to PyTorch files", "remove it")
        )
    problem = antialias_problem(m.inputs["resize"])
    if problem:
        errors.append(
            InputError(
                m.path,
                "inputs.resize.antialias",
                problem,
                "set antialias to match, or change library/method",
            )
        )
    outputs = m.outputs
    if outputs["top_k"] > outputs["num_classes"]:
        errors.append(
            InputError(
                m.path,
                "outputs.top_k",
                f"top_k {outputs['top_k']} is larger than num_classes {outputs['num_classes']}",
                "use a top_k of at most num_classes (5 for ImageNet)",
            )
        )
    url = m.source.get("url")
    if url is not None:
        errors.extend(url_errors(url, m.path, "source.url"))
    errors.extend(_label_errors(m, strict_labels))
    return errors


def architecture_errors(m: Manifest) -> list[InputError]:
    """architecture.entry_point names a registered builder (runtime/builders.py) and
    its args/kwargs are the typed scalars that builder's entry allows."""
    arch = m.data.get("architecture")
    if not isinstance(arch, dict) or "entry_point" not in arch:
        return []
    entry_point = arch["entry_point"]
    problem = check_entry_point(entry_point)
    if problem:
        return [
            InputError(
                m.path,
                "architecture.entry_point",
                f"{problem}; nothing else is called",
                f"name one of the registered builders ({', '.join(sorted(BUILDERS))}); "
                "adding a builder is a reviewed change to src/reproscope/runtime/builders.py",
            )
        ]
    return [
        InputError(
            m.path,
            field,
            problem,
            f"give {entry_point!r} only the arguments, types and values its entry in "
            "src/reproscope/runtime/builders.py allows",
        )
        for field, problem in check_builder_args(
            entry_point, arch.get("args", []), arch.get("kwargs", {})
        )
    ]


RANDOM_INIT_FORMATS = ("keras", "pytorch-state-dict")


def _random_init_errors(m: Manifest) -> list[InputError]:
    errors = []
    if m.source["format"] not in RANDOM_INIT_FORMATS:
        errors.append(
            InputError(
                m.path,
                "source.random_init",
                f"cannot build format {m.source['format']!r}",
                f"use one of {list(RANDOM_INIT_FORMATS)}, or derive the "
                "format from such a manifest (source.derived)",
            )
        )
    if "architecture" not in m.data:
        errors.append(
            InputError(
                m.path,
                "architecture",
                "random weights need the architecture they fill",
                "add architecture.entry_point ('module:callable' from a pinned package), "
                "args, kwargs",
            )
        )
    return errors


def url_errors(url: str, file: str | Path, field: str) -> list[InputError]:
    """A URL a file may name: parseable, and with no user name or password in it."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError as exc:
        return [InputError(file, field, f"not a valid URL ({exc})", "write a plain URL")]
    if "@" in parts.netloc:
        return [
            InputError(
                file,
                field,
                "the URL carries credentials (user:password@); they would be written to "
                "logs and Snakemake's metadata",
                "remove them from the URL; put them in ~/.netrc or the environment instead",
            )
        ]
    return []


def _label_errors(m: Manifest, strict_labels: bool) -> list[InputError]:
    outputs = m.outputs
    try:
        labels = m.labels_path
        raw = read_capped(labels, MAX_LABELS_BYTES)
    except InputError as exc:
        return [
            InputError(
                m.path,
                "outputs.labels.file",
                f"{outputs['labels']['file']!r}: {exc.problem}",
                "point it at the label list (a plain text file), relative to the manifest",
            )
        ]
    digest = hashlib.sha256(raw).hexdigest()
    if digest != outputs["labels"]["sha256"]:
        return [
            InputError(
                m.path,
                "outputs.labels.sha256",
                f"{labels} has sha256 {digest}, not the {outputs['labels']['sha256']} written here",
                "the label list changed: restore it, or update the checksum on purpose",
            )
        ]
    try:
        count = len(label_lines(raw.decode("utf-8")))
    except UnicodeDecodeError:
        return [
            InputError(
                m.path, "outputs.labels.file", f"{labels} is not UTF-8 text", "save it as UTF-8"
            )
        ]
    expected = count + outputs["label_offset"]
    if strict_labels and expected != outputs["num_classes"]:
        return [
            InputError(
                m.path,
                "outputs.num_classes",
                f"{count} labels + offset {outputs['label_offset']} make {expected} outputs, "
                f"not num_classes {outputs['num_classes']}",
                "make num_classes = number of labels + label_offset (fix whichever is wrong)",
            )
        ]
    return []


def label_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_label_list(path: Path) -> list[str]:
    return label_lines(path.read_text())


def load_manifests(directory: str | Path, parsed: ParseCache | None = None) -> dict[str, Manifest]:
    """Every *.yaml manifest in directory, by name; all errors reported together."""
    directory = Path(directory)
    if not is_kind(directory, "dir"):
        raise InputError(directory, "manifests", "not a directory", "set config 'manifests'")
    manifests: dict[str, Manifest] = {}
    folded: dict[str, Manifest] = {}  # result directories collide on case-insensitive disks
    errors: list[InputError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            manifest = load_manifest(path, parsed)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        other = folded.get(manifest.name.casefold())
        if other is not None:
            errors.append(
                InputError(
                    path,
                    "name",
                    f"{manifest.name!r} is also the name in {other.path}"
                    + ("" if other.name == manifest.name else f" (as {other.name!r})"),
                    "give each manifest a unique name (names differing only in case collide)",
                )
            )
            continue
        manifests[manifest.name] = folded[manifest.name.casefold()] = manifest
    if errors:
        raise InputErrors(errors)
    return manifests
