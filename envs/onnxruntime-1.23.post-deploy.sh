#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.23.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=d0c232e1fa9d3e6552307d7774e41880a02f80b931d4772f68be5048d4bef677
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.23.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-1.23.lock.txt
