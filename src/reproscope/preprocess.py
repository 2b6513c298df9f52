"""Image preprocessing: every step an explicit manifest field (see docs/pitfalls)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
}
CV2_FILTERS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}
PREPROCESS_FIELDS = (
    "size",
    "decoder",
    "grayscale",
    "color_order",
    "resize",
    "crop_ratio",
    "normalize",
    "dtype",
    "layout",
    "layout_conversion",
)


def spec_of(inputs: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest's inputs that determines the tensor; defaults made explicit."""
    spec = {k: inputs[k] for k in PREPROCESS_FIELDS if k in inputs}
    spec.setdefault("layout_conversion", "transpose")
    return spec


def spec_hash(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def antialias_problem(resize: dict[str, Any]) -> str | None:
    """Why a resize spec cannot be done as written, or None."""
    library, method, antialias = resize["library"], resize["method"], resize["antialias"]
    inherent = (method != "nearest") if library == "pil" else (method == "area")
    if antialias != inherent:
        return (
            f"{library} {method} resizing {'always' if inherent else 'never'} antialiases, "
            f"so antialias must be {str(inherent).lower()}"
        )
    return None


def decode(path: str | Path, decoder: str) -> np.ndarray:
    """HWC uint8 RGB; grayscale and CMYK images are converted to three channels."""
    if decoder == "pil":
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    if decoder == "opencv":
        data = np.fromfile(path, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"OpenCV cannot decode {path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    raise ValueError(f"unknown decoder {decoder!r}")


def resized_shape(
    h: int, w: int, size: Sequence[int], crop_ratio: float, target: str
) -> tuple[int, int]:
    """(height, width) before the center crop.

    squash: (round(H / r), round(W / r)); shorter_side: the shorter side becomes
    round(S / r) for its own model dimension S and the longer side keeps the aspect
    ratio, truncated (torchvision's convention).
    """
    out_h, out_w = round(size[0] / crop_ratio), round(size[1] / crop_ratio)
    if target == "squash":
        return out_h, out_w
    if h <= w:
        return out_h, max(out_w, int(w * out_h / h))
    return max(out_h, int(h * out_w / w)), out_w


def resize(image: np.ndarray, hw: tuple[int, int], library: str, method: str) -> np.ndarray:
    if library == "pil":
        pil = Image.fromarray(image)
        return np.asarray(pil.resize((hw[1], hw[0]), resample=PIL_FILTERS[method]))
    if library == "opencv":
        return cv2.resize(image, (hw[1], hw[0]), interpolation=CV2_FILTERS[method])
    raise ValueError(f"unknown resize library {library!r}")


def center_crop(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Crop size=(H, W) from the centre; offsets round like torchvision's center_crop."""
    h, w = image.shape[:2]
    if h < size[0] or w < size[1]:
        raise ValueError(f"image {h}x{w} is smaller than the crop {size[0]}x{size[1]}")
    top = int(round((h - size[0]) / 2.0))
    left = int(round((w - size[1]) / 2.0))
    return image[top : top + size[0], left : left + size[1]]


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
    if layout == "NHWC":
        return image
    if conversion == "reshape":  # the bug: HWC memory read as CHW
        h, w, c = image.shape
        return image.reshape(c, h, w)
    return image.transpose(2, 0, 1)


def preprocess_image(path: str | Path, spec: dict[str, Any]) -> np.ndarray:
    image = decode(path, spec["decoder"])
    h, w = image.shape[:2]
    target = resized_shape(h, w, spec["size"], spec["crop_ratio"], spec["resize"]["target"])
    image = resize(image, target, spec["resize"]["library"], spec["resize"]["method"])
    image = center_crop(image, spec["size"])
    image = reorder_channels(image, spec["color_order"])
    tensor = normalize(image, spec["normalize"])
    tensor = to_layout(tensor, spec["layout"], spec.get("layout_conversion", "transpose"))
    return np.ascontiguousarray(tensor.astype(np.dtype(spec["dtype"])))


def preprocess_files(
    paths: Sequence[str | Path], spec: dict[str, Any], threads: int = 1, timed: bool = False
) -> Any:
    """Every image through the spec, in order; decoding and resizing release the GIL, so
    threads overlap them. With timed=True also return each image's seconds."""

    def one(path: str | Path) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        tensor = preprocess_image(path, spec)
        return tensor, time.perf_counter() - start

    if threads <= 1:
        results = [one(p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(one, paths))
    tensor = np.stack([r[0] for r in results])
    return (tensor, [r[1] for r in results]) if timed else tensor
