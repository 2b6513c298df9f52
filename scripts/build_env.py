"""Rule build_env: build a pinned environment and write its lock."""

import json
from pathlib import Path

from reproscope.envfile import read_env_file
from reproscope.envs import build, lock

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

env = read_env_file(snakemake.wildcards.env, snakemake.input[0])
with open(snakemake.log[0], "w") as log:
    built = build(env, Path(snakemake.params.prefix), log)
    resolved = lock(env, built)
    for missing in resolved["pins_unsatisfied"]:
        log.write(f"warning: {env.path} pins {missing}, not what is installed\n")
Path(snakemake.output[0]).write_text(json.dumps(resolved, indent=1, sort_keys=True))
