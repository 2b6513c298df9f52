#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=cd8b2aff84ca52eba034d79d8320f3d063ae7e3d0c0ec7fc998709af8ad1744e
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13-cuda.lock.txt
python src/reproscope/lockfile.py verify envs/torch-2.13-cuda.lock.txt
