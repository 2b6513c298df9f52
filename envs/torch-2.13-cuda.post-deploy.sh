#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from torch-2.13-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=181c29b43a22e97bc9fd836ecd64b75ba18c2a486974ac4fd72c14e7d4370212
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/torch-2.13-cuda.lock.txt
python src/reproscope/lockfile.py verify envs/torch-2.13-cuda.lock.txt
