#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from onnxruntime-1.30.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=a1d30ede31651726e4bc3453bcb9aa27bf03466b651531ab99a31fe675b6e2b3
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/onnxruntime-1.30.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/onnxruntime-1.30.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/onnxruntime-1.30.lock.txt
