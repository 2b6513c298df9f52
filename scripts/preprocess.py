"""Rule preprocess: one tensor file per (dataset, preprocessing spec)."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json
import time

import numpy as np

from reproscope.fetch import sha256_file
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
            "sha256": sha256_file(snakemake.output.tensor),
        },
        indent=1,
    )
)
Path(snakemake.log[0]).write_text(f"{len(paths)} images -> {tensor.shape} {tensor.dtype}\n")
