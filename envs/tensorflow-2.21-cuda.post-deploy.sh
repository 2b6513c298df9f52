#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=fa215a607b8ccab2c4179a088ce430006e57fa147efe07477124babdab3ee529
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/tensorflow-2.21-cuda.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21-cuda.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/tensorflow-2.21-cuda.lock.txt
