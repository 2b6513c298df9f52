"""Rule count_flops: operations per inference, counted from an ONNX graph."""

import json
from pathlib import Path

from reproscope.flops import onnx_flops

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

counted = onnx_flops(snakemake.input[0], batch_size=snakemake.params.batch_size)
counted["model"] = snakemake.params.model
Path(snakemake.output[0]).write_text(json.dumps(counted, indent=1, sort_keys=True))
Path(snakemake.log[0]).write_text(f"{counted['gflops']:.3f} GFLOPs per image\n")
