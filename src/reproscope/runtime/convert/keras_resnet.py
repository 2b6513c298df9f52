"""Port keras.applications.ResNet50 weights (a .keras file) to reproscope's PyTorch ResNet-50 v1.

The two graphs are the same function (reproscope.runtime.resnet.ResNet50V1 documents how it
differs from torchvision's v1.5), so the port is a renaming plus layout changes:
Keras ``conv{s}_block{b}_{i}_conv`` -> torch ``layer{s-1}.{b-1}.conv{i}`` (``_0_`` is the
shortcut, ``downsample``), kernels HWIO -> OIHW, the Dense kernel transposed.
It returns numpy arrays keyed like the torch state dict.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from reproscope.runtime.resnet import RESNET50_STAGES


def layer_pairs() -> Iterator[tuple[str, str, str]]:
    """(kind, keras layer, torch prefix) for every weighted layer of ResNet-50 v1."""
    yield "conv", "conv1_conv", "conv1"
    yield "bn", "conv1_bn", "bn1"
    for s, (_filters, blocks, _stride) in enumerate(RESNET50_STAGES, start=2):
        for b in range(blocks):
            keras_block, torch_block = f"conv{s}_block{b + 1}", f"layer{s - 1}.{b}"
            if b == 0:
                yield "conv", f"{keras_block}_0_conv", f"{torch_block}.downsample.0"
                yield "bn", f"{keras_block}_0_bn", f"{torch_block}.downsample.1"
            for i in (1, 2, 3):
                yield "conv", f"{keras_block}_{i}_conv", f"{torch_block}.conv{i}"
                yield "bn", f"{keras_block}_{i}_bn", f"{torch_block}.bn{i}"
    yield "dense", "predictions", "fc"


def keras_to_torch_state(weights: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Keras layer name -> its weights (get_weights order) to a torch state dict of arrays."""
    state: dict[str, np.ndarray] = {}
    used = set()
    for kind, keras_name, prefix in layer_pairs():
        if keras_name not in weights:
            raise KeyError(f"the Keras model has no layer {keras_name!r}: not ResNet-50 v1")
        used.add(keras_name)
        values = [np.asarray(w, dtype=np.float32) for w in weights[keras_name]]
        if kind == "conv":
            kernel, bias = values
            state[f"{prefix}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            state[f"{prefix}.bias"] = bias
        elif kind == "dense":
            kernel, bias = values
            state[f"{prefix}.weight"] = np.ascontiguousarray(kernel.T)
            state[f"{prefix}.bias"] = bias
        else:
            gamma, beta, mean, variance = values
            state.update(
                {
                    f"{prefix}.weight": gamma,
                    f"{prefix}.bias": beta,
                    f"{prefix}.running_mean": mean,
                    f"{prefix}.running_var": variance,
                }
            )
    extra = sorted(name for name, w in weights.items() if w and name not in used)
    if extra:
        raise ValueError(f"Keras layers {extra} have weights with no ResNet-50 v1 counterpart")
    return state


def keras_file_weights(path: str) -> dict[str, list[np.ndarray]]:
    """Load a .keras file in safe mode and return each layer's weights."""
    import keras

    model = keras.models.load_model(path, safe_mode=True, compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers}
