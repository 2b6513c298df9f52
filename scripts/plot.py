"""Rule plot: summary tables -> figures."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


import pandas as pd

from reproscope.report.plots import accuracy_vs_claim, latency_breakdown, latency_throughput
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

runs = pd.read_csv(snakemake.input.runs)
latency_throughput(runs, Path(snakemake.output.performance), pd.read_csv(snakemake.input.limits))
latency_breakdown(runs, Path(snakemake.output.breakdown))
accuracy_vs_claim(pd.read_csv(snakemake.input.accuracy), Path(snakemake.output.accuracy))
print("plotted", file=sys.stderr)
