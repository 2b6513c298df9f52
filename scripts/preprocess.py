"""Rule preprocess: the uint8 geometric cache of one (dataset, geometric spec)."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import json

from reproscope.acquire.preprocess import build_cache
from reproscope.rulelog import refuse_cleanly

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

index = json.loads(Path(snakemake.input.index).read_text())
paths = [Path(index["root"]) / f for f in index["files"]]
with open(snakemake.log[0], "w") as log, refuse_cleanly(log):
    log.write(f"{len(paths)} images, {snakemake.threads} processes\n")
    cache = build_cache(
        paths,
        snakemake.params.spec,
        Path(snakemake.output.cache).parent,
        workers=snakemake.threads,
        chunk_images=snakemake.params.chunk_images,
        log=log,
    )
    log.write(f"{cache['images_per_s']:.1f} images/s, {len(cache['chunks'])} chunks\n")
