#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from workflow.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=21bcb5a501b7b648c4db76600674c8b5e2e1d30c0ee2c204b66cde9c816496c6
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/workflow.lock.txt
python src/reproscope/lockfile.py verify envs/workflow.lock.txt
