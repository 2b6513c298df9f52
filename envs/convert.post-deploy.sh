#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from convert.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=a8ac7f7989d559ceb8798db61ef8405079706664b5edf64f27ae640a9e26e2dc
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/convert.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/convert.lock.txt
