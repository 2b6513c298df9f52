#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21-cuda.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=85a7ebc9505a3e8481ca5d6564e71e2bf2ac419a56938500f6b716ab566d2a1c
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21-cuda.lock.txt
python src/reproscope/lockfile.py verify envs/tensorflow-2.21-cuda.lock.txt
