#!/usr/bin/env bash
# Written by `python -m reproscope.acquire.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21.<platform>.pin.txt (conda packages),
# from the workflow's directory: the lock is read as pip would read it (or refused)
# before pip sees it, the pip packages come from the lock alone, then the installed
# set (distributions, .pth files, folders without metadata) is compared with the lock.
# lock sha256=83bb8fe6bb7f50f9c46963f5e20d850f97ec928c6be3eaf40dd6ec2fbc0068d1
set -euo pipefail
PYTHONPATH=src python -m reproscope.acquire.lockfile read envs/tensorflow-2.21.lock.txt
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21.lock.txt
PYTHONPATH=src python -m reproscope.acquire.lockfile verify envs/tensorflow-2.21.lock.txt
