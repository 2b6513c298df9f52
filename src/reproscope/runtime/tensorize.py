"""The cheap, per-pixel stages that turn cached uint8 pixels into a model's input tensor:
colour order, normalisation and its arithmetic, layout, dtype.

Env-side (numpy only): inference jobs apply these stages to batches read from the
geometric cache (see acquire.preprocess and runtime.cache), so every variant that
differs only here shares one cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TENSOR_FIELDS = ("color_order", "normalize", "dtype", "layout", "layout_conversion")


def tensor_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a preprocessing spec applied after the geometric cache."""
    out = {k: spec[k] for k in TENSOR_FIELDS if k in spec}
    out.setdefault("layout_conversion", "transpose")
    return out


def reorder_channels(image: np.ndarray, color_order: str) -> np.ndarray:
    return image[..., ::-1] if color_order == "BGR" else image


def normalize(image: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """(pixel * scale - mean) / std per channel, as float32.

    uint8_wrapping reproduces a classic bug: the mean (in pixel units, mean / scale)
    is subtracted in uint8, so values below it wrap around modulo 256.
    """
    scale = np.float32(norm["scale"])
    mean = np.asarray(norm["mean"], dtype=np.float32)
    std = np.asarray(norm["std"], dtype=np.float32)
    if norm["arithmetic"] == "uint8_wrapping":
        pixel_mean = np.round(mean / scale).astype(np.int64) % 256
        wrapped = (image.astype(np.int64) - pixel_mean) % 256
        return (wrapped.astype(np.float32) * scale) / std
    return (image.astype(np.float32) * scale - mean) / std


def to_layout(image: np.ndarray, layout: str, conversion: str) -> np.ndarray:
    """HWC (or NHWC) -> the model's layout. conversion "reshape" is the bug of reading
    HWC memory as CHW; it needs contiguous input, which normalize always returns."""
    if layout == "NHWC":
        return image
    *lead, h, w, c = image.shape
    if conversion == "reshape":
        return np.ascontiguousarray(image).reshape(*lead, c, h, w)
    return np.moveaxis(image, -1, -3)


def finish(pixels: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """uint8 pixels, one HWC image or an NHWC batch -> the model's input tensor.

    Every operation is elementwise or a reindexing, so a batch gives the same bytes as
    its images one by one.
    """
    image = reorder_channels(pixels, spec["color_order"])
    tensor = normalize(image, spec["normalize"])
    tensor = to_layout(tensor, spec["layout"], spec.get("layout_conversion", "transpose"))
    return np.ascontiguousarray(tensor.astype(np.dtype(spec["dtype"])))


def batch_of(inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The first batch_size inputs, cycling through the set when it is smaller."""
    index = np.arange(batch_size) % len(inputs)
    return np.ascontiguousarray(inputs[index])
