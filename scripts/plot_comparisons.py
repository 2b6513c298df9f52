"""Rule plot_comparisons: comparisons.csv -> the forest plot of every comparison."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import pandas as pd

from reproscope.report.plots import comparisons_forest
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

table = pd.read_csv(snakemake.input.comparisons)
comparisons_forest(table, Path(snakemake.output[0]), float(snakemake.params.min_effect))
print(f"plotted {len(table)} comparisons", file=sys.stderr)
