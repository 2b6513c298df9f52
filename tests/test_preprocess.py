"""Tests for reproscope.acquire.preprocess, each against an independent reference computation.

Images are tiny and generated in tmp_path; references are written out with numpy, PIL,
OpenCV or torch calls in the test itself. Decoder and resampler differences that are
inherent to the libraries are asserted with measured tolerances (see the comments).
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from reproscope.acquire.preprocess import (
    antialias_problem,
    center_crop,
    decode,
    normalize,
    preprocess_image,
    reorder_channels,
    resize,
    resized_shape,
    spec_hash,
    spec_of,
    to_layout,
)
from reproscope.errors import InputError

MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "efficientnet-lite0-pytorch.yaml"
IMAGENET = {
    "scale": 1 / 255,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "arithmetic": "float32",
}


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """HWC uint8: per-channel gradients plus mild noise (JPEG-friendly, not constant)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.5 + 100.0 * np.sin(x / 5.0) * np.cos(y / 7.0)
    image = np.stack([r, g, b], axis=-1) + rng.normal(0.0, 6.0, (h, w, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def noise_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """HWC uint8 uniform noise: every pixel independent, worst case for interpolation."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _torch_resize(image: np.ndarray, hw: tuple[int, int], mode: str, antialias: bool) -> np.ndarray:
    """HWC uint8 -> HWC float64 through torch.nn.functional.interpolate (no rounding)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()
    y = F.interpolate(x, size=hw, mode=mode, align_corners=False, antialias=antialias)
    return y[0].permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- decode


def test_decode_jpeg_pil_vs_opencv_close(tmp_path: Path) -> None:
    source = smooth_rgb(48, 64)
    path = tmp_path / "a.jpg"
    Image.fromarray(source).save(path, quality=90)
    pil, ocv = decode(path, "pil"), decode(path, "opencv")
    assert pil.shape == ocv.shape == (48, 64, 3)
    assert pil.dtype == ocv.dtype == np.uint8
    diff = np.abs(pil.astype(np.int16) - ocv.astype(np.int16))
    # Both usually link libjpeg-turbo (measured: identical here); different IDCT or
    # chroma upsampling would show as a few levels, never more.
    assert diff.mean() < 1.0
    assert diff.max() <= 8
    # And both are a faithful decode of what was written (JPEG loss only).
    assert np.abs(pil.astype(np.int16) - source).mean() < 6.0


def test_decode_png_lossless_identical(tmp_path: Path) -> None:
    source = noise_rgb(9, 13)
    path = tmp_path / "a.png"
    Image.fromarray(source).save(path)
    np.testing.assert_array_equal(decode(path, "pil"), source)
    np.testing.assert_array_equal(decode(path, "opencv"), source)


@pytest.mark.parametrize("decoder", ["pil", "opencv"])
def test_decode_grayscale_jpeg_three_identical_channels(tmp_path: Path, decoder: str) -> None:
    gray = smooth_rgb(16, 24)[..., 0]
    path = tmp_path / "g.jpg"
    Image.fromarray(gray, mode="L").save(path, quality=95)
    out = decode(path, decoder)
    assert out.shape == (16, 24, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    with Image.open(path) as image:  # reference: the single-channel decode itself
        assert image.mode == "L"
        reference = np.asarray(image).astype(np.int16)
    assert np.abs(out[..., 0].astype(np.int16) - reference).max() <= 2


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((0, 255, 255, 0), (255, 0, 0)),  # magenta + yellow = red
        ((255, 0, 0, 0), (0, 255, 255)),  # cyan
        ((0, 0, 0, 128), (127, 127, 127)),
    ],  # half black = mid grey
)
@pytest.mark.parametrize("decoder", ["pil", "opencv"])
def test_decode_cmyk_jpeg_to_rgb(tmp_path: Path, decoder: str, cmyk: tuple, rgb: tuple) -> None:
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (16, 16), cmyk).save(path, quality=95)
    with Image.open(path) as image:
        assert image.mode == "CMYK"
    out = decode(path, decoder)
    assert out.shape == (16, 16, 3)
    # Measured: PIL gives the exact colour, OpenCV is within 1 level.
    assert np.abs(out.reshape(-1, 3).astype(np.int16) - np.array(rgb)).max() <= 4


def test_decode_exif_orientation_differs_between_decoders(tmp_path: Path) -> None:
    """Documents a real decoder difference: cv2.IMREAD_COLOR applies EXIF orientation,
    PIL's Image.open does not (torchvision-style pipelines see the stored pixels)."""
    source = np.zeros((8, 16, 3), np.uint8)
    source[:, :8] = 255
    image = Image.fromarray(source)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)
    assert decode(path, "pil").shape == (8, 16, 3)
    assert decode(path, "opencv").shape == (16, 8, 3)


def test_decode_16bit_png_differs_between_decoders(tmp_path: Path) -> None:
    """Documents a real decoder difference: PIL clips I;16 to 255, OpenCV divides by 256."""
    values = np.array([[0, 1000, 30000, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    np.testing.assert_array_equal(decode(path, "pil")[0, :, 0], [0, 255, 255, 255])
    np.testing.assert_array_equal(decode(path, "opencv")[0, :, 0], values[0] // 256)


def test_decode_unknown_decoder_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="unknown decoder"):
        decode(path, "skimage")
    for decoder in ("opencv", "pil"):
        with pytest.raises(InputError, match=r"x\.jpg: field '\(image\)': is not an image"):
            decode(path, decoder)


# ---------------------------------------------------------------- resized_shape


@pytest.mark.parametrize(
    ("h", "w", "size", "crop", "target", "expected"),
    [
        # 224 / 0.875 = 256 for the shorter side; longer int(500 * 256 / 375) = int(341.33)
        (375, 500, (224, 224), 0.875, "shorter_side", (256, 341)),
        (500, 375, (224, 224), 0.875, "shorter_side", (341, 256)),  # portrait
        (300, 300, (224, 224), 0.875, "shorter_side", (256, 256)),  # square
        (375, 500, (224, 224), 0.875, "squash", (256, 256)),
        # crop_ratio 1.0: no margin; int(500 * 224 / 375) = int(298.67) = 298
        (375, 500, (224, 224), 1.0, "shorter_side", (224, 298)),
        (375, 500, (224, 224), 1.0, "squash", (224, 224)),
        # 224 / 0.9 = 248.9 rounds to 249 (timm's floor would give 248)
        (375, 500, (224, 224), 0.9, "squash", (249, 249)),
        # non-square size (H=224, W=320): the long side never drops below its own target
        (480, 640, (224, 320), 1.0, "shorter_side", (224, 320)),  # int(640*224/480)=298<320
        (100, 400, (224, 320), 1.0, "shorter_side", (224, 896)),  # int(400*224/100)
        (400, 100, (224, 320), 1.0, "shorter_side", (1280, 320)),  # int(400*320/100)
        (480, 640, (224, 320), 0.875, "squash", (256, 366)),  # round(365.71)
    ],
)
def test_resized_shape_by_hand(h, w, size, crop, target, expected) -> None:
    assert resized_shape(h, w, size, crop, target) == expected


# ---------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("src", "dst"),
    [((7, 11), (3, 4)), ((7, 11), (20, 30)), ((13, 5), (9, 17)), ((10, 10), (21, 33))],
)
def test_resize_opencv_nearest_matches_floor_index(src, dst) -> None:
    image = noise_rgb(*src, seed=1)
    out = resize(image, dst, "opencv", "nearest")
    rows = (np.arange(dst[0]) * src[0]) // dst[0]  # floor(dst * src / dst_size), exact ints
    cols = (np.arange(dst[1]) * src[1]) // dst[1]
    np.testing.assert_array_equal(out, image[rows][:, cols])


@pytest.mark.parametrize(("src", "dst"), [((7, 11), (3, 4)), ((13, 5), (9, 17))])
def test_resize_pil_nearest_matches_centre_index(src, dst) -> None:
    image = noise_rgb(*src, seed=2)
    out = resize(image, dst, "pil", "nearest")
    rows = np.floor((np.arange(dst[0]) + 0.5) * src[0] / dst[0]).astype(int)  # pixel centres
    cols = np.floor((np.arange(dst[1]) + 0.5) * src[1] / dst[1]).astype(int)
    np.testing.assert_array_equal(out, image[rows][:, cols])


def _numpy_bilinear(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Half-pixel-centre bilinear, edges clamped (OpenCV INTER_LINEAR's definition)."""

    def axis(n_out: int, n_in: int):
        s = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = np.minimum(np.floor(s).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    y0, y1, fy = axis(hw[0], image.shape[0])
    x0, x1, fx = axis(hw[1], image.shape[1])
    a = image.astype(np.float64)
    fx, fy = fx[None, :, None], fy[:, None, None]
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize(
    ("src", "dst"), [((6, 8), (12, 16)), ((6, 8), (15, 20)), ((5, 7), (17, 23))]
)
def test_resize_opencv_bilinear_upscale_matches_numpy(src, dst) -> None:
    image = noise_rgb(*src, seed=3)
    out = resize(image, dst, "opencv", "bilinear").astype(np.float64)
    diff = np.abs(out - _numpy_bilinear(image, dst))
    # OpenCV uses 11-bit fixed-point weights then rounds: measured max 0.75, i.e. the
    # result is always one of the two integers around the exact value.
    assert diff.max() < 1.0
    assert diff.mean() < 0.35  # measured 0.24-0.28


@pytest.mark.parametrize(("src", "dst"), [((6, 8), (15, 20)), ((5, 7), (17, 23))])
def test_resize_pil_bilinear_upscale_vs_torch(src, dst) -> None:
    image = noise_rgb(*src, seed=4)
    out = resize(image, dst, "pil", "bilinear").astype(np.float64)
    diff = np.abs(out - _torch_resize(image, dst, "bilinear", antialias=False))
    # PIL resamples in two passes with a uint8 round in between: measured max 0.91-1.0,
    # mean 0.25-0.34.
    assert diff.max() <= 1.0 + 1e-9
    assert diff.mean() < 0.45


@pytest.mark.parametrize("make", [smooth_rgb, noise_rgb])
def test_resize_pil_bicubic_downscale_vs_torch_antialias(make) -> None:
    image = make(40, 56, seed=5)
    dst = (15, 21)
    out = resize(image, dst, "pil", "bicubic").astype(np.float64)
    reference = _torch_resize(image, dst, "bicubic", antialias=True)  # a = -0.5, like PIL
    diff = np.abs(out - reference)
    # Measured max 0.88-0.89, mean 0.27-0.28: same kernel, only PIL's rounding.
    assert diff.max() <= 1.0 + 1e-9
    assert diff.mean() < 0.4
    # Control: without antialias torch is far off on a downscale (measured max 14 on the
    # smooth image, 157 on noise), so the tolerance above does discriminate.
    plain = _torch_resize(image, dst, "bicubic", antialias=False)
    assert np.abs(out - plain).max() > 5


def test_resize_opencv_area_exact_2x_is_block_mean() -> None:
    image = noise_rgb(8, 12, seed=6)
    out = resize(image, (4, 6), "opencv", "area").astype(np.int64)
    sums = image.astype(np.int64).reshape(4, 2, 6, 2, 3).sum(axis=(1, 3))
    assert np.abs(out - sums / 4).max() <= 0.5
    np.testing.assert_array_equal(out, (sums + 2) // 4)  # round half up


def test_resize_pil_area_exact_2x_is_block_mean() -> None:
    image = noise_rgb(8, 12, seed=7)
    out = resize(image, (4, 6), "pil", "area").astype(np.int64)
    sums = image.astype(np.int64).reshape(4, 2, 6, 2, 3).sum(axis=(1, 3))
    # PIL's BOX filter works in two passes (horizontal first) and rounds half up to uint8
    # after each, so it is off the exact block mean by up to 1 level (measured 1.0) ...
    assert np.abs(out - sums / 4).max() <= 1.0
    # ... and equals that two-pass computation exactly.
    a = image.astype(np.int64)
    horizontal = (a[:, 0::2] + a[:, 1::2] + 1) // 2
    np.testing.assert_array_equal(out, (horizontal[0::2] + horizontal[1::2] + 1) // 2)


def test_resize_output_shape_and_unknown_library() -> None:
    image = noise_rgb(5, 9)
    for library in ("pil", "opencv"):
        for method in ("nearest", "bilinear", "bicubic", "area"):
            out = resize(image, (7, 3), library, method)
            assert out.shape == (7, 3, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown resize library"):
        resize(image, (7, 3), "skimage", "bilinear")


# ---------------------------------------------------------------- center_crop


def _coded(h: int, w: int) -> np.ndarray:
    """Pixel (y, x) holds (y, x, 0) so the crop's offsets can be read back."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([y, x, np.zeros_like(y)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(
    ("hw", "size", "top", "left"),
    [
        ((10, 12), (4, 4), 3, 4),  # even margins 6 and 8: 3 and 4
        ((11, 14), (4, 4), 4, 5),  # odd margins 7 and 10: round(3.5) = 4, 5
        ((10, 13), (4, 4), 3, 4),  # odd margin 9: round(4.5) = 4 (half to even, as torchvision)
        ((256, 341), (224, 224), 16, 58),  # round(58.5) = 58
        ((7, 9), (7, 9), 0, 0),  # no margin
    ],
)
def test_center_crop_offsets_by_hand(hw, size, top, left) -> None:
    out = center_crop(_coded(*hw), size)
    assert out.shape == (*size, 3)
    assert (out[0, 0, 0], out[0, 0, 1]) == (top % 256, left % 256)
    np.testing.assert_array_equal(out, _coded(*hw)[top : top + size[0], left : left + size[1]])


@pytest.mark.parametrize("size", [(11, 4), (4, 13), (11, 13)])
def test_center_crop_too_small_raises(size) -> None:
    with pytest.raises(ValueError, match="smaller than the crop"):
        center_crop(_coded(10, 12), size)


# ---------------------------------------------------------------- reorder_channels


def test_reorder_channels() -> None:
    image = noise_rgb(3, 4)
    np.testing.assert_array_equal(reorder_channels(image, "BGR"), image[:, :, [2, 1, 0]])
    np.testing.assert_array_equal(
        reorder_channels(image, "BGR"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    )
    assert reorder_channels(image, "RGB") is image


# ---------------------------------------------------------------- normalize


def test_normalize_float32_hand_formula() -> None:
    image = np.array([[[0, 100, 255], [127, 128, 1]]], dtype=np.uint8)
    norm = {
        "scale": 1.0,
        "mean": [127.0, 127.0, 127.0],
        "std": [128.0, 128.0, 128.0],
        "arithmetic": "float32",
    }
    out = normalize(image, norm)
    assert out.dtype == np.float32
    expected = [[[-127 / 128, -27 / 128, 128 / 128], [0.0, 1 / 128, -126 / 128]]]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-7)


def test_normalize_imagenet_per_channel() -> None:
    image = np.array([[[0, 128, 255], [255, 0, 128]]], dtype=np.uint8)
    out = normalize(image, IMAGENET)
    mean, std = np.array(IMAGENET["mean"]), np.array(IMAGENET["std"])
    expected = (image.astype(np.float64) / 255.0 - mean) / std
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
    assert out[0, 0, 0] == pytest.approx(-0.485 / 0.229, abs=1e-6)
    assert out[0, 0, 2] == pytest.approx((1 - 0.406) / 0.225, abs=1e-6)


def test_normalize_unit_range() -> None:
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    norm = {"scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1], "arithmetic": "float32"}
    out = normalize(image, norm)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(out, image / 255.0, atol=1e-7)


def test_normalize_uint8_wrapping_tf_style() -> None:
    norm = {
        "scale": 1.0,
        "mean": [127.0, 127.0, 127.0],
        "std": [128.0, 128.0, 128.0],
        "arithmetic": "uint8_wrapping",
    }
    pixels = np.arange(256, dtype=np.uint8)
    image = np.stack([pixels, pixels, pixels], axis=-1)[None]
    out = normalize(image, norm)
    assert out.dtype == np.float32
    expected = ((pixels.astype(np.int64) - 127) % 256) / 128.0  # explicit modular formula
    np.testing.assert_allclose(out[0, :, 0], expected, atol=1e-7)
    # Pixel 100 is below the mean: (100 - 127) mod 256 = 229, not -27.
    assert out[0, 100, 0] == pytest.approx(229 / 128)
    assert out[0, 100, 0] > 1.5 > normalize(image, {**norm, "arithmetic": "float32"})[0, 100, 0]
    # At or above the mean both arithmetics agree.
    correct = normalize(image, {**norm, "arithmetic": "float32"})
    np.testing.assert_allclose(out[0, 127:], correct[0, 127:], atol=1e-7)
    assert not np.allclose(out[0, :127], correct[0, :127])


def test_normalize_uint8_wrapping_imagenet_scale() -> None:
    norm = {**IMAGENET, "arithmetic": "uint8_wrapping"}
    image = np.array([[[100, 100, 100], [200, 200, 200]]], dtype=np.uint8)
    out = normalize(image, norm)
    # Means in pixel units: round(123.675) = 124, round(116.28) = 116, round(103.53) = 104.
    pixel_mean = np.array([124, 116, 104])
    std = np.array(IMAGENET["std"])
    expected = ((image.astype(np.int64) - pixel_mean) % 256) / 255.0 / std
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 0, 0] == pytest.approx(232 / 255 / 0.229, rel=1e-6)  # (100-124) mod 256


# ---------------------------------------------------------------- to_layout


def test_to_layout() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)  # H=2, W=3, C=3
    nchw = to_layout(image, "NCHW", "transpose")
    np.testing.assert_array_equal(nchw, np.transpose(image, (2, 0, 1)))
    assert nchw.shape == (3, 2, 3)
    for conversion in ("transpose", "reshape"):
        assert to_layout(image, "NHWC", conversion) is image
    bug = to_layout(image, "NCHW", "reshape")
    assert bug.shape == nchw.shape
    assert not np.array_equal(bug, nchw)
    np.testing.assert_array_equal(bug, image.ravel().reshape(3, 2, 3))  # raw HWC buffer
    # Channel plane 0 of the bug is the first H*W buffer values: pixels mixed across channels.
    np.testing.assert_array_equal(bug[0].ravel(), np.arange(6))
    np.testing.assert_array_equal(nchw[0].ravel(), np.arange(0, 18, 3))


def test_to_layout_reshape_of_non_contiguous_view() -> None:
    """After a crop and BGR flip the array is a strided view; reshape reads logical order."""
    full = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    view = full[1:3, 1:4, ::-1]
    bug = to_layout(view, "NCHW", "reshape")
    np.testing.assert_array_equal(bug, np.ascontiguousarray(view).ravel().reshape(3, 2, 3))


# ---------------------------------------------------------------- spec_of / spec_hash


def _manifest_inputs() -> dict:
    return yaml.safe_load(MANIFEST.read_text())["inputs"]


def test_spec_of_fills_layout_conversion_default() -> None:
    inputs = _manifest_inputs()
    assert inputs["layout_conversion"] == "transpose"
    implicit = {k: v for k, v in inputs.items() if k != "layout_conversion"}
    spec = spec_of({**implicit, "not_a_preprocess_field": 1})
    assert spec["layout_conversion"] == "transpose"
    assert "not_a_preprocess_field" not in spec
    assert spec == spec_of(inputs)
    assert spec_hash(spec) == spec_hash(spec_of(inputs))
    assert spec_of({**inputs, "layout_conversion": "reshape"})["layout_conversion"] == "reshape"


def test_spec_hash_key_order_and_changes() -> None:
    spec = spec_of(_manifest_inputs())
    digest = spec_hash(spec)
    assert len(digest) == 16 and int(digest, 16) >= 0
    reordered = {k: spec[k] for k in reversed(list(spec))}
    reordered["resize"] = {k: spec["resize"][k] for k in reversed(list(spec["resize"]))}
    assert list(reordered) != list(spec)
    assert spec_hash(reordered) == digest
    for path, value in [
        (("crop_ratio",), 1.0),
        (("dtype",), "float16"),
        (("layout_conversion",), "reshape"),
        (("resize", "method"), "bilinear"),
        (("normalize", "arithmetic"), "uint8_wrapping"),
        (("size",), [225, 224]),
    ]:
        changed = copy.deepcopy(spec)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert spec_hash(changed) != digest, path


# ---------------------------------------------------------------- antialias_problem


VALID = {
    ("pil", "nearest", False),
    ("pil", "bilinear", True),
    ("pil", "bicubic", True),
    ("pil", "area", True),
    ("opencv", "nearest", False),
    ("opencv", "bilinear", False),
    ("opencv", "bicubic", False),
    ("opencv", "area", True),
}


@pytest.mark.parametrize("library", ["pil", "opencv"])
@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic", "area"])
@pytest.mark.parametrize("antialias", [False, True])
def test_antialias_problem_table(library, method, antialias) -> None:
    resize_spec = {
        "library": library,
        "method": method,
        "antialias": antialias,
        "target": "shorter_side",
    }
    problem = antialias_problem(resize_spec)
    if (library, method, antialias) in VALID:
        assert problem is None
    else:
        assert isinstance(problem, str) and library in problem and method in problem


def test_antialias_problem_messages() -> None:
    pil = antialias_problem(
        {"library": "pil", "method": "bicubic", "antialias": False, "target": "squash"}
    )
    assert pil == "pil bicubic resizing always antialiases, so antialias must be true"
    area = antialias_problem(
        {"library": "opencv", "method": "area", "antialias": False, "target": "squash"}
    )
    assert area == "opencv area resizing always antialiases, so antialias must be true"
    bilinear = antialias_problem(
        {"library": "opencv", "method": "bilinear", "antialias": True, "target": "squash"}
    )
    assert bilinear == "opencv bilinear resizing never antialiases, so antialias must be false"
    assert antialias_problem(_manifest_inputs()["resize"]) is None


# ---------------------------------------------------------------- preprocess_image


def test_preprocess_image_efficientnet_lite0_manual(tmp_path: Path) -> None:
    """The manifest's pipeline with size shrunk to 24, against PIL/numpy calls by hand."""
    path = tmp_path / "img.jpg"
    Image.fromarray(smooth_rgb(60, 80, seed=8)).save(path, quality=90)
    spec = spec_of({**_manifest_inputs(), "size": [24, 24]})
    out = preprocess_image(path, spec)

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        # shorter side round(24 / 0.875) = round(27.43) = 27; longer int(80 * 27 / 60) = 36
        resized = np.asarray(rgb.resize((36, 27), Image.Resampling.BICUBIC))
    crop = resized[2:26, 6:30]  # top round(3 / 2) = 2, left (36 - 24) / 2 = 6
    manual = ((crop.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)

    assert out.shape == (3, 24, 24) and out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out, manual, rtol=0, atol=1e-6)


def test_preprocess_image_opencv_bgr_nhwc_float16_manual(tmp_path: Path) -> None:
    """OpenCV decode + area + BGR + ImageNet + NHWC + float16, against cv2/numpy by hand."""
    path = tmp_path / "img.png"
    Image.fromarray(noise_rgb(50, 40, seed=9)).save(path)
    mean_bgr, std_bgr = [0.406, 0.456, 0.485], [0.225, 0.224, 0.229]  # model's colour order
    spec = {
        "size": [20, 16],
        "decoder": "opencv",
        "grayscale": "to_rgb",
        "color_order": "BGR",
        "resize": {"library": "opencv", "method": "area", "antialias": True, "target": "squash"},
        "crop_ratio": 0.8,
        "normalize": {"scale": 1 / 255, "mean": mean_bgr, "std": std_bgr, "arithmetic": "float32"},
        "dtype": "float16",
        "layout": "NHWC",
    }
    out = preprocess_image(path, spec_of(spec))

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV's native order is already BGR
    # squash to (round(20 / 0.8), round(16 / 0.8)) = (25, 20): an exact 2x area downscale
    sums = bgr.astype(np.int64).reshape(25, 2, 20, 2, 3).sum(axis=(1, 3))
    small = (sums + 2) // 4
    crop = small[2:22, 2:18]  # top round(5 / 2) = round(2.5) = 2, left 4 / 2 = 2
    manual = (crop / 255.0 - np.array(mean_bgr)) / np.array(std_bgr)

    assert out.shape == (20, 16, 3) and out.dtype == np.float16
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out.astype(np.float64), manual, rtol=2e-3, atol=2e-3)
    # float16 end to end is exactly the float32 result rounded once.
    out32 = preprocess_image(path, spec_of({**spec, "dtype": "float32"}))
    np.testing.assert_array_equal(out, out32.astype(np.float16))


def test_preprocess_image_reshape_bug_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    Image.fromarray(smooth_rgb(30, 30, seed=10)).save(path)
    spec = spec_of({**_manifest_inputs(), "size": [16, 16]})
    good = preprocess_image(path, spec)
    bug = preprocess_image(path, {**spec, "layout_conversion": "reshape"})
    assert good.shape == bug.shape == (3, 16, 16)
    assert not np.array_equal(good, bug)
    np.testing.assert_array_equal(bug.ravel(), good.transpose(1, 2, 0).ravel())


def test_overrides_change_only_their_field() -> None:
    from reproscope.plan.ablation import apply_overrides, diagnosis_candidates, field_of

    base = yaml.safe_load(MANIFEST.read_text())
    variant = apply_overrides(base, {"inputs.color_order": "BGR", "outputs.label_offset": 1})
    assert variant["inputs"]["color_order"] == "BGR" and variant["outputs"]["label_offset"] == 1
    assert base["inputs"]["color_order"] == "RGB"  # the base is not modified
    rest = {k: v for k, v in variant["inputs"].items() if k != "color_order"}
    assert rest == {k: v for k, v in base["inputs"].items() if k != "color_order"}
    with pytest.raises(KeyError):
        apply_overrides(base, {"inputs.nonexistent.method": "x"})
    candidates = diagnosis_candidates(base)
    assert candidates["diag-color_order-BGR"] == {"inputs.color_order": "BGR"}
    assert field_of(candidates["diag-resize.method-nearest"]) == "inputs.resize"
    assert "diag-normalize-tf-lite" not in candidates  # the manifest's own normalisation
    for overrides in candidates.values():
        assert apply_overrides(base, overrides) != base


def test_symmetric_padding_variant_shifts_the_sampling_grid() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    from reproscope.runtime.architectures import efficientnet_lite_symmetric_padding

    same = EfficientNet.from_name("efficientnet-lite0").eval()
    symmetric = efficientnet_lite_symmetric_padding("efficientnet-lite0").eval()
    symmetric.load_state_dict(same.state_dict())
    stem_same, stem_sym = same._conv_stem, symmetric._conv_stem
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    # Reference: TF SAME pads (0, 1) for a stride-2 3x3 conv on an even size; symmetric (1, 1).
    reference_same = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (0, 1, 0, 1)), stem_same.weight, stride=2
    )
    reference_sym = torch.nn.functional.conv2d(x, stem_sym.weight, stride=2, padding=1)
    with torch.no_grad():
        assert torch.allclose(stem_same(x), reference_same, atol=1e-4)
        assert torch.allclose(stem_sym(x), reference_sym, atol=1e-4)
        assert not torch.allclose(stem_same(x), stem_sym(x))
