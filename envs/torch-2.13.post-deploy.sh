#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=d2c38f06b45cdef7657d8c44101e7b2a0a0b8fc09f76b791707aa0f2e08f7848
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13.lock.txt
python src/reproscope/lockfile.py verify envs/torch-2.13.lock.txt
