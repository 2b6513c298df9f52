"""Hostile inputs (issue 12) beyond the committed corpus: files that cannot be committed
(FIFOs, devices, directories, raw NUL bytes), config files handed to Snakemake, entry
points checked inside the environment, and the tiny study run with a hostile entry point.

Every case that would execute code names a marker file and asserts it was never created.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
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


@pytest.mark.parametrize("entry", ["snakemake", "wrapper"])
def test_snakemake_never_evaluates_a_yte_config(tmp_path: Path, marker: Path, entry: str) -> None:
    """Plain snakemake (the workflow profile checks first) and `reproscope snakemake`."""
    root = tmp_path / "tiny"
    tinystudy.build(root)
    command = snakemake_command(root, "-n", "--configfile", str(yte_config(tmp_path, marker)))
    if entry == "wrapper":
        command[1:3] = ["-m", "reproscope.plan.configcheck", "snakemake"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "yte.yaml: field '__use_yte__'" in result.stderr
    assert not marker.exists()


def test_snakemake_refuses_an_alias_bomb_before_parsing_it(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    tinystudy.build(root)
    bomb = BAD / "config" / "alias-bomb.yaml"
    result = snakemake(root, "-n", "--configfile", str(bomb))
    assert result.returncode != 0
    assert "alias-bomb.yaml: field '(document)'" in result.stderr


# ---- entry points, checked again inside the environment

torch = pytest.importorskip("torch")
PACKAGES = ["efficientnet_lite_pytorch"]


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
    ],
)
def test_escaping_entry_points_are_refused(entry_point: str) -> None:
    with pytest.raises(EntryPointRefused):
        resolve_entry_point(entry_point, PACKAGES)


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

    weights = tmp_path / "w.pt"
    tinystudy.write_weights(weights)
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
    assert not (root / "results").exists()  # no job ran, not even a fetch
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
