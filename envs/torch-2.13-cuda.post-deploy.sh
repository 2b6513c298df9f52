#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=752421833a8c9e96043d5c0ebae29c265824e7cc2ea82b1fc5f4674fb062bfa8
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/torch-2.13-cuda.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13-cuda.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/torch-2.13-cuda.lock.txt
