#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.30.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=44825a8aed41516583bfa50660ec3ccd96d54eaf1a304aa14b3c8bd737b4ceaf
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.30.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-gpu-1.30.lock.txt
