#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-gpu-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=39befcb2620ef84ad61712c1052f99dcfa4e6935ed58f9014cb738136a208875
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-gpu-1.23.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-gpu-1.23.lock.txt
