"""Hostile inputs (issue 12) beyond the committed corpus: files that cannot be committed
(FIFOs, devices, directories, raw NUL bytes), config files handed to Snakemake, entry
points checked inside the environment, and the tiny study run with a hostile entry point.

Every case that would execute code names a marker file and asserts it was never created.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reproscope.acquire.fetch import FetchError, fetch_url, redact_url
from reproscope.errors import InputError, InputErrors
from reproscope.plan.configcheck import (
    check_config_arg,
    check_config_file,
    check_snakemake_args,
    check_workflow_configs,
)
from reproscope.plan.manifest import load_manifest
from reproscope.runtime.entrypoints import (
    EntryPointRefused,
    build_architecture,
    resolve_entry_point,
)
from tests import tinystudy
from tests.test_validation import BAD, BASE_MANIFEST, DOC, check
from tests.test_workflow import snakemake, snakemake_command

REPO = tinystudy.REPO


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "a hostile input executed code"


@pytest.fixture
def deadline() -> Iterator[None]:
    """A validator that blocks (reading a FIFO) fails the test instead of hanging it."""

    def expired(*_: object) -> None:
        raise TimeoutError("the validator blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---- only regular files are read, without blocking


def test_fifo_manifest_is_refused_without_blocking(tmp_path: Path, deadline: None) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as info:
        load_manifest(fifo)
    check(info.value, fifo.name, DOC)
    assert "FIFO" in str(info.value)


def test_device_manifest_is_refused(tmp_path: Path, deadline: None) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(InputError) as info:
        load_manifest(link)
    check(info.value, link.name, DOC)
    assert "device" in str(info.value)


def test_directory_manifest_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    with pytest.raises(InputError) as info:
        load_manifest(directory)
    check(info.value, directory.name, DOC)
    assert "directory" in str(info.value)


def test_fifo_label_list_is_refused_without_blocking(tmp_path: Path, deadline: None) -> None:
    data = yaml.safe_load(BASE_MANIFEST.read_text())
    os.mkfifo(tmp_path / "labels.txt")
    data["outputs"]["labels"]["file"] = "labels.txt"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputErrors) as info:
        load_manifest(path)
    check(info.value, path.name, "outputs.labels.file")


def test_raw_nul_byte(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(BASE_MANIFEST.read_bytes().replace(b"EfficientNet-Lite0", b"Eff\x00", 1))
    with pytest.raises(InputError) as info:
        load_manifest(path)
    check(info.value, path.name, DOC)


def test_nul_byte_in_the_label_path(tmp_path: Path) -> None:
    data = yaml.safe_load(BASE_MANIFEST.read_text())
    data["outputs"]["labels"]["file"] = "labels\x00.txt"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as info:
        load_manifest(path)
    check(info.value, path.name, "outputs.labels.file")


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    text = (REPO / "config" / "config.yaml").read_text() + "# Müller\n"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError) as info:
        check_config_file(path)
    check(info.value, path.name, DOC)


# ---- configs are data


def test_yte_config_is_refused_with_an_explanation() -> None:
    path = BAD / "config" / "use-yte.yaml"
    with pytest.raises(InputError) as info:
        check_config_file(path)
    check(info.value, path.name, "__use_yte__")
    assert "executed" in str(info.value)


def test_yte_expression_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('study:\n  "?if True":\n    threads: 2\n')
    with pytest.raises(InputError) as info:
        check_config_file(path)
    check(info.value, path.name, "study.?if True")


def test_every_configfile_and_config_value_is_checked(tmp_path: Path) -> None:
    good = REPO / "config" / "smoke.yaml"
    bomb = BAD / "config" / "alias-bomb.yaml"
    yte = BAD / "config" / "use-yte.yaml"
    nested = "[" + ",".join(["&a [x,x,x,x,x,x,x,x,x]"] + ["*a"] * 8) + "]"
    bomb_value = "x=" + "[" * 3000 + "]" * 3000
    with pytest.raises(InputErrors) as info:
        check_snakemake_args(["--configfiles", str(bomb), str(good), str(yte), "-C", bomb_value])
    named = {(Path(e.file).name, e.field) for e in info.value.errors}
    assert named == {
        ("alias-bomb.yaml", DOC),
        ("use-yte.yaml", "__use_yte__"),
        ("--config", "x"),
    }
    check_config_arg(f"x={nested}")  # 81 nodes: within the limits
    check_snakemake_args(["--configfile", str(good), "--config", "timing_profile=mlperf"])


def test_profiles_are_checked(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(f"configfile: {BAD / 'config' / 'use-yte.yaml'}\n")
    with pytest.raises(InputErrors) as info:
        check_snakemake_args(["--profile", str(profile)])
    assert {e.field for e in info.value.errors} == {"__use_yte__"}
    (profile / "config.yaml").write_text("__use_yte__: true\ncores: 1\n")
    with pytest.raises(InputErrors) as info:
        check_snakemake_args(["--profile", str(profile)])
    check(info.value, "config.yaml", "__use_yte__")


def test_snakefile_rechecks_what_snakemake_was_given() -> None:
    with pytest.raises(InputErrors) as info:
        check_workflow_configs([BAD / "config" / "use-yte.yaml"], {"x": float("nan")})
    assert {e.field for e in info.value.errors} == {"__use_yte__", "x"}
    check_workflow_configs([], {})  # config/config.yaml, relative to the working directory


def yte_config(tmp_path: Path, marker: Path) -> Path:
    path = tmp_path / "yte.yaml"
    path.write_text(
        f"__use_yte__: true\nstudy:\n  threads: ?__import__('os').system('touch {marker}') or 2\n"
    )
    return path


def tiny_dry_run(tmp_path: Path, entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A dry run of the tiny study through plain snakemake (the workflow profile checks
    first) or through the `reproscope snakemake` wrapper."""
    root = tmp_path / "tiny"
    tinystudy.build(root)
    command = snakemake_command(root, "-n", *args)
    if entry == "wrapper":
        command[1:3] = ["-m", "reproscope.plan.configcheck", "snakemake"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("entry", ["snakemake", "wrapper"])
def test_snakemake_never_evaluates_a_yte_config(tmp_path: Path, marker: Path, entry: str) -> None:
    """Plain snakemake (the workflow profile checks first) and `reproscope snakemake`."""
    result = tiny_dry_run(tmp_path, entry, "--configfile", str(yte_config(tmp_path, marker)))
    assert result.returncode != 0
    assert "yte.yaml: field '__use_yte__'" in result.stderr
    assert not marker.exists()


def evaluating_profile(tmp_path: Path, marker: Path) -> Path:
    """A profile with no YTE key whose default-resources value Snakemake evaluates."""
    profile = tmp_path / "evil-profile"
    profile.mkdir()
    value = f"__import__('os').system('touch {marker}') or 1000"
    (profile / "config.yaml").write_text(yaml.safe_dump({"default-resources": {"mem_mb": value}}))
    return profile


@pytest.mark.parametrize("entry", ["snakemake", "wrapper"])
def test_snakemake_never_evaluates_a_profile_resource(
    tmp_path: Path, marker: Path, entry: str
) -> None:
    """Issue 25: plain snakemake (the workflow profile runs the check) and the wrapper
    refuse a profile whose default-resources value is an expression, on a dry run."""
    profile = evaluating_profile(tmp_path, marker)
    result = tiny_dry_run(tmp_path, entry, "--profile", str(profile))
    assert result.returncode != 0
    assert "config.yaml: field 'default-resources.mem_mb'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--default-resources", "mem_mb=__import__('os').getcwd()"],
        ["--default-res", "tmpdir=$HOME"],
        ["--set-resources", "accuracy:mem_mb=shutil.rmtree('x')"],
        ["--set-resources=accuracy:runtime=base64//MSsx"],
        ["--set-threads", "accuracy=max(1, 2)"],
        ["--set-threads", "accuracy=2", "--default-resources", "mem_mb=1000", "x=a\nb"],
    ],
)
def test_command_line_resources_are_literals(args: list[str]) -> None:
    with pytest.raises(InputErrors) as info:
        check_snakemake_args(["-n", *args])
    assert all(e.file.startswith("--") and e.fix for e in info.value.errors)


def test_profile_named_by_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """$SNAKEMAKE_PROFILE names a profile as --profile does."""
    profile = BAD / "profile" / "profile-set-threads-expression"
    monkeypatch.setenv("SNAKEMAKE_PROFILE", str(profile))
    with pytest.raises(InputErrors, match=r"field 'set-threads\.accuracy'"):
        check_snakemake_args(["-n"])


def test_literal_resources_and_shipped_profiles_pass() -> None:
    check_snakemake_args(
        [
            "--default-resources",
            "mem_mb=4000",
            "slurm_partition=a100",
            "--set-resources",
            "accuracy:slurm_gres=gpu:1",
            "accuracy:runtime=1.5",
            "--set-threads",
            "accuracy=4",
        ]
    )
    for profile in sorted((REPO / "profiles").iterdir()):
        if profile.name != "default":  # the workflow profile (reproscope's template) is
            check_snakemake_args(["--profile", str(profile)])  # checked by every call
    check_snakemake_args(["-s", str(REPO / "Snakefile")])


def test_snakemake_refuses_an_alias_bomb_before_parsing_it(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    tinystudy.build(root)
    bomb = BAD / "config" / "alias-bomb.yaml"
    result = snakemake(root, "-n", "--configfile", str(bomb))
    assert result.returncode != 0
    assert "alias-bomb.yaml: field '(document)'" in result.stderr


# ---- entry points, checked again inside the environment

torch = pytest.importorskip("torch")
# Pinned in every PyTorch environment: none of their own callables is a builder.
PACKAGES = ["efficientnet_lite_pytorch", "numpy", "torch"]


def test_shipped_and_pinned_entry_points_resolve() -> None:
    from efficientnet_lite_pytorch import EfficientNet

    from reproscope.runtime.tinynet import TinyColourNet

    assert resolve_entry_point("reproscope.runtime.tinynet:TinyColourNet", []) is TinyColourNet
    builder = resolve_entry_point("efficientnet_lite_pytorch:EfficientNet.from_name", PACKAGES)
    assert builder == EfficientNet.from_name


@pytest.mark.parametrize(
    "entry_point",
    [
        "os:system",
        "torch:os.system",  # an allowed package's attribute reaching the standard library
        "efficientnet_lite_pytorch.model:torch.load",  # reaching another (unpinned) package
        "efficientnet_lite_pytorch:no_such_builder",
        "efficientnet_lite_pytorch.model:nn.Conv2d",  # only the resolved object shows it
        "efficientnet_lite_pytorch:EfficientNet._from_name",
        "reproscope.acquire.envs:subprocess.run",
        "reproscope.plan.study:load_study",  # reproscope is not allowed as a whole
        # issue 25: public callables of pinned packages that are not model builders
        "torch.hub:load",
        "torch:load",
        "numpy:load",
        "torch.utils.cpp_extension:load_inline",
        "torch:save",
    ],
)
def test_escaping_entry_points_are_refused(entry_point: str) -> None:
    with pytest.raises(EntryPointRefused):
        resolve_entry_point(entry_point, PACKAGES)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["efficientnet-lite0"], {"weights_path": "/tmp/x.pth"}),  # not in its entry
        (["/etc/passwd"], {}),  # a path
        (["efficientnet-lite0"], {"num_classes": "1000"}),  # wrong type
        (["efficientnet-lite0"], {"num_classes": True}),  # a bool is not an int
        (["efficientnet-lite0"], {"dropout_rate": float("nan")}),
        ([], {}),  # model_name is required
    ],
)
def test_registered_builder_refuses_other_arguments_inside_the_environment(
    args: list[object], kwargs: dict[str, object]
) -> None:
    arch = {
        "entry_point": "efficientnet_lite_pytorch:EfficientNet.from_name",
        "args": args,
        "kwargs": kwargs,
        "packages": PACKAGES,
    }
    with pytest.raises(EntryPointRefused, match="architecture refused"):
        build_architecture(arch)


def test_every_registered_builder_resolves() -> None:
    from reproscope.runtime.entrypoints import BUILDERS

    for entry_point in BUILDERS:  # .venv holds every framework (the frameworks extra)
        assert callable(resolve_entry_point(entry_point, [*PACKAGES, "keras"]))
    assert not any(e.split(".")[0] in {"torch", "numpy", "tensorflow"} for e in BUILDERS)
    assert all(e.startswith("keras.applications:") for e in BUILDERS if e.startswith("keras"))


def test_runner_refuses_before_calling_or_loading(tmp_path: Path, marker: Path) -> None:
    """The torch runner checks the resolved entry point before torch.load or the call."""
    from reproscope.runtime.jobs import InferenceJob
    from reproscope.runtime.runners.pytorch.runner import TorchRunner

    artifact = tmp_path / "w.pt"
    tinystudy.write_weights(artifact)
    arch = {"entry_point": "torch:os.system", "args": [f"touch {marker}"], "kwargs": {}}
    job = InferenceJob(
        mode="latency",
        framework="pytorch",
        manifest="tiny",
        model="tiny",
        system="local",
        env="host",
        device="cpu",
        threads=1,
        artifact=str(artifact),
        inputs="",  # the runner reads no inputs
        env_lock="",
        architecture={**arch, "packages": ["torch"]},
        unsafe_pickle=False,
        top_k=1,
    )
    with pytest.raises(EntryPointRefused):
        TorchRunner().load(artifact, job)
    with pytest.raises(EntryPointRefused, match="no allowed packages"):
        build_architecture(arch)  # a job written without the environment's packages


def test_converter_refuses_before_calling(tmp_path: Path, marker: Path) -> None:
    from reproscope.runtime.convert.main import main
    from reproscope.runtime.integrity import record

    weights = tmp_path / "w.pt"
    tinystudy.write_weights(weights)
    record(weights)  # its digest, as fetch_model records it: the entry point is what refuses
    job = {
        "converter": "onnx-export",
        "opset": 17,
        "source": str(weights),
        "output": str(tmp_path / "m.onnx"),
        "architecture": {
            "entry_point": "os:system",
            "args": [f"touch {marker}"],
            "kwargs": {},
            "packages": ["torch", "os"],
        },
        "unsafe_pickle": False,
        "input_size": [32, 32],
    }
    with pytest.raises(EntryPointRefused):
        main(["main", json.dumps(job)])
    assert not (tmp_path / "m.onnx").exists()


# ---- the tiny study with a hostile entry point: nothing runs


def hostile_study(tmp_path: Path, marker: Path, where: str) -> Path:
    root = tmp_path / "tiny"
    config_path = tinystudy.build(root)
    hostile = {"entry_point": "os:system", "args": [f"touch {marker}"], "kwargs": {}}
    if where == "manifest":
        path = root / "manifests" / "tiny-pytorch.yaml"
        data = yaml.safe_load(path.read_text())
        data["architecture"] = hostile
        path.write_text(yaml.safe_dump(data))
    else:
        config = yaml.safe_load(config_path.read_text())
        overrides = {f"architecture.{k}": v for k, v in hostile.items()}
        variants = {"evil": {"overrides": overrides}}
        config["ablations"] = {"model": "tiny-pytorch", "variants": variants}
        config_path.write_text(yaml.safe_dump(config))
    return root


@pytest.mark.parametrize("where", ["manifest", "ablation"])
def test_tiny_study_with_a_hostile_entry_point_runs_nothing(
    tmp_path: Path, marker: Path, where: str
) -> None:
    root = hostile_study(tmp_path, marker, where)
    result = snakemake(root)
    assert result.returncode != 0
    assert "architecture.entry_point" in result.stderr
    # No job ran, not even a fetch: planning wrote at most its parse cache.
    made = sorted(str(p.relative_to(root)) for p in root.glob("results/*/*"))
    assert made in ([], ["results/jobs/parsed"]), made
    assert not marker.exists()


# ---- no credentials in URLs or logs


def test_redact_url() -> None:
    assert redact_url("https://alice:s3cret@example.com/x") == "https://***@example.com/x"
    assert redact_url("https://ghp_token@example.com:8443/x") == "https://***@example.com:8443/x"
    assert redact_url("https://example.com/x?a=1") == "https://example.com/x?a=1"
    with pytest.raises(FetchError) as info:
        fetch_url("file://alice:s3cret@host/x", Path("unused"), None)
    assert "s3cret" not in str(info.value) and "alice" not in str(info.value)


def test_fetch_log_is_redacted(tmp_path: Path) -> None:
    """The rule script's log line goes through redact_url (scripts/fetch_model.py)."""
    script = (REPO / "scripts" / "fetch_model.py").read_text()
    assert "source['url']" not in script.replace("redact_url(source['url'])", "")


# ---- unsafe pickles: only with the study's consent, marked through conversions


def test_consented_unsafe_pickle_loads_and_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reproscope.plan.study import load_study
    from reproscope.yamlio import load_yaml

    root = tmp_path / "tiny"
    config_path = tinystudy.build(root)
    path = root / "manifests" / "tiny-pytorch.yaml"
    data = yaml.safe_load(path.read_text())
    data["source"]["unsafe_pickle"] = True
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(root)
    with pytest.raises(InputErrors) as info:
        load_study(load_yaml(config_path), str(config_path))
    check(info.value, path.name, "source.unsafe_pickle")
    config = yaml.safe_load(config_path.read_text())
    config["allow_unsafe_pickle"] = ["tiny-pytorch"]
    config_path.write_text(yaml.safe_dump(config))
    study = load_study(load_yaml(config_path), str(config_path))
    # the ONNX export was converted from the pickle: its results are marked too
    assert study.unsafe_pickle("tiny-pytorch") and study.unsafe_pickle("tiny-onnx")


# ---- issue 25, items 4-6: output escaping, resource caps, no traceback on any input
# (case names: escape-*, cap-*, input-*; each error names the file or field and a fix)

ATTACK = "</script><svg onload=alert(1)>"
SPEC = {
    "files": "*.jpg",
    "labels": {"filename_regex": "^([a-z]+)_"},
}


def _jpeg(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size[::-1], 3), 128, np.uint8)).save(path, quality=90)
    return path


def _leftovers(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name.endswith((".part", ".extract", ".old")) or ".tmp" in p.name
    )


def test_escape_report_params_hold_no_markup() -> None:
    """escape-report-params: manifest text reaches the report only HTML-escaped (Snakemake
    writes a report job's params, unescaped, into a <script> block)."""
    from snakemake import logging as smk_logging

    from reproscope.plan.summaries import for_report, from_report

    params = {"m": {"claims": {"source": ATTACK + " & =cmd|' /C calc'!A0", "top1": 75.1}}}
    safe = for_report(params)
    shown = smk_logging.format_dict({"manifests": safe})
    assert "<" not in shown and ">" not in shown and "</script" not in shown.lower()
    assert from_report(safe) == params


def test_escape_report_rules_pass_params_through_for_report() -> None:
    """escape-report-rules: every rule with a report() output wraps its manifest-derived
    params in for_report."""
    text = (REPO / "rules" / "aggregate.smk").read_text()
    common = (REPO / "rules" / "common.smk").read_text()
    assert "manifests=lambda wc: for_report(" in text  # aggregate
    assert "diagnosed=lambda wc: for_report(" in text
    # the variant tables' params, from common.smk's helpers
    for name in ("manifests", "variants"):
        assert f"{name}=lambda wc: variant_table_{name}(" in text
        body = common.split(f"def variant_table_{name}(kind):", 1)[1].split("\ndef ", 1)[0]
        assert "return for_report(" in body
    for script in ("aggregate.py", "compare_variants.py", "diagnose_greedy.py"):
        assert "from_report(" in (REPO / "scripts" / script).read_text(), script


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x","y")', "'=HYPERLINK"),
        ("@SUM(A1)", "'@SUM"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd"),
        ("-2+3+cmd", "'-2+3"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\nCR"),
        ("-0.25", "-0.25"),
        ("-inf", "-inf"),
        ("+3", "+3"),
        ("plain = text", "plain = text"),
    ],
    ids=lambda v: repr(v)[:12],
)
def test_escape_csv_cells_are_neutralised(tmp_path: Path, cell: str, written: str) -> None:
    """escape-csv: a text cell a spreadsheet would evaluate gets a leading "'"; genuine
    numbers (and numeric columns) stay numbers."""
    import csv

    import pandas as pd

    from reproscope.report.tables import write_csv

    out = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"source": [cell], "delta_top1": [-1.5]}), out)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["source", "delta_top1"]
    assert rows[1][0].startswith(written) and rows[1][1] == "-1.5"


def test_escape_one_writer_for_every_csv() -> None:
    """escape-csv-writer: no script or report module writes a CSV but report.tables."""
    sources = [
        *(REPO / "scripts").glob("*.py"),
        *(REPO / "src" / "reproscope" / "report").glob("*.py"),
    ]
    for path in sources:
        if path.name == "tables.py":
            continue
        text = path.read_text()
        assert ".to_csv(" not in text and "csv.writer(" not in text, path


def _zip_bomb(path: Path, size: int) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/big.bin", b"\0" * size)
    return path


def _tar_bomb(path: Path, size: int) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("a/big.bin")
        info.size = size
        tf.addfile(info, io.BytesIO(b"\0" * size))
    return path


@pytest.mark.parametrize("kind", ["zip", "tar"], ids=["cap-zip-bomb", "cap-tar-bomb"])
def test_cap_archive_ratio(tmp_path: Path, kind: str) -> None:
    from reproscope.acquire.fetch import ArchiveError, safe_extract

    make = _zip_bomb if kind == "zip" else _tar_bomb
    archive = make(tmp_path / f"bomb.{'zip' if kind == 'zip' else 'tar.gz'}", 64 * 1024**2)
    with pytest.raises(ArchiveError, match="decompression bomb.*REPROSCOPE_MAX_EXTRACT_RATIO"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


@pytest.mark.parametrize("kind", ["zip", "tar"], ids=["cap-zip-total", "cap-tar-total"])
def test_cap_archive_total_and_override(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reproscope.acquire.fetch import ArchiveError, safe_extract

    make = _zip_bomb if kind == "zip" else _tar_bomb
    archive = make(tmp_path / f"a.{'zip' if kind == 'zip' else 'tar.gz'}", 3 * 1024**2)
    monkeypatch.setenv("REPROSCOPE_MAX_EXTRACT_BYTES", str(2 * 1024**2))
    monkeypatch.setenv("REPROSCOPE_MAX_EXTRACT_RATIO", "100000")
    with pytest.raises(ArchiveError, match="REPROSCOPE_MAX_EXTRACT_BYTES"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    monkeypatch.setenv("REPROSCOPE_MAX_EXTRACT_BYTES", str(4 * 1024**2))
    assert [p.name for p in safe_extract(archive, tmp_path / "out")] == ["big.bin"]


def test_cap_dataset_archive_digest_error_leaves_nothing(tmp_path: Path) -> None:
    """cap-dataset-digest-cleanup: an archive whose digest is wrong leaves no extracted
    tree and no archive behind."""
    import io
    import zipfile

    from reproscope.acquire.datasets import materialise

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        buf = io.BytesIO()
        _jpeg(tmp_path / "src" / "red_0.jpg")
        zf.write(tmp_path / "src" / "red_0.jpg", "d/red_0.jpg")
        del buf
    work = tmp_path / "results" / "datasets" / "d"
    spec = {**SPEC, "url": archive.as_uri(), "content_digest": "sha256:" + "0" * 64}
    with pytest.raises(InputError, match=r"datasets\.d\.content_digest"):
        materialise("d", spec, work, "config.yaml", io.StringIO())
    assert sorted(p.name for p in work.iterdir()) == [] and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("/dev/zero", "pseudo-file system"),
        ("/proc/self/environ", "pseudo-file system"),
        ("/etc/hostname", "outside the project .* no sha256"),
    ],
    ids=["cap-file-dev-zero", "cap-file-proc", "cap-file-unpinned-outside"],
)
def test_cap_file_sources(tmp_path: Path, target: str, match: str, deadline: None) -> None:
    dest = tmp_path / "results" / "models" / "m.bin"
    with pytest.raises(FetchError, match=match):
        fetch_url("file://" + target, dest, None, project_root=tmp_path / "project")
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_cap_file_fifo_does_not_block(tmp_path: Path, deadline: None) -> None:
    """cap-file-fifo: a FIFO (even pinned, even inside the project) is refused unopened."""
    fifo = tmp_path / "weights.bin"
    os.mkfifo(fifo)
    dest = tmp_path / "results" / "m.bin"
    with pytest.raises(FetchError, match="not a regular file"):
        fetch_url(fifo.as_uri(), dest, "0" * 64, project_root=tmp_path)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_cap_file_copy_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cap-file-size: a copy over REPROSCOPE_MAX_FILE_BYTES is refused, no .part left."""
    src = tmp_path / "w.bin"
    src.write_bytes(b"x" * 4096)
    monkeypatch.setenv("REPROSCOPE_MAX_FILE_BYTES", "1000")
    with pytest.raises(FetchError, match="over the cap.*REPROSCOPE_MAX_FILE_BYTES"):
        fetch_url(src.as_uri(), tmp_path / "out" / "w.bin", None, project_root=tmp_path)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out" / "w.bin").exists()


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height (a 1-bit image of zeros compresses to
    almost nothing, so this is the classic decompression bomb)."""
    from PIL import Image

    Image.new("1", (width, height)).save(path)
    return path


def _image_case(root: Path, case: str) -> Path:
    if case == "cap-image-bomb":
        return _png_header_only(root / "bomb.png", 15000, 15000)
    if case == "cap-image-pixels":
        return _png_header_only(root / "big.png", 12000, 9000)
    if case == "cap-image-strip":
        return _png_header_only(root / "strip.png", 20000, 1)
    whole = _jpeg(root / "whole.jpg", (64, 64)).read_bytes()
    (root / "cut.jpg").write_bytes(whole[:300])  # input-truncated-jpeg
    return root / "cut.jpg"


def _decode_case(root: str, case: str, decoder: str) -> tuple[str, str, str, str]:
    """In a fresh process (OpenCV's thread pool must not exist in the process that later
    forks preprocessing workers): (error type, message, file, fix) of geometric()."""
    from reproscope.acquire.preprocess import geometric

    path = _image_case(Path(root), case)
    try:
        geometric(path, tinystudy.geometric_spec(decoder, 224))
    except InputError as exc:
        return type(exc).__name__, str(exc), exc.file, exc.fix
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, str(exc), "", ""
    return "none", "", str(path), ""


def in_fresh_process(fn, *args):  # noqa: ANN001, ANN201
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args).result(timeout=120)


@pytest.mark.parametrize("decoder", ["pil", "opencv"])
@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("cap-image-bomb", "decompression bomb"),
        ("cap-image-pixels", "over the cap"),
        ("cap-image-strip", "would need"),
        ("input-truncated-jpeg", "is not an image|cannot be decoded|OpenCV cannot decode"),
    ],
)
def test_cap_images(tmp_path: Path, case: str, match: str, decoder: str) -> None:
    """Every decoder is capped on the header before decoding, the resize's allocation is
    checked first, and the error names the file."""
    kind, message, file, fix = in_fresh_process(_decode_case, str(tmp_path), case, decoder)
    assert kind == "InputError", (kind, message)
    assert re.search(match, message) and Path(file).parent == tmp_path and fix, message


def _cache_with_a_bomb(root: str) -> tuple[str, str]:
    from reproscope.acquire.preprocess import build_cache

    tmp_path = Path(root)
    good = [_jpeg(tmp_path / f"red_{i}.jpg") for i in range(3)]
    bomb = _png_header_only(tmp_path / "bomb.png", 15000, 15000)
    spec = {
        "size": [8, 8],
        "decoder": "pil",
        "grayscale": "replicate",
        "crop_ratio": 0.875,
        "resize": {
            "library": "pil",
            "method": "bilinear",
            "antialias": True,
            "target": "shorter_side",
        },
    }
    try:
        build_cache([*good, bomb], spec, tmp_path / "cache", workers=2)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, str(exc)
    return "none", ""


def test_cap_image_error_crosses_worker_processes(tmp_path: Path) -> None:
    """input-image-in-worker: the preprocess job's workers report the file, not a pickling
    traceback. (In a fresh process: the workers are forked, and this test process has
    threads of its own.)"""
    kind, message = in_fresh_process(_cache_with_a_bomb, str(tmp_path))
    assert kind == "InputError" and "bomb.png: field '(image)'" in message, message


@pytest.mark.parametrize(
    "pattern",
    ["^((?:a+)+)b", "^(a|aa)+$", "^(\\w+\\s?)+$", "(x+x+)+y", "^\\w*\\w*\\w*x$"],
    ids=lambda p: "cap-regex",
)
def test_cap_backtracking_regex_is_refused_at_once(tmp_path: Path, pattern: str) -> None:
    """Refused by its structure before any name is matched (so no match can take long)."""
    from reproscope.acquire.datasets import read_labels

    with pytest.raises(InputError, match="filename_regex.*backtrack"):
        read_labels(tmp_path, ["a" * 19 + "!.jpg"], {"filename_regex": pattern}, "c.yaml", "f")


def test_cap_plain_regexes_are_accepted(tmp_path: Path) -> None:
    """The shipped pattern and one with two unbounded quantifiers pass the check."""
    from reproscope.acquire.datasets import read_labels

    names = [f"img_n{i:08d}_{'x' * 200}.jpg" for i in range(3)]
    for pattern in ("^img_(n\\d{8})_", ".*_(n\\d{8})_x+\\.jpg$"):
        labels, _ = read_labels(tmp_path, names, {"filename_regex": pattern}, "c.yaml", "f")
        assert labels[1] == "n00000001", pattern


def test_cap_symlinked_dataset_folder_deletes_nothing(tmp_path: Path) -> None:
    """cap-symlink-results: results/datasets/<d> as a link to someone's folder: nothing
    there is deleted or overwritten, and the error says to remove the link."""
    import io

    from reproscope.acquire.datasets import materialise

    elsewhere = tmp_path / "elsewhere"
    precious = _jpeg(elsewhere / "files" / "keep.jpg")
    (tmp_path / "results" / "datasets").mkdir(parents=True)
    work = tmp_path / "results" / "datasets" / "d"
    work.symlink_to(elsewhere)
    spec = {**SPEC, "generator": "synthetic-colours", "n_images": 6, "content_digest": "generated"}
    with pytest.raises(InputError, match="symbolic link.*Fix: remove the link"):
        materialise("d", spec, work, "config.yaml", io.StringIO())
    assert precious.is_file() and sorted(os.listdir(elsewhere / "files")) == ["keep.jpg"]


def test_cap_symlinked_cache_folder_deletes_nothing(tmp_path: Path) -> None:
    """cap-symlink-cache: the preprocess cache's chunks folder through a link."""
    from reproscope.acquire.preprocess import build_cache
    from reproscope.runtime.atomic import LinkRefused

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "chunks").mkdir(parents=True)
    (elsewhere / "chunks" / "keep.npy").write_bytes(b"x")
    (tmp_path / "results" / "preprocess" / "d").mkdir(parents=True)
    (tmp_path / "results" / "preprocess" / "d" / "spec").symlink_to(elsewhere)
    spec = {
        "size": [8, 8],
        "decoder": "pil",
        "crop_ratio": 0.875,
        "resize": {
            "library": "pil",
            "method": "bilinear",
            "antialias": True,
            "target": "shorter_side",
        },
    }
    with pytest.raises(LinkRefused, match="symbolic link"):
        build_cache(
            [_jpeg(tmp_path / "red_0.jpg")],
            spec,
            tmp_path / "results" / "preprocess" / "d" / "spec",
        )
    assert (elsewhere / "chunks" / "keep.npy").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("content", "form", "field", "match"),
    [
        (b"file,label\nred_0.jpg,caf\xe9\n", "csv", "line 2", "0xe9 .* not UTF-8"),
        (b"file,label\nred_0.jpg," + b"x" * 200_000 + b"\n", "csv", "line 2", "characters long"),
        ("red_0.jpg \u00b2\n".encode(), "caffe", "line 1", "not a non-negative integer"),
        (b'file,label\n"red_0.jpg,x\n', "csv", "line 2", "not CSV|fewer than two"),
        (b"red_0.jpg 1\x00\n", "caffe", "line 1", "not a non-negative integer"),
    ],
    ids=[
        "input-labels-latin1",
        "input-labels-200kb-field",
        "input-labels-superscript-two",
        "input-labels-open-quote",
        "input-labels-nul",
    ],
)
def test_input_labels_files(
    tmp_path: Path, content: bytes, form: str, field: str, match: str
) -> None:
    from reproscope.acquire.datasets import read_labels

    labels = tmp_path / "labels.txt"
    labels.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        read_labels(tmp_path, ["red_0.jpg"], {"file": "labels.txt", "format": form}, "c.yaml", "f")
    assert info.value.file == str(labels) and info.value.field == field and info.value.fix


def test_input_mirror_under_proc(tmp_path: Path) -> None:
    """input-mirror-proc"""
    import io

    from reproscope.acquire.datasets import materialise

    spec = {**SPEC, "mirror": "/proc/self"}
    with pytest.raises(InputError, match=r"datasets\.d\.mirror.*pseudo-file system"):
        materialise(
            "d", spec, tmp_path / "results" / "datasets" / "d", "config.yaml", io.StringIO()
        )


def test_input_mirror_file_name_with_a_newline(tmp_path: Path) -> None:
    """input-mirror-newline: a clear InputError naming the field, no traceback."""
    import io

    from reproscope.acquire.datasets import materialise

    mirror = tmp_path / "mirror"
    _jpeg(mirror / "red_0.jpg")
    _jpeg(mirror / "red\n1.jpg")
    spec = {**SPEC, "mirror": str(mirror)}
    with pytest.raises(InputError, match=r"field 'datasets\.d\.mirror'.*newline") as info:
        materialise(
            "d", spec, tmp_path / "results" / "datasets" / "d", "config.yaml", io.StringIO()
        )
    assert info.value.fix


def test_input_refusals_end_a_job_without_a_traceback(tmp_path: Path) -> None:
    """input-job-refusal: a rule script's refusal is its message and exit status 1."""
    script = (
        "import io, sys\n"
        "from reproscope.errors import InputError\n"
        "from reproscope.rulelog import refuse_cleanly\n"
        "with refuse_cleanly(io.StringIO()):\n"
        "    raise InputError('labels.txt', 'line 2', 'byte 0xe9 is not UTF-8', 'save as UTF-8')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "labels.txt: field 'line 2': byte 0xe9 is not UTF-8. Fix: save as UTF-8" in proc.stderr
