"""FLOP counting of ONNX graphs against hand-computed counts (skips without torch/onnx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reproscope.report.flops import onnx_flops, peak_gflops

# ----------------------------------------------------------------- hand-computed reference
# Input (B, 3, 8, 8).
# Conv2d(3, 8, 3, padding=1) with bias -> (B, 8, 8, 8) = 512 B outputs;
#   MACs = 512 B * 3 * 3 * 3 = 13 824 B; FLOPs = 2 * MACs + 512 B (bias) = 28 160 B.
# ReLU: 1 per output element = 512 B.
# Flatten: 0.
# Linear(512, 10) with bias -> Gemm M=B, K=512, N=10:
#   MACs = 5 120 B; FLOPs = 2 * MACs + 10 B (bias) = 10 250 B.
CONV_MACS, CONV_FLOPS = 13_824, 28_160
RELU_FLOPS = 512
GEMM_MACS, GEMM_FLOPS = 5_120, 10_250
TOTAL_FLOPS = CONV_FLOPS + RELU_FLOPS + GEMM_FLOPS  # 38 922 per sample

# Depthwise Conv2d(8, 8, 3, padding=1, groups=8, bias=False) on (B, 8, 8, 8):
#   MACs = 512 B * (8 / 8) * 9 = 4 608 B; FLOPs = 9 216 B.
DW_MACS = 4_608


@pytest.fixture(scope="module")
def torch_mod() -> Any:
    pytest.importorskip("onnx")
    return pytest.importorskip("torch")


def _export(torch_mod: Any, model: Any, path: Path, shape: tuple[int, ...]) -> Path:
    from reproscope.runtime.convert.torch_export import export_onnx

    torch_mod.manual_seed(0)
    export_onnx(model, path, shape)
    return path


@pytest.fixture(scope="module")
def conv_linear_onnx(torch_mod: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    nn = torch_mod.nn
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)
    )
    path = tmp_path_factory.mktemp("flops") / "conv_linear.onnx"
    return _export(torch_mod, model, path, (1, 3, 8, 8))


@pytest.mark.parametrize("batch", [1, 3])
def test_conv_linear_counts(conv_linear_onnx: Path, batch: int) -> None:
    got = onnx_flops(conv_linear_onnx, batch_size=batch)
    assert got["uncounted"] == {}
    assert got["batch_size"] == batch
    assert got["flops_by_op_type"] == {
        "Conv": CONV_FLOPS * batch,
        "Gemm": GEMM_FLOPS * batch,
        "Relu": RELU_FLOPS * batch,
    }
    assert got["macs_by_op_type"] == {"Conv": CONV_MACS * batch, "Gemm": GEMM_MACS * batch}
    assert got["flops"] == TOTAL_FLOPS * batch
    assert got["macs"] == (CONV_MACS + GEMM_MACS) * batch
    assert got["gflops"] == pytest.approx(TOTAL_FLOPS * batch / 1e9)
    assert got["params"] == 3 * 8 * 9 + 8 + 512 * 10 + 10


def test_depthwise_conv(torch_mod: Any, tmp_path: Path) -> None:
    nn = torch_mod.nn
    model = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    path = _export(torch_mod, model, tmp_path / "dw.onnx", (1, 8, 8, 8))
    got = onnx_flops(path, batch_size=2)
    assert got["macs"] == DW_MACS * 2
    assert got["flops"] == 2 * DW_MACS * 2


def test_batched_matmul_and_elementwise(tmp_path: Path) -> None:
    """A hand-built graph: no torch needed. MatMul (B,4,5)x(5,6) then Add of a (6,) bias."""
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((5, 6), np.float32), "w")
    b = numpy_helper.from_array(np.zeros((6,), np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 6])],
        [w, b],
    )
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    got = onnx_flops(path, batch_size=2)
    # MatMul: 2 * (2*4*6 outputs) * K=5 = 480; Add: 48 outputs.
    assert got["flops_by_op_type"] == {"MatMul": 480, "Add": 48}
    assert got["macs"] == 240


def test_unknown_op_is_reported_not_guessed(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"]), helper.make_node("Relu", ["v"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    path = tmp_path / "topk.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    got = onnx_flops(path)
    assert got["uncounted"] == {"TopK": 1, "Relu": 1}  # Relu's shape depends on k's value
    assert got["flops"] == 0


def test_peak_gflops_formula(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "".join(
            f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i // 2}\n"
            "flags\t\t: fpu sse avx avx2 fma avx512f\n\n"
            for i in range(4)
        )
    )
    freq = tmp_path / "max_freq"
    freq.write_text("3000000\n")  # kHz
    # Explicit cores: 2 cores * 3 GHz * 2 FMA units * 16 lanes * 2 = 384 GFLOP/s.
    assert peak_gflops(cores=2, cpuinfo=str(cpuinfo), max_freq_file=str(freq)) == 384.0
    assert peak_gflops(cores=2, freq_ghz=1.5, cpuinfo=str(cpuinfo)) == 192.0
    assert peak_gflops(cores=2, cpuinfo=str(cpuinfo), max_freq_file=str(tmp_path / "no")) is None
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx\n\n")
    assert peak_gflops(cores=1, freq_ghz=3.0, cpuinfo=str(cpuinfo)) is None
    result = peak_gflops()  # this machine: a number or None, never a guess
    assert result is None or result > 0


def test_fixed_batch_dim_is_not_rescaled(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    path = tmp_path / "static.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert onnx_flops(path, batch_size=1)["flops"] == 10
    with pytest.raises(ValueError, match="fixed leading dim 1"):
        onnx_flops(path, batch_size=4)


def test_onnx_matmul_model_multiplies_and_gives_a_peak() -> None:
    """The hand-serialised MatMul graph is a valid ONNX model computing A @ B, and the ONNX
    Runtime runner's peak comes from it, at its own thread count."""
    ort = pytest.importorskip("onnxruntime")
    from reproscope.runtime.peak import measure_peak_gflops, onnx_matmul_model
    from reproscope.runtime.runners.onnxruntime.runner import OnnxRunner

    session = ort.InferenceSession(onnx_matmul_model(n=3), providers=["CPUExecutionProvider"])
    a = np.arange(9, dtype=np.float32).reshape(3, 3)
    b = np.eye(3, dtype=np.float32)[::-1].copy()
    np.testing.assert_array_equal(session.run(None, {"A": a, "B": b})[0], a @ b)

    runner = OnnxRunner()
    runner.session = session
    runner.options.intra_op_num_threads = 1
    peak = measure_peak_gflops(runner.gemm(), repeats=2)
    assert peak["peak_gflops"] > 0
    assert "onnxruntime MatMul session" in peak["method"]
