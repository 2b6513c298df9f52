"""Rule system_ranking: runs.csv -> the whole-system check table and its plot."""

from pathlib import Path

import pandas as pd

from reproscope.plots import system_ranking as plot_ranking
from reproscope.ranking import system_ranking

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

table = system_ranking(pd.read_csv(snakemake.input.runs))
table.to_csv(snakemake.output.table, index=False)
plot_ranking(table, Path(snakemake.output.plot))
Path(snakemake.log[0]).write_text(
    f"{len(table)} pairs, {int(table['rankings_disagree'].sum())} disagree\n"
)
