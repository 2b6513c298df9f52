"""PyTorch helpers: load a state dict as numpy arrays and export a model to ONNX.

``torch`` is imported inside the functions so that importing this module stays cheap and works
without torch installed.

ONNX export uses the legacy TorchScript exporter (``dynamo=False``). In torch 2.13 the default
``dynamo=True`` exporter requires the ``onnxscript`` package, which is not a dependency of this
project; the legacy exporter needs only ``onnx``, supports ``dynamic_axes`` and produces
byte-identical files for repeated exports of the same model.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


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
    opset: int = 17,
) -> None:
    """Export ``model`` (in eval mode) to ONNX with a dynamic batch dimension.

    Args:
        model: the module to export; it is switched to eval mode.
        out_path: destination ``.onnx`` file (a single file, weights embedded).
        input_shape: example input shape including the batch dimension, e.g. ``(1, 3, 224, 224)``.
        opset: ONNX opset version.

    The graph has one float32 input named ``"input"`` and one output named ``"logits"``; axis 0
    of both is the symbolic dimension ``"batch"``.
    """
    import torch

    model.eval()
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
                os.fspath(out_path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                dynamo=False,
            )
