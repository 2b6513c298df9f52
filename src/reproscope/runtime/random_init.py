"""Seeded random weights for performance-only manifests (`source.random_init`).

The architecture comes from the manifest's entry point (a pinned package); its weights are
drawn here with numpy, variable by variable in the model's own order, so that a seed gives
the same weights whatever the framework's own initialisers do across releases:
kernels He-normal (std sqrt(2 / fan_in)), biases and BatchNorm shifts/means 0,
BatchNorm scales/variances 1. Such weights make no accuracy claim; they give the model's
real compute graph for timing. Env-side: `python -m reproscope.runtime.random_init '{json job}'`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.atomic import replacing
from reproscope.runtime.integrity import record

ONES = ("gamma", "moving_variance", "running_var")
ZEROS = ("bias", "beta", "moving_mean", "running_mean", "num_batches_tracked")


def draw(name: str, shape: tuple[int, ...], fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """One variable's value, chosen by the last part of its name and its rank."""
    leaf = name.replace("/", ".").split(".")[-1]
    if leaf in ONES:
        return np.ones(shape, dtype=np.float32)
    if leaf in ZEROS:
        return np.zeros(shape, dtype=np.float32)
    if len(shape) == 1:  # a torch BatchNorm scale is called "weight"
        return np.ones(shape, dtype=np.float32)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def init_keras(model: Any, seed: int) -> None:
    """Kernels are (..., in, out): fan_in is the product of all but the last axis."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        variable.assign(draw(variable.path, shape, fan_in, rng))


def init_torch(module: Any, seed: int) -> dict[str, Any]:
    """Weights are (out, in, ...): fan_in is the product of all but the first axis."""
    import torch

    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in module.state_dict().items():
        shape = tuple(tensor.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        state[name] = torch.from_numpy(draw(name, shape, fan_in, rng)).to(tensor.dtype)
    module.load_state_dict(state, strict=True)
    return module.state_dict()


def build(job: dict[str, Any], out: Path) -> None:
    from reproscope.runtime.entrypoints import build_architecture

    model = build_architecture(job["architecture"])  # checked against the pinned packages
    seed = job["random_init"]["seed"]
    if job["format"] == "keras":
        init_keras(model, seed)
        model.save(out)
    elif job["format"] == "pytorch-state-dict":
        import torch

        torch.save(init_torch(model, seed), out)
    else:
        raise ValueError(f"random_init cannot build format {job['format']!r}")


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    out = Path(job["output"])
    with replacing(out) as tmp:
        build(job, tmp)
    record(out)  # what inference jobs check the artifact against
    print(f"random_init seed {job['random_init']['seed']}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
