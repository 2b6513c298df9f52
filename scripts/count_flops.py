"""Rule count_flops: operations per inference, counted from an ONNX graph."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

from reproscope.report.flops import onnx_flops
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

counted = onnx_flops(snakemake.input[0], batch_size=snakemake.params.batch_size)
counted["model"] = snakemake.params.model
Path(snakemake.output[0]).write_text(json.dumps(counted, indent=1, sort_keys=True))
print(
    f"{counted['gflops']:.3f} GFLOPs, {counted['weight_bytes']} weight bytes and "
    f"{counted['activation_bytes']} activation bytes per image",
    file=sys.stderr,
)
