"""Rule plot_server: the Server points' search trials -> latency against offered load."""

import json
import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


from reproscope.report.plots import server_latency_curve, server_trials
from reproscope.rulelog import log_stderr

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)
log_stderr(snakemake.log[0])  # tracebacks and refusals reach the log too

records = [json.loads(Path(path).read_text()) for path in snakemake.params.latency]
trials = server_trials(records)
server_latency_curve(trials, Path(snakemake.output[0]))
print(f"plotted {len(trials)} Server trials", file=sys.stderr)
