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

from reproscope.acquire.lockfile import LockError, read_lock
from reproscope.errors import InputError, InputErrors
from reproscope.plan.configcheck import check_snakemake_args
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
        return self.path.removesuffix(".yaml").removesuffix(".lock.txt")


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
    # issue 25: only registered model builders, with typed arguments
    Case("manifest/registry-torch-hub-load.yaml", "architecture.entry_point"),
    Case("manifest/registry-torch-load.yaml", "architecture.entry_point"),
    Case("manifest/registry-numpy-load.yaml", "architecture.entry_point"),
    Case(
        "manifest/registry-load-inline.yaml",
        "architecture.entry_point",
        marker="/tmp/reproscope-bad-input-registry-load-inline",
    ),
    Case(
        "manifest/registry-torch-save.yaml",
        "architecture.entry_point",
        marker="/tmp/reproscope-bad-input-registry-torch-save",
    ),
    Case("manifest/registry-extra-kwarg.yaml", "architecture.kwargs.weights_path"),
    Case("manifest/registry-path-arg.yaml", "architecture.args[0]"),
    Case("manifest/registry-wrong-type-arg.yaml", "architecture.kwargs.num_classes"),
    Case("manifest/registry-too-many-args.yaml", "architecture.args[1]"),
    # issue 25: resource caps (cap-) and text bound for the report (escape-)
    Case("manifest/cap-crop-ratio-tiny.yaml", "inputs.crop_ratio"),
    Case("manifest/escape-claim-source-too-long.yaml", "claims.source"),
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
    # issue 25
    Case("config/registry-ablation-torch-hub.yaml", "ablations.variants.evil.overrides"),
    Case("config/registry-ablation-extra-kwarg.yaml", "ablations.variants.evil.overrides"),
    Case("config/profile-slurm-gres-newline.yaml", "systems.local.slurm_gres", error=InputErrors),
    Case("config/profile-slurm-partition-expression.yaml", "systems.local.slurm_partition"),
    # issue 25: resource budgets and regexes that cannot backtrack (cap-)
    Case("config/cap-generator-n-images.yaml", "datasets.synthetic.n_images"),
    Case("config/cap-dataset-limit.yaml", "datasets.imagenet-sample.limit"),
    Case("config/cap-batch-size-budget.yaml", "study.batch_sizes[5]"),
    Case("config/cap-accuracy-batch-budget.yaml", "study.accuracy_batch_size"),
    Case("config/cap-day-long-point.yaml", "study.timing.max_duration_s"),
    Case("config/cap-min-duration-budget.yaml", "study.timing.min_duration_s"),
    Case("config/cap-repeats-budget.yaml", "study.repeats"),
    Case("config/cap-server-bound-budget.yaml", "study.server.latency_bound_ms"),
    Case("config/cap-server-workers-budget.yaml", "study.server.workers"),
    Case("config/cap-server-max-batch-budget.yaml", "study.server.max_batch"),
    Case("config/cap-budget-unknown.yaml", "budgets.max_gpus"),
    Case("config/cap-budget-over-hard-max.yaml", "budgets.max_batch_size"),
    Case(
        "config/cap-regex-nested-quantifier.yaml", "datasets.imagenet-sample.labels.filename_regex"
    ),
    Case("config/cap-regex-star-height.yaml", "datasets.imagenet-sample.labels.filename_regex"),
    Case(
        "config/cap-regex-alternation-loop.yaml", "datasets.imagenet-sample.labels.filename_regex"
    ),
    Case("config/cap-regex-backreference.yaml", "datasets.imagenet-sample.labels.filename_regex"),
    Case("config/cap-regex-too-long.yaml", "datasets.imagenet-sample.labels"),
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
    # issue 25: a lock read otherwise by pip is refused when the study loads
    Case("study/lock-comment-continuation", "line 6", "torch-2.13.lock.txt"),
]

# issue 25: locks read exactly as pip reads them (read_lock), or refused
LOCK_CASES = [
    Case("lock/lock-comment-continuation.lock.txt", "line 6"),
    Case("lock/lock-coding-cookie.lock.txt", "line 1"),
    Case("lock/lock-vim-fileencoding.lock.txt", "line 2"),
    Case("lock/lock-extra-index-url.lock.txt", "line 4"),
    Case("lock/lock-index-url.lock.txt", "line 4"),
    Case("lock/lock-editable.lock.txt", "line 4"),
    Case("lock/lock-requirements-include.lock.txt", "line 4"),
    Case("lock/lock-url-requirement.lock.txt", "line 18"),
    Case("lock/lock-marker.lock.txt", "line 4"),
    Case("lock/lock-env-var.lock.txt", "line 4"),
    Case("lock/lock-trailing-comment-continuation.lock.txt", "line 4"),
    Case("lock/lock-two-hashes.lock.txt", "line 5"),
    Case("lock/lock-duplicate-package.lock.txt", "line 18"),
    Case("lock/lock-blank-after-continuation.lock.txt", "line 5"),
    Case("lock/lock-extra-comment.lock.txt", "(document)"),
    Case("lock/lock-unsorted.lock.txt", "(document)"),
    Case("lock/lock-no-target.lock.txt", "(document)"),
]

# issue 25: profiles are data (every value Snakemake evaluates is a literal)
PROFILE_CASES = [
    Case(
        "profile/profile-default-resources-import",
        "default-resources.mem_mb",
        "config.yaml",
        marker="/tmp/reproscope-bad-input-profile-default-resources",
    ),
    Case(
        "profile/profile-default-resources-list",
        "default-resources[0]",
        "config.yaml",
        marker="/tmp/reproscope-bad-input-profile-list",
    ),
    Case("profile/profile-set-resources-call", "set-resources.accuracy.mem_mb", "config.yaml"),
    Case("profile/profile-set-threads-expression", "set-threads.accuracy", "config.yaml"),
    Case("profile/profile-env-var", "default-resources.tmpdir", "config.yaml"),
    Case("profile/profile-newline", "default-resources.slurm_partition", "config.yaml"),
    Case("profile/profile-base64", "set-resources[0]", "config.yaml"),
    Case("profile/profile-attribute-access", "default-resources.runtime", "config.yaml"),
    Case("profile/profile-underscore-key", "default-resources.mem_mb", "config.yaml"),
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


@pytest.mark.parametrize("case", LOCK_CASES, ids=lambda c: c.id)
def test_bad_lock(case: Case) -> None:
    path = BAD / case.path
    with pytest.raises(LockError) as info:
        read_lock(path)
    assert info.value.field == case.field, str(info.value)
    assert str(info.value).startswith(f"{path}: ") and "Fix: " in str(info.value)


@pytest.mark.parametrize("case", PROFILE_CASES, ids=lambda c: c.id)
def test_bad_profile(case: Case, no_marker: None) -> None:
    """Refused by the check that runs before Snakemake parses the profile (its end to end
    runs through snakemake and the wrapper are in tests/test_hostile.py)."""
    with pytest.raises(InputErrors) as info:
        check_snakemake_args(["--profile", str(BAD / case.path)])
    check(info.value, "config.yaml", case.field)


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
    every = MANIFEST_CASES + CONFIG_CASES + STUDY_CASES + LOCK_CASES + PROFILE_CASES
    cases = {c.path for c in every}
    on_disk = {p.relative_to(BAD).as_posix() for p in (BAD / "manifest").glob("*.yaml")}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "config").glob("*.yaml")}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "study").iterdir() if p.is_dir()}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "lock").glob("*.lock.txt")}
    on_disk |= {p.relative_to(BAD).as_posix() for p in (BAD / "profile").iterdir() if p.is_dir()}
    assert on_disk == cases
    readme = (BAD / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    assert {c.id for c in every} <= listed
    assert len(cases) >= 25


# ---- the shipped inputs are accepted


@pytest.mark.parametrize("path", sorted((ROOT / "manifests").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifest_loads(path: Path) -> None:
    assert load_manifest(path).path == path


def test_shipped_manifest_directory_loads() -> None:
    assert len(load_manifests(ROOT / "manifests")) == len(list((ROOT / "manifests").glob("*.yaml")))


def layered(base: dict, over: dict) -> dict:
    """Snakemake's merge of a later --configfile over an earlier one (mappings recursively,
    everything else replaced)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = layered(base[key], value) if both else value
    return out


@pytest.mark.parametrize(
    "config_file", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config").glob("*.yaml"))
)
def test_shipped_config_loads(config_file: str, at_root: None) -> None:
    config = yaml.safe_load(Path(config_file).read_text())
    if "manifests" not in config:  # an overlay, documented as given after config/config.yaml
        config = layered(yaml.safe_load(Path("config/config.yaml").read_text()), config)
    study = load_study(config, config_file, gpu_present=True)  # every job it can plan
    assert set(config["study"]["models"]) <= set(study.manifests)
    assert not study.jobs.empty
