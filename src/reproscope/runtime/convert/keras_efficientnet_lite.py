"""Build EfficientNet-Lite0 in Keras 3 from a PyTorch ``efficientnet_lite_pytorch`` state dict.

Only built-in Keras layers are used (no ``Lambda``, no custom layers), so a model saved as
``.keras`` loads with ``keras.models.load_model(path, safe_mode=True)`` without
``custom_objects``.

Architecture (``efficientnet_lite_pytorch``, ``efficientnet-lite0``): ReLU6 activations, no
squeeze-and-excitation, fixed stem (32) and head (1280) widths, TensorFlow ``SAME`` padding,
BatchNorm epsilon 1e-3. The torch package's ``Conv2dStaticSamePadding`` pads
``pad // 2`` before and ``pad - pad // 2`` after, which is exactly TensorFlow's ``SAME`` rule,
so Keras ``padding="same"`` reproduces it, stride-2 layers included.

Layout: input NHWC float32 ``(batch, H, W, 3)``; output raw logits ``(batch, 1000)``.
This module deliberately imports no torch: the state dict is passed as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np

BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks (EfficientNet-Lite0, width = depth = 1.0)."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    input_filters: int
    output_filters: int


# From efficientnet_lite_pytorch.utils.efficientnet_lite (r, k, s, e, i, o).
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class BlockSpec:
    """A single MBConv block after expanding stage repeats."""

    index: int
    kernel_size: int
    stride: int
    expand_ratio: int
    input_filters: int
    output_filters: int

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.input_filters == self.output_filters


def lite0_blocks() -> list[BlockSpec]:
    """Expand the stage table into per-block specs, in torch ``_blocks`` order."""
    blocks: list[BlockSpec] = []
    for stage in LITE0_STAGES:
        for r in range(stage.repeats):
            blocks.append(
                BlockSpec(
                    index=len(blocks),
                    kernel_size=stage.kernel_size,
                    stride=stage.stride if r == 0 else 1,
                    expand_ratio=stage.expand_ratio,
                    input_filters=stage.input_filters if r == 0 else stage.output_filters,
                    output_filters=stage.output_filters,
                )
            )
    return blocks


# --------------------------------------------------------------------------- weight conversion


def _get(state_dict: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state_dict:
        raise KeyError(f"state dict lacks {key!r}")
    return np.asarray(state_dict[key], dtype=np.float32)


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight OIHW -> Keras Conv2D kernel HWIO."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch depthwise weight (C, 1, kH, kW) -> Keras DepthwiseConv2D kernel (kH, kW, C, 1)."""
    if weight.ndim != 4 or weight.shape[1] != 1:
        raise ValueError(f"expected depthwise weight (C, 1, k, k), got {weight.shape}")
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1))


def dense_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch Linear weight (out, in) -> Keras Dense kernel (in, out)."""
    return np.ascontiguousarray(weight.T)


def batchnorm_weights(state_dict: Mapping[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """Keras BatchNormalization weight order: gamma, beta, moving_mean, moving_variance."""
    return [
        _get(state_dict, f"{prefix}.weight"),
        _get(state_dict, f"{prefix}.bias"),
        _get(state_dict, f"{prefix}.running_mean"),
        _get(state_dict, f"{prefix}.running_var"),
    ]


# --------------------------------------------------------------------------- graph construction


def _conv_bn(
    x: keras.KerasTensor, filters: int, kernel_size: int, stride: int, name: str
) -> keras.KerasTensor:
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)


def _relu6(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return keras.layers.ReLU(max_value=6.0, name=name)(x)


def _mbconv(x: keras.KerasTensor, block: BlockSpec) -> keras.KerasTensor:
    name = f"blocks_{block.index}"
    inputs = x
    expanded = block.input_filters * block.expand_ratio
    if block.expand_ratio != 1:
        x = _conv_bn(x, expanded, 1, 1, f"{name}_expand")
        x = _relu6(x, f"{name}_expand_relu6")
    x = keras.layers.DepthwiseConv2D(
        block.kernel_size,
        strides=block.stride,
        padding="same",
        use_bias=False,
        name=f"{name}_depthwise_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_depthwise_bn")(x)
    x = _relu6(x, f"{name}_depthwise_relu6")
    x = _conv_bn(x, block.output_filters, 1, 1, f"{name}_project")
    if block.has_skip:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_architecture(image_size: int = 224, num_classes: int = 1000) -> keras.Model:
    """EfficientNet-Lite0 graph with freshly initialised weights."""
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="input")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem")
    x = _relu6(x, "stem_relu6")
    for block in lite0_blocks():
        x = _mbconv(x, block)
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "head")
    x = _relu6(x, "head_relu6")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _set(model: keras.Model, layer_name: str, weights: list[np.ndarray]) -> None:
    layer = model.get_layer(layer_name)
    expected = [tuple(w.shape) for w in layer.weights]
    got = [tuple(w.shape) for w in weights]
    if expected != got:
        raise ValueError(f"{layer_name}: weight shapes {got} do not match layer {expected}")
    layer.set_weights(weights)


def _load_conv_bn(
    model: keras.Model, sd: Mapping[str, np.ndarray], name: str, conv_key: str, bn_key: str
) -> None:
    _set(model, f"{name}_conv", [conv_kernel(_get(sd, f"{conv_key}.weight"))])
    _set(model, f"{name}_bn", batchnorm_weights(sd, bn_key))


def _load_block(model: keras.Model, sd: Mapping[str, np.ndarray], block: BlockSpec) -> None:
    name, key = f"blocks_{block.index}", f"_blocks.{block.index}"
    if block.expand_ratio != 1:
        _load_conv_bn(model, sd, f"{name}_expand", f"{key}._expand_conv", f"{key}._bn0")
    dw = depthwise_kernel(_get(sd, f"{key}._depthwise_conv.weight"))
    _set(model, f"{name}_depthwise_conv", [dw])
    _set(model, f"{name}_depthwise_bn", batchnorm_weights(sd, f"{key}._bn1"))
    _load_conv_bn(model, sd, f"{name}_project", f"{key}._project_conv", f"{key}._bn2")


def _check_block_count(state_dict: Mapping[str, np.ndarray]) -> None:
    found = {int(key.split(".")[1]) for key in state_dict if key.startswith("_blocks.")}
    expected = set(range(len(lite0_blocks())))
    if found != expected:
        raise ValueError(
            f"state dict has blocks {sorted(found)}, EfficientNet-Lite0 has {sorted(expected)}"
        )


def load_state_dict(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy a torch EfficientNet-Lite0 state dict (numpy arrays) into ``model`` in place."""
    _check_block_count(state_dict)
    _load_conv_bn(model, state_dict, "stem", "_conv_stem", "_bn0")
    for block in lite0_blocks():
        _load_block(model, state_dict, block)
    _load_conv_bn(model, state_dict, "head", "_conv_head", "_bn1")
    fc_kernel = dense_kernel(_get(state_dict, "_fc.weight"))
    _set(model, "logits", [fc_kernel, _get(state_dict, "_fc.bias")])


def build_from_state_dict(
    state_dict: Mapping[str, np.ndarray], image_size: int = 224
) -> keras.Model:
    """Build EfficientNet-Lite0 in Keras and load weights from a torch state dict.

    Args:
        state_dict: ``efficientnet_lite_pytorch`` EfficientNet-Lite0 state dict, values as
            numpy arrays (``num_batches_tracked`` entries are ignored).
        image_size: square input resolution; the model takes NHWC float32
            ``(batch, image_size, image_size, 3)``.

    Returns:
        A ``keras.Model`` producing logits ``(batch, num_classes)``.
    """
    num_classes = int(np.shape(_get(state_dict, "_fc.weight"))[0])
    model = build_architecture(image_size=image_size, num_classes=num_classes)
    load_state_dict(model, state_dict)
    return model
