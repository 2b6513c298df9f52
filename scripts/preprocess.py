"""Rule preprocess: one tensor file per (dataset, preprocessing spec)."""

import json
from pathlib import Path

import numpy as np

from reproscope.preprocess import preprocess_files

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

index = json.loads(Path(snakemake.input.index).read_text())
paths = [Path(index["root"]) / f for f in index["files"]]
tensor = preprocess_files(paths, snakemake.params.spec, snakemake.threads)
with open(snakemake.output[0], "wb") as f:
    np.save(f, tensor)
Path(snakemake.log[0]).write_text(f"{len(paths)} images -> {tensor.shape} {tensor.dtype}\n")
