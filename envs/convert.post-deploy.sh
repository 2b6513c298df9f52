#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from convert.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=c43c7208692760731df01b9d66c0caa5625691cb50ac9ecc2333688231441897
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/convert.lock.txt
python src/reproscope/lockfile.py verify envs/convert.lock.txt
