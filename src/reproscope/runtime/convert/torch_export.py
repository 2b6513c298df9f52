"""PyTorch helpers: load a state dict as numpy arrays and export a model to ONNX.

``torch`` is imported inside the functions so that importing this module stays cheap and works
without torch installed.

ONNX export goes through the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, which
needs the ``onnxscript`` package). Every dynamo export is checked against the legacy
TorchScript export of the same model on seeded inputs (run with ``onnx``'s reference
evaluator, which every environment that exports has): top-1 must agree on every input, and
the largest logit difference is recorded. The legacy exporter is only the fallback when the
dynamo exporter fails (``onnxscript`` missing, a model ``torch.export`` cannot trace, an opset
it cannot produce). Which exporter wrote the file, why the fallback was taken and the parity
figures are written into the ONNX file's ``metadata_props`` (keys ``reproscope.*``): the
artifact carries its own conversion record.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DYNAMO = "dynamo"
LEGACY = "legacy-torchscript"
# Parity inputs: batch 2 (the export's example has batch 1, so the dynamic batch is exercised
# too), standard-normal values from this seed.
PARITY_BATCH = 2
PARITY_SEED = 0
METADATA_PREFIX = "reproscope."


@dataclass(frozen=True)
class Parity:
    """Agreement of a candidate export with a reference export on the same inputs."""

    n_inputs: int
    top1_agreement_pct: float
    max_abs_logit_diff: float


@dataclass(frozen=True)
class ExportRecord:
    """What wrote an ONNX file: the exporter, why the fallback was taken (empty when it was
    not) and the dynamo export's parity with the legacy export (None after a fallback)."""

    exporter: str
    fallback_reason: str
    parity: Parity | None

    def metadata(self) -> dict[str, str]:
        fields = {"exporter": self.exporter, "fallback_reason": self.fallback_reason}
        if self.parity is not None:
            fields |= {f"parity_{k}": repr(v) for k, v in asdict(self.parity).items()}
        return {METADATA_PREFIX + k: v for k, v in fields.items()}


class ParityError(ValueError):
    """The dynamo and legacy exports of one model disagree on a top-1 prediction."""


def state_dict_to_numpy(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a PyTorch state dict with ``weights_only=True`` and return numpy copies of it."""
    import torch

    state_dict = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict):
        raise TypeError(f"{path}: expected a state dict, got {type(state_dict).__name__}")
    return {key: tensor.detach().cpu().numpy().copy() for key, tensor in state_dict.items()}


def export_onnx(
    model: torch.nn.Module,
    out_path: str | os.PathLike[str],
    input_shape: tuple[int, ...],
    opset: int = 18,
) -> ExportRecord:
    """Export ``model`` (in eval mode) to ONNX with a dynamic batch dimension.

    Args:
        model: the module to export; it is switched to eval mode.
        out_path: destination ``.onnx`` file (a single file, weights embedded).
        input_shape: example input shape including the batch dimension, e.g. ``(1, 3, 224, 224)``.
        opset: ONNX opset version (the dynamo exporter writes 18 and above).

    The graph has one float32 input named ``"input"`` and one output named ``"logits"``; axis 0
    of both is the symbolic dimension ``"batch"``. Returns the record also written into the
    file's metadata. Raises ParityError when the dynamo export disagrees with the legacy one.
    """
    model.eval()
    out = Path(out_path)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        legacy = Path(tmp) / "legacy.onnx"
        export_legacy(model, legacy, input_shape, opset)
        try:
            _export_dynamo(model, out, input_shape, opset)
        except Exception as exc:  # any dynamo failure: the legacy export stands in
            record = ExportRecord(LEGACY, _first_line(exc), None)
            legacy.replace(out)
        else:
            parity = onnx_parity(legacy, out, input_shape)
            record = ExportRecord(DYNAMO, "", parity)
            if parity.top1_agreement_pct < 100.0:
                raise ParityError(
                    f"{out}: the dynamo ONNX export disagrees with the legacy export on "
                    f"{100.0 - parity.top1_agreement_pct:.1f} % of {parity.n_inputs} seeded "
                    f"inputs (max |logit difference| {parity.max_abs_logit_diff:.3g}); fix: "
                    "report the model and torch version, and pin a torch release whose "
                    "exporters agree"
                )
    _write_metadata(out, record.metadata())
    return record


def onnx_parity(
    reference: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    input_shape: tuple[int, ...],
) -> Parity:
    """Run both ONNX files on the same seeded batch with onnx's reference evaluator."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    shape = (PARITY_BATCH, *input_shape[1:])
    x = np.random.default_rng(PARITY_SEED).standard_normal(shape).astype(np.float32)
    logits = [
        np.asarray(ReferenceEvaluator(onnx.load(os.fspath(p))).run(None, {INPUT_NAME: x})[0])
        for p in (reference, candidate)
    ]
    agree = logits[0].argmax(axis=1) == logits[1].argmax(axis=1)
    return Parity(
        n_inputs=len(agree),
        top1_agreement_pct=float(100.0 * agree.mean()),
        max_abs_logit_diff=float(np.abs(logits[0] - logits[1]).max()),
    )


def read_record(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``reproscope.*`` metadata of an ONNX file, prefix removed."""
    import onnx

    props = onnx.load(os.fspath(path), load_external_data=False).metadata_props
    return {p.key.removeprefix(METADATA_PREFIX): p.value for p in props}


def _export_dynamo(
    model: torch.nn.Module, out: Path, input_shape: tuple[int, ...], opset: int
) -> None:
    import onnx
    import torch

    example = torch.zeros(input_shape, dtype=torch.float32)
    # The exporter prints its progress to stdout and logs a traceback when it cannot convert
    # to the opset asked for; the opset check below turns that into a fallback reason.
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            os.fspath(out),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    written = onnx.load(os.fspath(out))
    version = {o.domain: o.version for o in written.opset_import}.get("", 0)
    if version != opset:
        raise ValueError(f"the dynamo exporter wrote opset {version}, not the {opset} asked for")
    outputs = [o.name for o in written.graph.output]
    if outputs != [OUTPUT_NAME]:
        raise ValueError(f"the dynamo exporter named the outputs {outputs}, not {[OUTPUT_NAME]}")


def export_legacy(
    model: torch.nn.Module, out: Path, input_shape: tuple[int, ...], opset: int
) -> None:
    import torch

    example = torch.zeros(input_shape, dtype=torch.float32)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    with warnings.catch_warnings():
        # dynamo=False emits a DeprecationWarning about the legacy TorchScript exporter.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Harmless: the exporter cannot fold a strided Slice produced by shape arithmetic.
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        with torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                os.fspath(out),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                dynamo=False,
            )


def _first_line(exc: BaseException) -> str:
    """The exception's type and first line, then its cause's, without terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    line = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
    cause = f" (cause: {_first_line(exc.__cause__)})" if exc.__cause__ is not None else ""
    return (line + cause)[:500]


def _write_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(os.fspath(path))
    onnx.helper.set_model_props(model, metadata)
    onnx.save(model, os.fspath(path))
