"""Model manifests: load, validate against the schema, and check what a schema cannot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproscope.errors import InputError, InputErrors
from reproscope.fetch import sha256_file
from reproscope.preprocess import antialias_problem
from reproscope.schema import validate
from reproscope.yamlio import load_yaml

FORMAT_OF_FRAMEWORK = {
    "pytorch": "pytorch-state-dict",
    "onnxruntime": "onnx",
    "tensorflow": "keras",
}
ARTIFACT_SUFFIX = {"pytorch-state-dict": "pt", "onnx": "onnx", "keras": "keras"}


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


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate one manifest; raise InputErrors naming the file and fields."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(
            path,
            "",
            "a manifest is a mapping of fields",
            "write 'field: value' lines, like the manifests in manifests/",
        )
    validate(data, "manifest", path)
    manifest = Manifest(path=path, data=data)
    errors = semantic_errors(manifest)
    if errors:
        raise InputErrors(errors)
    return manifest


def semantic_errors(m: Manifest, strict_labels: bool = True) -> list[InputError]:
    """Checks a schema cannot express; strict_labels=False allows an offset past the
    label list (a deliberately wrong convention in an ablation)."""
    errors: list[InputError] = []
    fmt = m.source["format"]
    expected = FORMAT_OF_FRAMEWORK[m.framework]
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
    labels = m.labels_path
    if not labels.is_file():
        errors.append(
            InputError(
                m.path,
                "outputs.labels.file",
                f"{labels} does not exist",
                "point it at the label list, relative to the manifest",
            )
        )
    else:
        digest = sha256_file(labels)
        if digest != m.outputs["labels"]["sha256"]:
            errors.append(
                InputError(
                    m.path,
                    "outputs.labels.sha256",
                    f"{labels} has sha256 {digest}, not the "
                    f"{m.outputs['labels']['sha256']} written here",
                    "the label list changed: restore it, or update the checksum on purpose",
                )
            )
        else:
            count = len(read_label_list(labels))
            if strict_labels and count + m.outputs["label_offset"] > m.outputs["num_classes"]:
                errors.append(
                    InputError(
                        m.path,
                        "outputs.label_offset",
                        f"{count} labels + offset {m.outputs['label_offset']} exceed "
                        f"num_classes {m.outputs['num_classes']}",
                        "fix the offset or num_classes",
                    )
                )
    return errors


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


def read_label_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_manifests(directory: str | Path) -> dict[str, Manifest]:
    """Every *.yaml manifest in directory, by name; all errors reported together."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, "manifests", "not a directory", "set config 'manifests'")
    manifests: dict[str, Manifest] = {}
    errors: list[InputError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            manifest = load_manifest(path)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        if manifest.name in manifests:
            errors.append(
                InputError(
                    path,
                    "name",
                    f"{manifest.name!r} is also the name in {manifests[manifest.name].path}",
                    "give each manifest a unique name",
                )
            )
            continue
        manifests[manifest.name] = manifest
    if errors:
        raise InputErrors(errors)
    return manifests
