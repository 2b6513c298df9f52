"""Rule compare_variants: ablation and diagnosis variants against their bases."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

from reproscope.report.provenance import check_results
from reproscope.report.variants_table import diagnosis_table, variants_table

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

check_results([*snakemake.input.base, *snakemake.input.variants], dict(snakemake.params.jobs))
index = json.loads(Path(snakemake.input.index).read_text())
table = variants_table(
    list(snakemake.input.variants), index, snakemake.params.manifests, snakemake.params.variants
)
table.to_csv(snakemake.output.ablations, index=False)
diagnosis = diagnosis_table(table, index["dataset"], snakemake.params.manifests)
diagnosis.to_csv(snakemake.output.diagnosis, index=False)
with open(snakemake.log[0], "w") as log:
    for row in diagnosis[diagnosis["most_likely"]].itertuples():
        log.write(f"{row.manifest}: most likely mis-stated field {row.field} ({row.variant})\n")
