#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=d871452b98c3ec0f109045e857c16c86e105a7798a4d2e1efcebe59798a01b95
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/torch-2.13.lock.txt
