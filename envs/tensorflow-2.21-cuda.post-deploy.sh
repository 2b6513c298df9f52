#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=5c81d11c03a86fb84ba055c01e17e968963a7de6c635faaf4d3ece445cef7c2f
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21-cuda.lock.txt
python src/reproscope/lockfile.py verify envs/tensorflow-2.21-cuda.lock.txt
