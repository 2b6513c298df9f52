"""Rule limits: a system and device's limits, measured in each of its environments."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import json
import os
import tempfile

from reproscope.runtime.atomic import write_text
from reproscope.runtime.launch import SRC_VARIABLE
from reproscope.runtime.limits import measure_system

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

plan = dict(snakemake.params.plan)
src = os.environ.get(SRC_VARIABLE) or str(Path(snakemake.scriptdir).parent / "src")
with open(snakemake.log[0], "w") as log, tempfile.TemporaryDirectory() as work:
    record = measure_system(plan, dict(snakemake.params.pythons), src, log, Path(work))
    print(f"limits of {plan['system']}/{plan['device']}: {record['seconds']:.1f} s", file=log)
write_text(snakemake.output[0], json.dumps(record, indent=1, sort_keys=True) + "\n")
