"""Rule preprocess: one tensor file per (dataset, preprocessing spec)."""

import json
import time
from pathlib import Path

import numpy as np

from reproscope.preprocess import preprocess_files

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

index = json.loads(Path(snakemake.input.index).read_text())
paths = [Path(index["root"]) / f for f in index["files"]]
started = time.perf_counter()
tensor, seconds = preprocess_files(paths, snakemake.params.spec, snakemake.threads, timed=True)
with open(snakemake.output.tensor, "wb") as f:
    np.save(f, tensor)
Path(snakemake.output.timing).write_text(
    json.dumps(
        {
            "n_images": len(paths),
            "seconds_per_image": float(np.median(seconds)),
            "wall_s": time.perf_counter() - started,
            "threads": snakemake.threads,
        },
        indent=1,
    )
)
Path(snakemake.log[0]).write_text(f"{len(paths)} images -> {tensor.shape} {tensor.dtype}\n")
