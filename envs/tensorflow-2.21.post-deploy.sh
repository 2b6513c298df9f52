#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=83bb8fe6bb7f50f9c46963f5e20d850f97ec928c6be3eaf40dd6ec2fbc0068d1
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/tensorflow-2.21.lock.txt
