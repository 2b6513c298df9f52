#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.30.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=9078276b7322bd2dbf2cb1745468846979c99b5ff1e9ca0e944d8161fe8ccbf7
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/onnxruntime-gpu-1.30.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.30.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-gpu-1.30.lock.txt
