"""Rule limits_table: every system and device's limits -> results/summary/limits.csv."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import json

from reproscope.report.flops import theoretical_peak
from reproscope.report.roofline import limits_row, limits_table
from reproscope.report.tables import write_csv
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

rows = []
for path in snakemake.input.limits:
    record = json.loads(Path(path).read_text())
    # The CPU's own statement, for the cores the system's jobs use (one per thread).
    rows.append(limits_row(record, theoretical_peak(cores=record["threads"])))
write_csv(limits_table(rows), snakemake.output.table)
print(f"{len(rows)} systems x devices", file=sys.stderr)
