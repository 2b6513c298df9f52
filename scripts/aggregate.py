"""Rule aggregate: per-job JSON results -> results/summary/*.csv."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import json

import pandas as pd

from reproscope.plan.summaries import from_report
from reproscope.report.aggregate import (
    accuracy_table,
    agreement_table,
    comparisons_table,
    environments_table,
    repeats_table,
    runs_table,
)
from reproscope.report.provenance import check_results
from reproscope.report.roofline import add_roofline
from reproscope.report.tables import write_csv
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

# A result made for another manifest, lock or input never reaches a table.
# Timing points: their rounds' folders are the declared inputs, the points inside them params.
latency = list(snakemake.params.latency)
check_results([*snakemake.input.accuracy, *latency], dict(snakemake.params.jobs))
index = json.loads(Path(snakemake.input.index).read_text())
# Each point against the machine's measured limits: its roofline bound and share (<= 1).
runs = add_roofline(
    runs_table(latency, list(snakemake.input.flops)),
    pd.read_csv(snakemake.input.limits),
    list(snakemake.input.flops),
)
write_csv(runs, snakemake.output.runs)
accuracy = accuracy_table(
    list(snakemake.input.accuracy), index, from_report(snakemake.params.manifests)
)
write_csv(accuracy, snakemake.output.accuracy)
agreement = agreement_table(list(snakemake.input.accuracy))
write_csv(agreement, snakemake.output.agreement)
write_csv(repeats_table(runs), snakemake.output.repeats)
comparisons = comparisons_table(latency, snakemake.params.min_effect)
write_csv(comparisons, snakemake.output.comparisons)
environments = environments_table(comparisons, agreement)
write_csv(environments, snakemake.output.environments)
print("aggregated", file=sys.stderr)
