"""Builds a tiny study in a directory: synthetic colour images, a tiny PyTorch model and
its ONNX export, run in the host environment."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml

from reproscope.acquire.datasets import SYNTHETIC_CLASSES

REPO = Path(__file__).resolve().parents[1]
COLOURS = SYNTHETIC_CLASSES  # the generated dataset's classes


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_weights(path: Path) -> None:
    import torch

    from reproscope.runtime.tinynet import prototype_state_dict

    names = sorted(COLOURS)
    prototypes = torch.tensor([COLOURS[n] for n in names], dtype=torch.float32) / 127.5 - 1.0
    torch.save(prototype_state_dict(prototypes), path)


def colour_inputs(size: int, layout: str) -> dict:
    """The preprocessing the colour prototypes expect: pixels scaled to [-1, 1]."""
    return {
        "size": [size, size],
        "decoder": "pil",
        "grayscale": "to_rgb",
        "color_order": "RGB",
        "resize": {
            "library": "pil",
            "method": "bilinear",
            "antialias": True,
            "target": "shorter_side",
        },
        "crop_ratio": 0.875,
        "normalize": {
            "scale": 1.0,
            "mean": [127.5] * 3,
            "std": [127.5] * 3,
            "arithmetic": "float32",
        },
        "dtype": "float32",
        "layout": layout,
        "layout_conversion": "transpose",
    }


def manifest(name: str, labels: Path, weights: Path, framework: str, **extra) -> dict:
    data = {
        "schema_version": 1,
        "name": name,
        "model": "tiny-colour",
        "version": "1",
        "task": "image-classification",
        "framework": {"name": "pytorch", "version": ">=2.13,<2.15"},
        "environment": "host",
        "source": {
            "format": "pytorch-state-dict",
            "url": weights.as_uri(),
            "sha256": sha256(weights),
        },
        "architecture": {
            "entry_point": "reproscope.runtime.tinynet:TinyColourNet",
            "args": [6],
            "kwargs": {},
        },
        "inputs": colour_inputs(32, "NCHW"),
        "outputs": {
            "kind": "logits",
            "num_classes": 6,
            "label_offset": 0,
            "top_k": 5,
            "labels": {"file": labels.name, "sha256": sha256(labels)},
        },
        "claims": {
            "dataset": "synthetic",
            "top1": 100.0,
            "source": "construction",
            "tolerance": 20.0,
        },
    }
    if framework == "onnxruntime":
        data["framework"] = {"name": "onnxruntime", "version": ">=1.30,<1.31"}
        data["source"] = {
            "format": "onnx",
            "derived": {"from": "tiny-pytorch", "converter": "onnx-export", "environment": "host"},
        }
        del data["architecture"]
    data.update(extra)
    return data


def write_broken_onnx(path: Path) -> None:
    """A valid ONNX file whose only node is an operator no runtime implements."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOperator", ["input"], ["logits"], domain="reproscope.test")
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 6])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("reproscope.test", 1)],
    )
    onnx.save(model, path)


def add_broken_manifest(root: Path) -> str:
    """A manifest whose model needs an operator ONNX Runtime lacks; returns its name."""
    labels = root / "manifests" / "colours.txt"
    weights = root / "artifacts" / "broken.onnx"
    write_broken_onnx(weights)
    data = manifest("tiny-broken", labels, root / "artifacts" / "tiny.pt", "onnxruntime")
    data["source"] = {"format": "onnx", "url": weights.as_uri(), "sha256": sha256(weights)}
    (root / "manifests" / "tiny-broken.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return "tiny-broken"


def study_config(models: list[str], batch_sizes: tuple[int, ...]) -> dict:
    """A study of the given manifests on the generated colour dataset, in the host env."""
    return {
        "manifests": "manifests",
        "environments": {"host": "envs/host.yaml"},
        "datasets": {
            "colours": {
                "generator": "synthetic-colours",
                "n_images": 24,
                "content_digest": "generated",
                "files": "*.jpg",
                "labels": {"filename_regex": "^([a-z]+)_"},
            }
        },
        "study": {
            "dataset": "colours",
            "models": models,
            "batch_sizes": list(batch_sizes),
            "devices": ["cpu"],
            "environment": "host",
            "accuracy_batch_size": 8,
            "threads": 1,
            "timing": {"warmup": 1, "min_duration_s": 0.05, "min_queries": 3, "max_duration_s": 10},
        },
    }


def lay_out(root: Path) -> Path:
    """The study's folders, the host environment file with its lock and the colour label list."""
    (root / "manifests").mkdir(parents=True)
    (root / "envs").mkdir()
    (root / "artifacts").mkdir()
    for name in ("host.yaml", "host.lock.txt"):
        shutil.copy(REPO / "envs" / name, root / "envs" / name)
    labels = root / "manifests" / "colours.txt"
    labels.write_text("\n".join(sorted(COLOURS)) + "\n")
    return labels


def build(root: Path, batch_sizes: tuple[int, ...] = (1, 4), **study: object) -> Path:
    """Lay out the tiny study under root; return the config path.

    Keyword arguments override entries of the config's `study` section.
    """
    labels = lay_out(root)
    weights = root / "artifacts" / "tiny.pt"
    write_weights(weights)
    for name, framework in (("tiny-pytorch", "pytorch"), ("tiny-onnx", "onnxruntime")):
        path = root / "manifests" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest(name, labels, weights, framework), sort_keys=False))
    config = study_config(["tiny-pytorch", "tiny-onnx"], batch_sizes)
    config["study"].update(study)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def geometric_spec(decoder: str, size: int, target: str = "shorter_side") -> dict:
    """A manifest's geometric preprocessing: decode and resize with one library."""
    return {
        "size": [size, size],
        "decoder": decoder,
        "crop_ratio": 0.875,
        "resize": {
            "library": decoder,
            "method": "bilinear",
            "antialias": decoder == "pil",
            "target": target,
        },
    }
