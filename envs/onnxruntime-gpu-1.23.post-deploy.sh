#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=4d4b31a2a101fc5c953242f7eaed03e0d9718fcb33fb0d9fd25fc16788ce7199
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.23.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-gpu-1.23.lock.txt
