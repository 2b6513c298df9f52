#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from workflow.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=8b4ba9572bff751767d09c453eead8aa443ccaa075f1143f68fbc41192ae3979
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/workflow.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/workflow.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/workflow.lock.txt
