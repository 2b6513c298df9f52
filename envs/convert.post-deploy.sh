#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from convert.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=2ae2ad0d37342ec7fc4fb9ac35d3906a35c7416ecb62774b8b93248faa0c9f0d
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/convert.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/convert.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/convert.lock.txt
