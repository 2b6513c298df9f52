"""Rule merge_accuracy_shards: the shards of one accuracy job -> its one result."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from reproscope.rulelog import log_stderr
from reproscope.runtime.shards import merge_shards

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

merged = merge_shards(
    list(snakemake.input.result),
    list(snakemake.input.logits),
    list(snakemake.input.topk),
    {k: str(getattr(snakemake.output, k)) for k in ("result", "logits", "topk")},
)
print(f"{len(snakemake.input.result)} shards merged: {merged['status']}", file=sys.stderr)
