"""Rule fetch_dataset: find or fetch a dataset and write its verified index."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

from reproscope.acquire.datasets import materialise
from reproscope.rulelog import refuse_cleanly

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

with open(snakemake.log[0], "w") as log, refuse_cleanly(log):
    index = materialise(
        snakemake.wildcards.dataset,
        snakemake.params.spec,
        Path(snakemake.params.workdir),
        "the study config",
        log,
    )
Path(snakemake.output[0]).write_text(json.dumps(index, indent=1))
