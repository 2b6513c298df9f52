"""Rule build_env: build an environment from its committed lock; record the lock's identity."""

import json
import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from reproscope.acquire.envfile import read_env_file
from reproscope.acquire.envs import build, record
from reproscope.acquire.lockfile import LockError
from reproscope.runtime.atomic import write_text
from reproscope.runtime.integrity import record as record_digest

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

env = read_env_file(snakemake.wildcards.env, snakemake.input.env)
with open(snakemake.log[0], "w") as log:
    try:
        built = build(env, Path(snakemake.params.prefix), log, snakemake.params.mechanism)
    except LockError as exc:  # a clear message (file, line or package, fix), no traceback
        log.write(f"error: {exc}\n")
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
write_text(snakemake.output[0], json.dumps(record(env, built), indent=1, sort_keys=True))
record_digest(snakemake.output[0])  # what inference jobs check the lock record against
