"""Rule aggregate: per-job JSON results -> results/summary/*.csv."""

import json
from pathlib import Path

from reproscope.aggregate import (
    accuracy_table,
    agreement_table,
    environments_table,
    repeats_table,
    runs_table,
)

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

index = json.loads(Path(snakemake.input.index).read_text())
runs = runs_table(list(snakemake.input.latency), list(snakemake.input.flops))
runs.to_csv(snakemake.output.runs, index=False)
accuracy_table(list(snakemake.input.accuracy), index, snakemake.params.manifests).to_csv(
    snakemake.output.accuracy, index=False
)
agreement = agreement_table(list(snakemake.input.accuracy))
agreement.to_csv(snakemake.output.agreement, index=False)
repeats_table(runs).to_csv(snakemake.output.repeats, index=False)
environments_table(runs, agreement).to_csv(snakemake.output.environments, index=False)
Path(snakemake.log[0]).write_text("aggregated\n")
