"""Ablations and diagnosis: manifests varied one choice at a time, compared per image.

A variant is a base manifest with overrides at dotted field paths. Its name is
`<base>~<variant>` ('~' cannot occur in manifest names, so variants never collide).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from reproscope.runtime.stats import exact_mcnemar

SEPARATOR = "~"
NORMALIZE_PRESETS: dict[str, dict[str, Any]] = {
    "imagenet": {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "unit": {"scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
    "symmetric": {"scale": 1.0, "mean": [127.5] * 3, "std": [127.5] * 3},
    "tf-lite": {"scale": 1.0, "mean": [127.0] * 3, "std": [128.0] * 3},
    "none": {"scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
}
RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "area")


def variant_name(base: str, variant: str) -> str:
    return f"{base}{SEPARATOR}{variant}"


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of data with each dotted path set to its value."""
    result = copy.deepcopy(data)
    for path, value in overrides.items():
        node = result
        keys = path.split(".")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise KeyError(f"{path!r}: {key!r} is not a section of the manifest")
            node = node[key]
        node[keys[-1]] = copy.deepcopy(value)
    return result


def _antialias_for(library: str, method: str) -> bool:
    return method != "nearest" if library == "pil" else method == "area"


def diagnosis_candidates(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every single-field change to a manifest's evaluation choices, by variant name.

    A field is one user-visible choice; where the schema couples fields (a resize
    method and the antialias its library implies; a normalisation preset's scale,
    mean and std) the candidate changes them together.
    """
    inputs, outputs = data["inputs"], data["outputs"]
    candidates: dict[str, dict[str, Any]] = {}
    other = {
        "pil": "opencv",
        "opencv": "pil",
        "RGB": "BGR",
        "BGR": "RGB",
        "shorter_side": "squash",
        "squash": "shorter_side",
        "float32": "uint8_wrapping",
        "uint8_wrapping": "float32",
        "transpose": "reshape",
        "reshape": "transpose",
    }
    candidates[f"diag-decoder-{other[inputs['decoder']]}"] = {
        "inputs.decoder": other[inputs["decoder"]]
    }
    candidates[f"diag-color_order-{other[inputs['color_order']]}"] = {
        "inputs.color_order": other[inputs["color_order"]]
    }
    library = inputs["resize"]["library"]
    for method in RESIZE_METHODS:
        if method != inputs["resize"]["method"]:
            candidates[f"diag-resize.method-{method}"] = {
                "inputs.resize.method": method,
                "inputs.resize.antialias": _antialias_for(library, method),
            }
    target = other[inputs["resize"]["target"]]
    candidates[f"diag-resize.target-{target}"] = {"inputs.resize.target": target}
    for ratio in (0.875, 1.0):
        if abs(inputs["crop_ratio"] - ratio) > 1e-9:
            candidates[f"diag-crop_ratio-{ratio}"] = {"inputs.crop_ratio": ratio}
    current = {k: inputs["normalize"][k] for k in ("scale", "mean", "std")}
    for preset, values in NORMALIZE_PRESETS.items():
        if not _same_normalize(values, current):
            candidates[f"diag-normalize-{preset}"] = {
                f"inputs.normalize.{k}": v for k, v in values.items()
            }
    arithmetic = other[inputs["normalize"]["arithmetic"]]
    candidates[f"diag-normalize.arithmetic-{arithmetic}"] = {
        "inputs.normalize.arithmetic": arithmetic
    }
    if inputs["layout"] == "NCHW":
        conversion = other[inputs.get("layout_conversion", "transpose")]
        candidates[f"diag-layout_conversion-{conversion}"] = {
            "inputs.layout_conversion": conversion
        }
    offset = 1 - min(outputs["label_offset"], 1)
    candidates[f"diag-label_offset-{offset}"] = {"outputs.label_offset": offset}
    return candidates


def _same_normalize(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        np.allclose([a["scale"], *a["mean"], *a["std"]], [b["scale"], *b["mean"], *b["std"]])
    )


def field_of(overrides: dict[str, Any]) -> str:
    """The choice a variant changes, named by its shortest common field path."""
    paths = sorted(overrides)
    if len(paths) == 1:
        return paths[0]
    parts = [p.split(".") for p in paths]
    common = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common) if len(common) > 1 else paths[0]


def compare_hits(base_hits: np.ndarray, variant_hits: np.ndarray) -> dict[str, Any]:
    """Flips against the baseline and the exact McNemar test at 5 %."""
    lost = int(np.sum(base_hits & ~variant_hits))
    gained = int(np.sum(~base_hits & variant_hits))
    p_value = exact_mcnemar(lost, gained)
    return {"lost": lost, "gained": gained, "p_value": p_value, "significant": p_value < 0.05}


def rank_diagnosis(
    base_top1: float, claimed: float, tolerance: float, candidates: pd.DataFrame
) -> pd.DataFrame:
    """Candidates ranked by how much of the gap to the claim each one closes.

    candidates has columns variant, field, top1. gap_closed = |base - claim| -
    |variant - claim| in points; the first row names the most likely mis-stated field.
    """
    gap = abs(base_top1 - claimed)
    ranked = candidates.assign(
        gap=gap,
        gap_closed=gap - (candidates["top1"] - claimed).abs(),
        misses_claim=gap > tolerance,
    ).sort_values(["gap_closed", "variant"], ascending=[False, True], ignore_index=True)
    ranked["rank"] = range(1, len(ranked) + 1)
    return ranked
