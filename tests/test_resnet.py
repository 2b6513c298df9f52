"""ResNet-50 v1: seeded random weights, the Keras -> PyTorch port and the ONNX export,
and performance-only (random_init) manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from reproscope.errors import InputErrors
from reproscope.plan.manifest import load_manifest, load_manifests
from reproscope.plan.study import load_study

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"


@pytest.fixture(scope="module")
def keras_resnet() -> Any:
    keras = pytest.importorskip("keras")
    from reproscope.runtime.random_init import init_keras

    model = keras.applications.ResNet50(weights=None, classifier_activation=None)
    init_keras(model, seed=0)
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """NHWC, caffe-like range: pixels minus a mean."""
    rng = np.random.default_rng(1)
    return (rng.uniform(0, 255, (2, 224, 224, 3)) - 120.0).astype(np.float32)


@pytest.fixture(scope="module")
def torch_resnet(keras_resnet: Any) -> Any:
    torch = pytest.importorskip("torch")
    from reproscope.runtime.architectures import resnet50_v1
    from reproscope.runtime.convert.keras_resnet import keras_to_torch_state

    state = keras_to_torch_state({layer.name: layer.get_weights() for layer in keras_resnet.layers})
    model = resnet50_v1()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model.eval()


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.std(a))


def test_seeded_weights_repeat_and_differ_by_seed(keras_resnet: Any) -> None:
    import keras

    from reproscope.runtime.random_init import init_keras

    other = keras.applications.ResNet50(weights=None, classifier_activation=None)
    init_keras(other, seed=0)
    pairs = list(zip(keras_resnet.weights, other.weights, strict=True))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)
    init_keras(other, seed=1)
    kernel = keras_resnet.get_layer("conv1_conv").kernel
    assert not np.array_equal(np.asarray(kernel), np.asarray(other.get_layer("conv1_conv").kernel))
    # He-normal kernels, BatchNorm as identity statistics.
    fan_in = 7 * 7 * 3
    assert abs(float(np.std(np.asarray(kernel))) - np.sqrt(2 / fan_in)) < 0.01
    gamma, beta, mean, var = keras_resnet.get_layer("conv1_bn").get_weights()
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (var == 1).all()


def test_torch_random_init_is_seeded() -> None:
    torch = pytest.importorskip("torch")
    from reproscope.runtime.random_init import init_torch

    def weights(seed: int) -> dict[str, Any]:
        module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        return init_torch(module, seed)

    a, b, c = weights(3), weights(3), weights(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])
    assert (a["1.weight"] == 1).all() and (a["1.running_var"] == 1).all()
    assert (a["0.bias"] == 0).all()


def test_pytorch_port_is_v1_and_matches_keras(
    keras_resnet: Any, torch_resnet: Any, images: np.ndarray
) -> None:
    import torch

    block = torch_resnet.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)  # v1, not v1.5
    state = torch_resnet.state_dict()
    values = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert values == keras_resnet.count_params()  # BatchNorm statistics counted on both sides
    expected = np.asarray(keras_resnet(images, training=False))
    with torch.no_grad():
        got = torch_resnet(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    assert _relative(expected, got) < 1e-4
    assert (expected.argmax(1) == got.argmax(1)).all()


def test_onnx_export_matches_keras(
    keras_resnet: Any, torch_resnet: Any, images: np.ndarray, tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    from reproscope.runtime.convert.torch_export import export_onnx

    out = tmp_path / "resnet50-v1.onnx"
    export_onnx(torch_resnet, out, (1, 3, 224, 224))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": images.transpose(0, 3, 1, 2).copy()})[0]
    expected = np.asarray(keras_resnet(images, training=False))
    assert got.shape == (2, 1000)
    assert _relative(expected, got) < 1e-4


def test_port_rejects_another_model() -> None:
    from reproscope.runtime.convert.keras_resnet import keras_to_torch_state

    with pytest.raises(KeyError, match="conv1_conv"):
        keras_to_torch_state({"dense": [np.zeros((2, 2)), np.zeros(2)]})


# ---- performance-only manifests


def _write(tmp_path: Path, data: dict[str, Any], name: str) -> Path:
    (tmp_path / "labels").mkdir(exist_ok=True)
    labels = MANIFESTS / "labels" / "imagenet-1k-synsets.txt"
    (tmp_path / "labels" / labels.name).write_bytes(labels.read_bytes())
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _fields(exc: pytest.ExceptionInfo[InputErrors]) -> set[str]:
    return {e.field for e in exc.value.errors}


@pytest.fixture
def random_manifest() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "resnet50-v1-tensorflow.yaml").read_text())


def test_shipped_resnet_manifests_load_without_claims() -> None:
    manifests = load_manifests(MANIFESTS)
    for name in ("resnet50-v1-tensorflow", "resnet50-v1-pytorch", "resnet50-v1-onnx"):
        assert "claims" not in manifests[name].data
    assert manifests["resnet50-v1-tensorflow"].source["random_init"] == {"seed": 0}


def test_random_init_with_a_claim_is_refused(tmp_path: Path, random_manifest: dict) -> None:
    random_manifest["claims"] = {"dataset": "imagenet-1k-val", "top1": 76.0, "source": "x"}
    with pytest.raises(InputErrors) as info:
        load_manifest(_write(tmp_path, random_manifest, "claimed"))
    assert "claims" in str(info.value)


def test_random_init_needs_an_architecture(tmp_path: Path, random_manifest: dict) -> None:
    del random_manifest["architecture"]
    with pytest.raises(InputErrors) as info:
        load_manifest(_write(tmp_path, random_manifest, "no-arch"))
    assert "architecture" in _fields(info)


def test_random_init_cannot_make_onnx(tmp_path: Path, random_manifest: dict) -> None:
    random_manifest["source"]["format"] = "onnx"
    random_manifest["framework"] = {"name": "onnxruntime", "version": ">=1.20,<2"}
    with pytest.raises(InputErrors) as info:
        load_manifest(_write(tmp_path, random_manifest, "onnx"))
    assert "source.random_init" in _fields(info)


def test_a_fetched_manifest_still_needs_its_claim(tmp_path: Path) -> None:
    data = yaml.safe_load((MANIFESTS / "efficientnet-lite0-pytorch.yaml").read_text())
    del data["claims"]
    with pytest.raises(InputErrors) as info:
        load_manifest(_write(tmp_path, data, "unclaimed"))
    assert "claims" in str(info.value)


def _figure1(monkeypatch: pytest.MonkeyPatch, manifests: Path | None = None) -> dict[str, Any]:
    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "config/figure1.yaml").read_text())
    if manifests:
        config["manifests"] = str(manifests)
    return config


def test_claims_follow_the_weights_through_derivations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in MANIFESTS.glob("resnet50-v1-*.yaml"):
        _write(tmp_path, yaml.safe_load(path.read_text()), path.stem)
    onnx = yaml.safe_load((MANIFESTS / "resnet50-v1-onnx.yaml").read_text())
    onnx["claims"] = {"dataset": "imagenet-1k-val", "top1": 76.0, "source": "x"}
    _write(tmp_path, onnx, "resnet50-v1-onnx")
    with pytest.raises(InputErrors) as info:
        load_study(_figure1(monkeypatch, tmp_path), "config/figure1.yaml")
    bad = [e for e in info.value.errors if e.field == "claims"]
    assert bad and Path(bad[0].file).name == "resnet50-v1-onnx.yaml"
    assert "random" in bad[0].problem


def test_figure1_study_sweeps_1_to_256_on_two_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    study = load_study(_figure1(monkeypatch), "config/figure1.yaml", gpu_present=False)
    latency = study.jobs[study.jobs["mode"] == "latency"]
    assert sorted(latency["batch_size"].unique()) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert set(latency["system"]) == {"node-2threads", "node-1thread"}
    assert set(latency["framework"]) == {"tensorflow", "pytorch", "onnxruntime"}
    assert {study.systems[s]["threads"] for s in latency["system"]} == {1, 2}
    assert "group_budget_s" in study.settings["timing"]
    accuracy = study.jobs[study.jobs["mode"] == "accuracy"]
    assert set(accuracy["system"]) == {"node-2threads"} and len(accuracy) == 3


def test_accuracy_row_of_random_weights_says_not_applicable(tmp_path: Path) -> None:
    from reproscope.report.aggregate import NOT_APPLICABLE, accuracy_table

    result = tmp_path / "accuracy.json"
    np.save(tmp_path / "topk.npy", np.zeros((3, 5), dtype=np.int32))
    job = {
        "model": "resnet50-v1",
        "manifest": "resnet50-v1-onnx",
        "framework": "onnxruntime",
        "env": "host",
        "device": "cpu",
        "system": "local",
        "threads": 2,
    }
    result.write_text(json.dumps({"job": job, "status": "ok", "reason": None}))
    index = {"dataset": "imagenet-sample", "content_digest": "sha256:x", "labels": ["a"] * 3}
    table = accuracy_table([str(result)], index, {"resnet50-v1-onnx": {"claims": None}})
    row = table.iloc[0]
    assert row["claim_source"] == NOT_APPLICABLE
    assert row["n_images"] == 3 and pd_isna(row["top1"]) and pd_isna(row["delta_top1"])


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
