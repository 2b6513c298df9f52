#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=39befcb2620ef84ad61712c1052f99dcfa4e6935ed58f9014cb738136a208875
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/onnxruntime-gpu-1.23.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.23.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-gpu-1.23.lock.txt
