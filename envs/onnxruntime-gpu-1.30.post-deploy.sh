#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.30.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=06d0561c3e5e39dad5702c71649c9ded0ebf3cd76c616ee41a2c79194cb0a214
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.30.lock.txt
python src/reproscope/lockfile.py verify envs/onnxruntime-gpu-1.30.lock.txt
