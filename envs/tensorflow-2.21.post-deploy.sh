#!/usr/bin/env bash
# Written by `python -m reproscope.lock`. Snakemake's conda deployment runs this inside the
# environment it built from tensorflow-2.21.<platform>.pin.txt (conda packages),
# from the workflow's directory: the pip packages come from the lock alone, then the
# installed set is compared with the lock.
# lock sha256=1bba5adc3ed0aa51b90e223717ba2d9f6ccaf9697cf098aa75efb14c5679ec2a
set -euo pipefail
python -m pip install --no-input --require-hashes --no-deps -r envs/tensorflow-2.21.lock.txt
python src/reproscope/lockfile.py verify envs/tensorflow-2.21.lock.txt
