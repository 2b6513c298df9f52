"""Rule system_ranking: runs.csv -> the whole-system check table and its plot."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import pandas as pd

from reproscope.report.plots import system_ranking as plot_ranking
from reproscope.report.ranking import system_ranking
from reproscope.report.roofline import explain_rankings
from reproscope.report.tables import write_csv
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

runs = pd.read_csv(snakemake.input.runs)
# Where the rankings disagree: the limit that accounts for it (report.roofline).
table = explain_rankings(system_ranking(runs), runs, pd.read_csv(snakemake.input.limits))
write_csv(table, snakemake.output.table)
plot_ranking(table, Path(snakemake.output.plot))
print(f"{len(table)} pairs, {int(table['rankings_disagree'].sum())} disagree", file=sys.stderr)
