"""One model conversion, run inside the converter's environment:
`python -m reproscope.runtime.convert.main '{json job}'`.

Converters: onnx-export (PyTorch state_dict + architecture -> ONNX) and
keras-efficientnet-lite (PyTorch state_dict -> a .keras file of built-in layers),
keras-resnet50 (keras.applications.ResNet50 .keras file -> a ResNet-50 v1 state_dict).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reproscope.runtime.atomic import replacing
from reproscope.runtime.integrity import Damaged, record, verified_sha256
from reproscope.runtime.jobs import ConversionJob


def onnx_export(job: dict[str, Any], out: Path) -> None:
    import torch

    from reproscope.runtime.convert.torch_export import export_onnx
    from reproscope.runtime.entrypoints import build_architecture

    model = build_architecture(job["architecture"])
    state = torch.load(job["source"], map_location="cpu", weights_only=not job["unsafe_pickle"])
    model.load_state_dict(state, strict=True)
    height, width = job["input_size"]
    record = export_onnx(model, out, (1, 3, height, width), opset=job["opset"])
    # The record is also in the file's metadata_props; the log shows it to whoever reads it.
    print(f"onnx-export: {json.dumps(record.metadata())}")


def keras_port(job: dict[str, Any], out: Path) -> None:
    from reproscope.runtime.convert.keras_efficientnet_lite import build_from_state_dict
    from reproscope.runtime.convert.torch_export import state_dict_to_numpy

    height, width = job["input_size"]
    if height != width:
        raise ValueError(f"keras-efficientnet-lite needs a square input, got {height}x{width}")
    model = build_from_state_dict(state_dict_to_numpy(job["source"]), image_size=height)
    model.save(out)


def keras_resnet50(job: dict[str, Any], out: Path) -> None:
    import torch

    from reproscope.runtime.convert.keras_resnet import keras_file_weights, keras_to_torch_state

    state = keras_to_torch_state(keras_file_weights(job["source"]))
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, out)


CONVERTERS = {
    "onnx-export": onnx_export,
    "keras-efficientnet-lite": keras_port,
    "keras-resnet50": keras_resnet50,
}


def main(argv: list[str]) -> int:
    job = ConversionJob.from_json(argv[1]).to_dict()
    out = Path(job["output"])
    try:
        verified_sha256(job["source"])  # the artifact it converts, as it was made
    except Damaged as exc:
        print(f"reproscope: refused: {exc}", file=sys.stderr)
        return 1
    with replacing(out) as tmp:
        CONVERTERS[job["converter"]](job, tmp)
    record(out)
    print(f"{job['converter']}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
