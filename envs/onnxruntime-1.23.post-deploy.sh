#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=64a4456442ac9e0f44837512fe22e01009bb25775cbe8b40ab4e1b783499ef75
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.23.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-1.23.lock.txt
