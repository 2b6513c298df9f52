"""Rule fetch_dataset: find or fetch a dataset and write its verified index."""

import json
from pathlib import Path

from reproscope.datasets import materialise

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

with open(snakemake.log[0], "w") as log:
    index = materialise(
        snakemake.wildcards.dataset,
        snakemake.params.spec,
        Path(snakemake.params.workdir),
        "the study config",
        log,
    )
Path(snakemake.output[0]).write_text(json.dumps(index, indent=1))
