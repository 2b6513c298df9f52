"""Static FLOP and byte counts of ONNX models, and a CPU's theoretical peak. Env-side: numpy + onnx.

``onnx`` is imported inside :func:`onnx_flops`, so importing this module needs only the
standard library.

Counting conventions of :func:`onnx_flops` (one FLOP = one floating-point add, multiply,
compare or transcendental; a fused multiply-add counts as 2):

* ``Conv`` (incl. grouped and depthwise): ``2 * MACs`` with
  ``MACs = prod(output shape) * (C_in / group) * prod(kernel)``, plus 1 per output element for
  the bias when present. ``ConvTranspose``: ``MACs = prod(input shape) * (C_out / group) *
  prod(kernel)``, bias likewise.
* ``Gemm``: ``2 * M * N * K`` plus ``M * N`` when ``C`` is given (``alpha``/``beta`` scaling is
  not counted). ``MatMul``: ``2 * prod(output shape) * K`` (numpy broadcasting rules).
* Elementwise arithmetic and activations (``Add``, ``Mul``, ``Relu``, ``Clip``, ``Sigmoid``,
  ``Exp`` ...; see :data:`ELEMENTWISE`): 1 per output element, whatever the function costs.
  ``BatchNormalization`` (inference form ``x * a + b``): 2 per output element.
  ``Softmax``/``LogSoftmax``: 3 per element (exp, sum, divide).
* Pooling: ``MaxPool``/``AveragePool`` ``prod(output) * prod(kernel)``;
  ``GlobalAveragePool``/``GlobalMaxPool`` and ``Reduce*``: 1 per *input* element.
* Pure data movement (``Reshape``, ``Flatten``, ``Transpose``, ``Pad``, ``Concat``, ``Gather``,
  ``Shape``, ``Cast``, ...; see :data:`ZERO_COST`): 0.
* Anything else, and any node whose shapes shape inference could not make concrete, counts 0
  and is listed under ``"uncounted"`` so a total is never silently partial.

Shapes come from :func:`onnx.shape_inference.infer_shapes` after every symbolic (``dim_param``)
or unknown leading dimension of the graph inputs is fixed to ``batch_size`` and after constant
folding: nodes whose inputs are all constants (e.g. the ``Pad`` amounts that the TorchScript
exporter computes with ``ConstantOfShape``/``Concat``/``Slice``/``Transpose``, which shape
inference cannot see through) are evaluated once with :mod:`onnx.reference` and replaced by
initializers. Folded nodes cost nothing at run time (ONNX Runtime folds them too) and are not
counted; ``nodes_by_op_type`` still describes the original graph. Published
"FLOPs" of image classifiers are usually MACs (e.g. EfficientNet-Lite0: 407M); compare those
with the ``"macs"`` entry (Conv, ConvTranspose, Gemm and MatMul only), not with ``"flops"``.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any

#: Counted 1 FLOP per output element.
ELEMENTWISE = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean",
        "Neg", "Abs", "Reciprocal", "Sqrt", "Exp", "Log", "Erf", "Sin", "Cos", "Tanh",
        "Sigmoid", "HardSigmoid", "HardSwish", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu",
        "Celu", "Gelu", "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Clip",
        "Floor", "Ceil", "Round", "Sign", "Equal", "Less", "LessOrEqual", "Greater",
        "GreaterOrEqual", "Where", "Not", "And", "Or", "Xor", "IsNaN", "IsInf",
    }
)  # fmt: skip

#: Data movement and bookkeeping: 0 FLOPs.
ZERO_COST = frozenset(
    {
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
        "Gather", "GatherElements", "GatherND", "Pad", "Shape", "Size", "Constant",
        "ConstantOfShape", "Identity", "Cast", "CastLike", "Dropout", "Expand", "Tile",
        "DepthToSpace", "SpaceToDepth", "Range", "NonZero", "ScatterND", "ScatterElements",
    }
)  # fmt: skip

_REDUCE = frozenset(
    {
        "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
        "ReduceLogSumExp", "ArgMax", "ArgMin",
    }
)  # fmt: skip

_MAC_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


class _Unknown(Exception):
    """A shape needed for counting is not concrete."""


def _fix_batch(model: Any, batch_size: int) -> None:
    """Set a symbolic/unknown leading dim of every real graph input to ``batch_size``."""
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if not len(dims):
            continue
        if not dims[0].HasField("dim_value") or dims[0].dim_value == 0:
            dims[0].Clear()
            dims[0].dim_value = batch_size
        elif dims[0].dim_value != batch_size:
            raise ValueError(
                f"graph input {value.name!r} has a fixed leading dim {dims[0].dim_value}, "
                f"so batch_size={batch_size} cannot be applied"
            )


def _fold_constants(model: Any) -> int:
    """Replace every node computable from constants alone by initializers; return the count."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    # An initializer that is also a graph input may be overridden at run time: not a constant.
    const = set(initializers) - {v.name for v in graph.input}
    const.add("")  # an omitted optional input
    folded, kept = [], []
    for node in graph.node:
        has_subgraph = any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        )
        if (
            not has_subgraph
            and all(i in const for i in node.input)
            and node.op_type
            not in (
                "RandomNormal",
                "RandomUniform",
                "RandomNormalLike",
                "RandomUniformLike",
                "Multinomial",
                "Bernoulli",
            )
        ):
            folded.append(node)
            const.update(o for o in node.output if o)
        else:
            kept.append(node)
    if not folded:
        return 0
    needed = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    outputs = [o for n in folded for o in n.output if o and o in needed]
    used = {i for n in folded for i in n.input if i}
    sub = onnx.helper.make_graph(
        folded,
        "constants",
        [],
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
        [initializers[name] for name in used if name in initializers],
    )
    sub_model = onnx.helper.make_model(sub, opset_imports=model.opset_import)
    values = ReferenceEvaluator(sub_model).run(None, {})
    del graph.node[:]
    graph.node.extend(kept)
    for name, value in zip(outputs, values, strict=True):
        graph.initializer.append(numpy_helper.from_array(value, name))
    return len(folded)


def _shape_table(model: Any) -> dict[str, tuple[int, ...] | None]:
    """Name -> concrete shape (None if any dim is not a known positive integer)."""
    table: dict[str, tuple[int, ...] | None] = {}
    for init in model.graph.initializer:
        table[init.name] = tuple(int(d) for d in init.dims)
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if value.name in table or not value.type.HasField("tensor_type"):
            continue
        ttype = value.type.tensor_type
        if not ttype.HasField("shape"):
            table[value.name] = None
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim]
        table[value.name] = tuple(dims) if all(d >= 0 for d in dims) else None
    return table


def _itemsizes(model: Any) -> dict[str, int]:
    """Name -> bytes per element of every typed tensor (initializers and value infos)."""
    from onnx import helper

    def size(elem_type: int) -> int:
        try:
            return int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
        except (KeyError, TypeError, ValueError):
            return 0

    table = {t.name: size(t.data_type) for t in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if value.name not in table and value.type.HasField("tensor_type"):
            table[value.name] = size(value.type.tensor_type.elem_type)
    return table


def _traffic(model: Any, shape: dict[str, Any]) -> dict[str, int]:
    """Bytes one forward pass moves, counted from the graph (after constant folding):
    every initializer a node reads, once (``weight_bytes``), and every other tensor each
    node reads or writes (``activation_bytes``); ``input_bytes`` is the graph's inputs.
    A tensor whose shape or type is unknown is counted in ``uncounted_tensors``."""
    itemsize = _itemsizes(model)
    initializers = {t.name for t in model.graph.initializer} - {v.name for v in model.graph.input}

    def nbytes(name: str) -> int | None:
        dims = shape.get(name)
        return None if dims is None or not itemsize.get(name) else math.prod(dims) * itemsize[name]

    weights: set[str] = set()
    activation = uncounted = 0
    for node in model.graph.node:
        for name in [*node.input, *node.output]:
            if not name:
                continue
            if name in initializers:
                weights.add(name)
                continue
            got = nbytes(name)
            if got is None:
                uncounted += 1
            else:
                activation += got
    inputs = [v.name for v in model.graph.input if v.name not in initializers]
    return {
        "weight_bytes": sum(nbytes(w) or 0 for w in weights),
        "activation_bytes": activation,
        "input_bytes": sum(nbytes(i) or 0 for i in inputs),
        "uncounted_tensors": uncounted,
    }


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _node_cost(node: Any, shape: Any) -> tuple[int, int]:
    """(flops, macs) of one node; raises _Unknown when shapes are missing."""
    op = node.op_type

    def s(i: int, outputs: bool = False) -> tuple[int, ...]:
        names = node.output if outputs else node.input
        if i >= len(names) or not names[i]:
            raise _Unknown
        got = shape.get(names[i])
        if got is None:
            raise _Unknown
        return got

    has_bias = len(node.input) > 2 and bool(node.input[2])
    if op == "Conv":
        out, w = s(0, outputs=True), s(1)
        macs = math.prod(out) * w[1] * math.prod(w[2:])  # w: (C_out, C_in/group, *kernel)
        return 2 * macs + (math.prod(out) if has_bias else 0), macs
    if op == "ConvTranspose":
        x, w, out = s(0), s(1), s(0, outputs=True)
        macs = math.prod(x) * w[1] * math.prod(w[2:])  # w: (C_in, C_out/group, *kernel)
        return 2 * macs + (math.prod(out) if has_bias else 0), macs
    if op == "Gemm":
        a, b = s(0), s(1)
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        macs = m * n * k
        return 2 * macs + (m * n if has_bias else 0), macs
    if op == "MatMul":
        a, out = s(0), s(0, outputs=True)
        macs = math.prod(out) * a[-1]
        return 2 * macs, macs
    if op in ELEMENTWISE:
        return math.prod(s(0, outputs=True)), 0
    if op == "BatchNormalization":
        return 2 * math.prod(s(0, outputs=True)), 0
    if op in ("Softmax", "LogSoftmax"):
        return 3 * math.prod(s(0, outputs=True)), 0
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return math.prod(s(0, outputs=True)) * math.prod(_attr(node, "kernel_shape", [1])), 0
    if op in _REDUCE:
        return math.prod(s(0)), 0
    if op in ZERO_COST:
        return 0, 0
    raise _Unknown


def onnx_flops(path: str | os.PathLike[str], batch_size: int = 1) -> dict[str, Any]:
    """Count the FLOPs of one forward pass of an ONNX model (conventions: module docstring).

    Args:
        path: the ``.onnx`` file.
        batch_size: value given to the symbolic (or unknown) leading dim of every graph input;
            ValueError if an input's leading dim is fixed to another value.

    Returns:
        ``{"flops": int, "macs": int, "gflops": float, "batch_size": int,
        "flops_by_op_type": {op: int}, "macs_by_op_type": {op: int},
        "nodes_by_op_type": {op: int}, "uncounted": {op: n_nodes},
        "folded_constant_nodes": int, "params": int}``; ``params`` is the number of elements
        in the original graph's initializers.
    """
    import onnx

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = onnx.load(os.fspath(path))
    nodes: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        nodes[node.op_type] += 1
    # Learned parameters are the floating-point initializers: the dynamo exporter also stores
    # shape operands (int64, e.g. a Reshape's target) as initializers.
    params = sum(
        math.prod(t.dims)
        for t in model.graph.initializer
        if onnx.helper.tensor_dtype_to_np_dtype(t.data_type).kind == "f"
    )
    _fix_batch(model, batch_size)
    n_folded = _fold_constants(model)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    shape = _shape_table(model)
    flops: dict[str, int] = defaultdict(int)
    macs: dict[str, int] = defaultdict(int)
    uncounted: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        try:
            f, m = _node_cost(node, shape)
        except _Unknown:
            uncounted[node.op_type] += 1
            continue
        if f:
            flops[node.op_type] += f
        if node.op_type in _MAC_OPS:
            macs[node.op_type] += m
    total = sum(flops.values())
    return {
        "flops": total,
        "macs": sum(macs.values()),
        "gflops": total / 1e9,
        "batch_size": batch_size,
        "flops_by_op_type": dict(sorted(flops.items(), key=lambda kv: -kv[1])),
        "macs_by_op_type": dict(macs),
        "nodes_by_op_type": dict(sorted(nodes.items())),
        "uncounted": dict(uncounted),
        "folded_constant_nodes": n_folded,
        "params": params,
        **_traffic(model, shape),
    }


# ----------------------------------------------------------------------------- peak


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
            cur = {}
            continue
        key, _, value = line.partition(":")
        cur[key.strip()] = value.strip()
    if cur:
        blocks.append(cur)
    return blocks


def _physical_cores(blocks: list[dict[str, str]], allowed: set[int]) -> int:
    """Distinct (physical id, core id) among the allowed logical CPUs; logical count if absent."""
    cores = set()
    for b in blocks:
        cpu = int(b.get("processor", "-1"))
        if cpu not in allowed:
            continue
        if "core id" not in b:
            return len(allowed)
        cores.add((b.get("physical id", "0"), b["core id"]))
    return len(cores) or len(allowed)


def peak_gflops(
    cores: int | None = None,
    freq_ghz: float | None = None,
    fma_units: int = 2,
    cpuinfo: str = "/proc/cpuinfo",
    max_freq_file: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
) -> float | None:
    """Theoretical FP32 peak of this CPU in GFLOP/s, or None when it cannot be derived
    (:func:`theoretical_peak` says why)."""
    return theoretical_peak(cores, freq_ghz, fma_units, cpuinfo, max_freq_file, lscpu=None)[0]


def _lscpu_max_mhz(text: str) -> float | None:
    """``CPU max MHz`` from lscpu's output, or None (virtual machines usually omit it)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU max MHz":
            try:
                return float(value.strip().replace(",", "."))
            except ValueError:
                return None
    return None


def theoretical_peak(
    cores: int | None = None,
    freq_ghz: float | None = None,
    fma_units: int = 2,
    cpuinfo: str = "/proc/cpuinfo",
    max_freq_file: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
    lscpu: str | None = "lscpu",
) -> tuple[float | None, str]:
    """(theoretical FP32 peak in GFLOP/s or None, how it was derived or why it was not).

    ``peak = cores * freq_GHz * fma_units * lanes * 2`` where ``lanes`` is the FP32 vector
    width of the widest FMA instruction set in the ``/proc/cpuinfo`` flags (16 with
    ``avx512f``, 8 with ``avx2`` + ``fma``; anything else: None) and the final 2 counts
    an FMA as two FLOPs. ``cores`` defaults to the physical cores (distinct ``physical id`` /
    ``core id``) among the CPUs this process may run on (``os.sched_getaffinity``);
    ``freq_ghz`` defaults to ``cpuinfo_max_freq`` (kHz) from sysfs, else lscpu's
    ``CPU max MHz`` (the command ``lscpu``; None: not asked); when neither states it (common
    in VMs and containers) the peak is None rather than a guess from the current
    ``cpu MHz``. ``fma_units`` (FMA ports per core) cannot be read from cpuinfo: 2 is right
    for most server cores since Haswell/Skylake-SP Gold, but some AVX-512 parts have 1.
    It is an upper bound: turbo limits under all-core AVX-512 load are usually lower.
    """
    try:
        with open(cpuinfo) as f:
            blocks = _cpuinfo_blocks(f.read())
    except OSError as exc:
        return None, f"{cpuinfo} cannot be read ({exc.strerror})"
    if not blocks:
        return None, f"{cpuinfo} lists no CPU"
    flags = set(blocks[0].get("flags", "").split())
    if "avx512f" in flags:
        lanes, isa = 16, "AVX-512"
    elif "avx2" in flags and "fma" in flags:
        lanes, isa = 8, "AVX2+FMA"
    else:
        return None, f"{cpuinfo} flags state neither avx512f nor avx2 with fma"
    if cores is None:
        try:
            allowed = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            allowed = set(range(os.cpu_count() or 0))
        cores = _physical_cores(blocks, allowed)
    source = "given"
    if freq_ghz is None:
        try:
            with open(max_freq_file) as f:
                freq_ghz, source = int(f.read().strip()) / 1e6, max_freq_file  # kHz -> GHz
        except (OSError, ValueError):
            freq_ghz = None
    if freq_ghz is None and lscpu:
        import subprocess

        try:
            out = subprocess.run([lscpu], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        mhz = _lscpu_max_mhz(out)
        if mhz:
            freq_ghz, source = mhz / 1e3, "lscpu CPU max MHz"
    if freq_ghz is None:
        return None, (
            f"the CPU states no maximum clock ({max_freq_file} absent"
            + (", lscpu gives no CPU max MHz" if lscpu else "")
            + "; usual in a virtual machine)"
        )
    if cores < 1 or freq_ghz <= 0:
        return None, f"{cores} cores at {freq_ghz} GHz"
    peak = cores * freq_ghz * fma_units * lanes * 2
    return peak, (
        f"{cores} cores x {freq_ghz:.3g} GHz ({source}) x {lanes} FP32 lanes ({isa}) x "
        f"{fma_units} FMA units x 2"
    )
