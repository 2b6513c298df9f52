"""Rule plot_ablations: delta top-1 per variant, sorted."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import pandas as pd

from reproscope.report.plots import ablation_deltas
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

ablation_deltas(pd.read_csv(snakemake.input.ablations), Path(snakemake.output[0]))
print("plotted", file=sys.stderr)
