#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.30.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=c549068072a7efbbd25cbc965da4696bd42a6ac4390abf9798f0e41c3b32da0c
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.30.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-1.30.lock.txt
