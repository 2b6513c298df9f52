"""Image preprocessing: every step an explicit manifest field (see docs/pitfalls)."""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from reproscope.acquire.cache_writer import write_cache
from reproscope.errors import InputError
from reproscope.runtime.cache import CHUNK_IMAGES, INDEX
from reproscope.runtime.tensorize import (  # noqa: F401 (re-exported: the per-pixel stages)
    finish,
    normalize,
    reorder_channels,
    tensor_spec,
    to_layout,
)

# Every decoder's cap, checked on the file's header before any pixel is decoded (PIL's
# lazy open reads only the header; OpenCV's own limit is 2^30 pixels).
MAX_IMAGE_PIXELS = 89_478_485  # PIL's own default (~ 9459 x 9459); ImageNet's largest ~ 35 MP

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
GEOMETRIC_FIELDS = ("size", "decoder", "grayscale", "resize", "crop_ratio")
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


def _image_error(path: str | Path, problem: str, fix: str) -> InputError:
    return InputError(path, "(image)", problem, fix)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header, read lazily (no pixels decoded); refuses
    an image of more than MAX_IMAGE_PIXELS pixels before any decoder allocates it."""
    try:
        with warnings.catch_warnings():  # the cap below says it better, naming the file
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise _image_error(path, f"is a decompression bomb ({exc})", "leave it out") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise _image_error(
            path,
            f"is not an image whose header can be read ({exc})",
            "replace the file or leave it out with the dataset's 'files' glob",
        ) from None
    if width * height > MAX_IMAGE_PIXELS or width <= 0 or height <= 0:
        raise _image_error(
            path,
            f"is {width}x{height} pixels, over the cap of {MAX_IMAGE_PIXELS} "
            "(a decompression bomb, or far larger than any model input)",
            "downscale it, or leave it out with the dataset's 'files' glob",
        )
    return width, height


def decode(path: str | Path, decoder: str) -> np.ndarray:
    """HWC uint8 RGB; grayscale and CMYK images are converted to three channels. Every
    decoder is capped at MAX_IMAGE_PIXELS (checked on the header before decoding), and a
    file that does not decode is an InputError naming it."""
    if decoder not in ("pil", "opencv"):
        raise ValueError(f"unknown decoder {decoder!r}")
    image_size(path)
    if decoder == "pil":
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise _image_error(
                path,
                f"cannot be decoded ({exc})",
                "replace the file (it may be truncated) or leave it out with 'files'",
            ) from None
    if decoder == "opencv":
        data = np.fromfile(path, dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise _image_error(
                path,
                "OpenCV cannot decode it",
                "replace the file or leave it out with the dataset's 'files' glob",
            )
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


def geometric_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that decides the uint8 pixels: decode, grayscale, resize, crop."""
    return {k: spec[k] for k in GEOMETRIC_FIELDS if k in spec}


def geometric(path: str | Path, spec: dict[str, Any]) -> np.ndarray:
    """Decode, resize and crop: HWC uint8, the stage the cache stores.

    Both resize libraries work on uint8 and round once, so the pixels are exact uint8;
    the float stages (reshaping, normalising) come after, in reproscope.runtime.tensorize.
    """
    image = decode(path, spec["decoder"])
    h, w = image.shape[:2]
    target = resized_shape(h, w, spec["size"], spec["crop_ratio"], spec["resize"]["target"])
    if target[0] * target[1] > MAX_IMAGE_PIXELS // 4:
        # a 20000x1 strip resized to a shorter side of 256 would ask for gigabytes
        raise _image_error(
            path,
            f"is {w}x{h} pixels: resizing it to {target[1]}x{target[0]} would need "
            f"{target[0] * target[1] * 3} bytes (aspect ratio {max(w, h) / min(w, h):.0f}:1)",
            "leave the image out with the dataset's 'files' glob",
        )
    image = resize(image, target, spec["resize"]["library"], spec["resize"]["method"])
    return np.ascontiguousarray(center_crop(image, spec["size"]))


def preprocess_image(path: str | Path, spec: dict[str, Any]) -> np.ndarray:
    """One image through the whole spec (the reference the cached path must equal)."""
    return finish(geometric(path, spec), tensor_spec(spec))


def build_cache(
    paths: Sequence[str | Path],
    spec: dict[str, Any],
    out_dir: Path,
    workers: int = 1,
    chunk_images: int = CHUNK_IMAGES,
    log: Any = None,
) -> dict[str, Any]:
    """The geometric stage of spec over every path, in order, as a uint8 chunked cache in
    out_dir (cache.json and chunks/)."""
    geometry = geometric_spec(spec)
    return write_cache(
        [str(p) for p in paths],
        functools.partial(geometric, spec=geometry),
        (*geometry["size"], 3),
        out_dir / "chunks",
        out_dir / INDEX,
        workers=workers,
        chunk_images=chunk_images,
        log=log,
        spec=geometry,
    )
