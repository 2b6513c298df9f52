#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=c72782ef0fd69358e66a055dac7e60513984333fe66f79195e3751f7d20910a2
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13.lock.txt
python src/reproscope/lockfile.py verify envs/torch-2.13.lock.txt
