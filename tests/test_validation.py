"""The bad-input corpus (tests/bad_inputs): every case is rejected by the loaders, before any
job runs, with an error that names the file, the field and the fix; the shipped inputs load.

Paths in the study configs are relative to the repository root, so those tests chdir there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from reproscope.errors import InputError, InputErrors
from reproscope.plan.manifest import load_manifest, load_manifests
from reproscope.plan.study import load_study
from reproscope.yamlio import MAX_YAML_BYTES, load_yaml

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "bad_inputs"
DOC = "(document)"  # the field InputError names for whole-file problems


@dataclass(frozen=True)
class Case:
    path: str  # relative to tests/bad_inputs: a manifest, a config, or a study/<case> directory
    field: str  # the field path the error must name
    file: str | None = None  # name of the offending file, when it is not `path` itself
    error: type[Exception] = InputErrors
    marker: str | None = None  # a file the case would create if anything in it executed

    @property
    def id(self) -> str:
        return self.path.removesuffix(".yaml")


MANIFEST_CASES = [
    Case("manifest/missing-name.yaml", "name"),
    Case("manifest/missing-inputs-dtype.yaml", "inputs.dtype"),
    Case("manifest/unknown-top-level-field.yaml", "weights_url"),
    Case("manifest/unknown-resize-field.yaml", "inputs.resize.interpolation"),
    Case("manifest/wrong-type-num-classes.yaml", "outputs.num_classes"),
    Case("manifest/wrong-type-size.yaml", "inputs.size"),
    Case("manifest/wrong-type-antialias.yaml", "inputs.resize.antialias"),
    Case("manifest/resize-method-lanczos.yaml", "inputs.resize.method"),
    Case("manifest/color-order-rgba.yaml", "inputs.color_order"),
    Case("manifest/layout-chwn.yaml", "inputs.layout"),
    Case("manifest/crop-ratio-zero.yaml", "inputs.crop_ratio"),
    Case("manifest/crop-ratio-1.5.yaml", "inputs.crop_ratio"),
    Case("manifest/std-zero.yaml", "inputs.normalize.std[1]"),
    Case("manifest/antialias-impossible.yaml", "inputs.resize.antialias"),
    Case("manifest/name-path-separator.yaml", "name"),
    Case("manifest/name-dotdot.yaml", "name"),
    Case("manifest/name-parent-dir.yaml", "name"),
    Case("manifest/model-backslash.yaml", "model"),
    Case("manifest/schema-version-2.yaml", "schema_version"),
    Case("manifest/url-ftp.yaml", "source.url"),
    Case("manifest/url-s3.yaml", "source.url"),
    Case("manifest/https-without-sha256.yaml", "source.sha256"),
    Case("manifest/pypi-without-sha256.yaml", "source.sha256"),
    Case("manifest/pypi-unpinned.yaml", "source.pypi.requirement"),
    Case("manifest/sha256-malformed.yaml", "source.sha256"),
    Case("manifest/source-url-and-pypi.yaml", "source"),
    Case("manifest/framework-format-mismatch.yaml", "source.format"),
    Case("manifest/architecture-missing.yaml", "architecture"),
    Case("manifest/entry-point-expression.yaml", "architecture.entry_point"),
    Case("manifest/labels-sha256-mismatch.yaml", "outputs.labels.sha256"),
    Case("manifest/labels-file-missing.yaml", "outputs.labels.file"),
    Case("manifest/claim-top1-over-100.yaml", "claims.top1"),
    Case("manifest/duplicate-key.yaml", "inputs.crop_ratio", error=InputError),
    Case("manifest/alias-bomb.yaml", DOC, error=InputError),
    Case("manifest/non-utf8.yaml", DOC, error=InputError),
    Case("manifest/empty.yaml", DOC, error=InputError),
    Case("manifest/invalid-yaml.yaml", DOC, error=InputError),
    Case("manifest/not-a-mapping.yaml", DOC, error=InputError),
    # issue 12: names, numbers and values that used to crash or break jobs
    Case("manifest/entry-point-private.yaml", "architecture.entry_point"),
    Case("manifest/name-trailing-newline.yaml", "name"),
    Case("manifest/size-float.yaml", "inputs.size[0]"),
    Case("manifest/top-k-float.yaml", "outputs.top_k"),
    Case("manifest/top-k-over-num-classes.yaml", "outputs.top_k"),
    Case("manifest/num-classes-label-mismatch.yaml", "outputs.num_classes"),
    Case("manifest/std-nan.yaml", "inputs.normalize.std[0]", error=InputError),
    Case("manifest/scale-inf.yaml", "inputs.normalize.scale", error=InputError),
    Case("manifest/crop-ratio-nan.yaml", "inputs.crop_ratio", error=InputError),
    Case("manifest/claim-inf.yaml", "claims.top1", error=InputError),
    Case("manifest/integer-key.yaml", "1", error=InputError),
    Case("manifest/nul-byte-escaped.yaml", "description", error=InputError),
    Case("manifest/huge-integer.yaml", DOC, error=InputError),
    Case("manifest/large-integer.yaml", "outputs.label_offset", error=InputError),
    Case("manifest/url-credentials.yaml", "source.url"),
    Case(
        "manifest/python-tag.yaml",
        DOC,
        error=InputError,
        marker="/tmp/reproscope-bad-input-python-tag",
    ),
]

CONFIG_CASES = [
    Case("config/missing-timing.yaml", "study.timing"),
    Case("config/unknown-study-field.yaml", "study.batch_size"),
    Case("config/wrong-type-threads.yaml", "study.threads"),
    Case("config/batch-size-zero.yaml", "study.batch_sizes[0]"),
    Case("config/batch-size-negative.yaml", "study.accuracy_batch_size"),
    Case("config/unknown-device.yaml", "study.devices[1]"),
    Case("config/models-missing-manifest.yaml", "study.models[1]"),
    Case("config/model-name-path.yaml", "study.models[0]"),
    Case("config/unknown-dataset.yaml", "study.dataset"),
    Case("config/dataset-url-s3.yaml", "datasets.imagenet-sample.url"),
    Case("config/unknown-system.yaml", "study.systems"),
    Case("config/unknown-environment-override.yaml", "study.environment"),
    Case("config/max-duration-zero.yaml", "study.timing.max_duration_s"),
    Case("config/manifests-dir-missing.yaml", "manifests"),
    Case("config/env-file-missing.yaml", "environments.torch-2.13"),
    # issue 12
    Case("config/use-yte.yaml", "__use_yte__", marker="/tmp/reproscope-bad-input-use-yte"),
    Case("config/alias-bomb.yaml", DOC, error=InputError),
    Case("config/timing-nan.yaml", "study.timing.min_duration_s", error=InputError),
    Case("config/warmup-unbounded.yaml", "study.timing.warmup"),
    Case("config/max-below-min-duration.yaml", "study.timing.max_duration_s"),
    Case("config/batch-size-float.yaml", "study.batch_sizes[0]"),
    Case("config/diagnose-unknown.yaml", "diagnose[0]"),
    Case("config/ablation-model-unknown.yaml", "ablations.model"),
    Case("config/ablation-names-casefold.yaml", "ablations.variants.color-bgr"),
    Case(
        "config/ablation-override-os-system.yaml",
        "ablations.variants.evil.overrides",
        marker="/tmp/reproscope-bad-input-ablation-os-system",
    ),
    Case(
        "config/ablation-override-escape.yaml",
        "ablations.variants.evil.overrides",
        marker="/tmp/reproscope-bad-input-ablation-escape",
    ),
    Case("config/dataset-regex-invalid.yaml", "datasets.imagenet-sample.labels.filename_regex"),
    Case("config/dataset-regex-no-group.yaml", "datasets.imagenet-sample.labels.filename_regex"),
    Case("config/dataset-url-credentials.yaml", "datasets.imagenet-sample.url"),
    Case("config/unsafe-pickle-unknown-manifest.yaml", "allow_unsafe_pickle[0]"),
]

PYTORCH = "efficientnet-lite0-pytorch.yaml"
STUDY_CASES = [
    Case("study/entry-point-os-system", "architecture.entry_point", PYTORCH),
    Case("study/entry-point-subprocess-run", "architecture.entry_point", PYTORCH),
    Case("study/entry-point-unpinned-package", "architecture.entry_point", PYTORCH),
    Case("study/framework-version-outside-pin", "framework.version", PYTORCH),
    Case("study/framework-version-invalid", "framework.version", PYTORCH),
    Case("study/unknown-environment", "environment", PYTORCH),
    Case("study/duplicate-model-names", "name", "b-copy.yaml"),
    Case("study/env-unpinned-package", "dependencies[2].pip[0]", "torch-2.13.yaml"),
    Case("study/env-lock-missing", "environments.torch-2.13", "config.yaml"),
    Case("study/derived-from-missing", "source.derived.from", "efficientnet-lite0-onnx.yaml"),
    # issue 12
    Case(
        "study/entry-point-attribute-escape",
        "architecture.entry_point",
        PYTORCH,
        marker="/tmp/reproscope-bad-input-attribute-escape",
    ),
    Case("study/entry-point-reproscope-module", "architecture.entry_point", PYTORCH),
    Case("study/unsafe-pickle-without-consent", "source.unsafe_pickle", PYTORCH),
    Case("study/unsafe-pickle-consent-without-sha256", "source.sha256", PYTORCH),
    Case("study/duplicate-names-casefold", "name", "z-upper-case.yaml"),
]


def check(exc: Exception, case_file: str, field: str) -> None:
    """exc names the file, the field and a fix, in one of its errors and in str(exc)."""
    text = str(exc)
    errors = exc.errors if isinstance(exc, InputErrors) else [exc]
    assert all(isinstance(e, InputError) for e in errors)
    named = [e for e in errors if Path(e.file).name == case_file and e.field == field]
    assert named, f"no error names {case_file} and field {field!r}:\n{text}"
    assert case_file in text and f"field '{field}'" in text and "Fix" in text
    assert all(e.fix.strip() for e in errors), text


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def no_marker(request: pytest.FixtureRequest) -> None:
    """For cases that would execute code: the marker is absent before and after."""
    case = request.node.callspec.params["case"]
    marker = Path(case.marker) if case.marker else None
    if marker:
        marker.unlink(missing_ok=True)
    yield
    if marker:
        assert not marker.exists(), f"{case.id} executed code: {marker} was created"


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=lambda c: c.id)
def test_bad_manifest(case: Case, no_marker: None) -> None:
    path = BAD / case.path
    with pytest.raises(case.error) as info:
        load_manifest(path)
    check(info.value, path.name, case.field)


@pytest.mark.parametrize("case", CONFIG_CASES + STUDY_CASES, ids=lambda c: c.id)
def test_bad_study(case: Case, at_root: None, no_marker: None) -> None:
    config_path = Path("tests/bad_inputs") / case.path
    if config_path.is_dir():
        config_path /= "config.yaml"
    with pytest.raises(case.error) as info:
        load_study(load_yaml(config_path), str(config_path))
    check(info.value, case.file or config_path.name, case.field)


def test_manifest_directory_reports_every_bad_file_together() -> None:
    with pytest.raises(InputErrors) as info:
        load_manifests(BAD / "manifest")
    named = {Path(e.file).name for e in info.value.errors}
    assert named == {Path(c.path).name for c in MANIFEST_CASES}


# Generated at run time: too big to commit, or made of bytes an editor might "fix".
BASE_MANIFEST = ROOT / "manifests" / PYTORCH


def test_oversized_manifest(tmp_path: Path) -> None:
    path = tmp_path / "oversized.yaml"
    padding = "# padding\n" * (MAX_YAML_BYTES // 10 + 1)
    path.write_text(BASE_MANIFEST.read_text() + padding)
    with pytest.raises(InputError) as info:
        load_manifest(path)
    check(info.value, path.name, DOC)
    assert "limit" in str(info.value)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes(BASE_MANIFEST.read_text().encode("utf-16"))
    with pytest.raises(InputError) as info:
        load_manifest(path)
    check(info.value, path.name, DOC)
    assert "UTF-8" in str(info.value)


def test_deeply_nested_document(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("attributes: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InputError) as info:
        load_manifest(path)
    check(info.value, path.name, DOC)


def test_corpus_and_readme_list_the_same_cases() -> None:
    cases = {c.path for c in MANIFEST_CASES + CONFIG_CASES + STUDY_CASES}
    on_disk = {p.relative_to(BAD).as_posix() for p in (BAD / "manifest").glob("*.yaml")}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "config").glob("*.yaml")}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "study").iterdir() if p.is_dir()}
    assert on_disk == cases
    readme = (BAD / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    assert {c.id for c in MANIFEST_CASES + CONFIG_CASES + STUDY_CASES} <= listed
    assert len(cases) >= 25


# ---- the shipped inputs are accepted


@pytest.mark.parametrize("path", sorted((ROOT / "manifests").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifest_loads(path: Path) -> None:
    assert load_manifest(path).path == path


def test_shipped_manifest_directory_loads() -> None:
    assert len(load_manifests(ROOT / "manifests")) == len(list((ROOT / "manifests").glob("*.yaml")))


@pytest.mark.parametrize(
    "config_file", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config").glob("*.yaml"))
)
def test_shipped_config_loads(config_file: str, at_root: None) -> None:
    config = yaml.safe_load(Path(config_file).read_text())
    study = load_study(config, config_file, gpu_present=True)  # every job it can plan
    assert set(config["study"]["models"]) <= set(study.manifests)
    assert not study.jobs.empty
