#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=d0c232e1fa9d3e6552307d7774e41880a02f80b931d4772f68be5048d4bef677
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/onnxruntime-1.23.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.23.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-1.23.lock.txt
