"""Rule aggregate: per-job JSON results -> results/summary/*.csv."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

from reproscope.aggregate import (
    accuracy_table,
    agreement_table,
    environments_table,
    repeats_table,
    runs_table,
)
from reproscope.provenance import check_results

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

# A result made for another manifest, lock or input never reaches a table.
check_results([*snakemake.input.accuracy, *snakemake.input.latency], dict(snakemake.params.jobs))
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
