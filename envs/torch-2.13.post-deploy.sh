#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=d871452b98c3ec0f109045e857c16c86e105a7798a4d2e1efcebe59798a01b95
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/torch-2.13.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/torch-2.13.lock.txt
