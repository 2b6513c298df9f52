#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=b9df1bf7c8f6fb3be9859d0c77e9103127e2dc6abf2b39fc945374f52f1bf252
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.23.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-1.23.lock.txt
