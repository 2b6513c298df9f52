#!/usr/bin/env bash
# The prepared GPU check (issue 13): on a machine with one NVIDIA GPU, build the CUDA
# environments, then run a small CUDA study (config/gpu-check.yaml: EfficientNet-Lite0 in
# ONNX Runtime and PyTorch, ResNet-50 v1 in TensorFlow, batch sizes 1..64) and print, from
# results/summary/runs.csv, h2d / compute / d2h, GPU memory, utilisation and energy per
# inference, and from results/summary/limits.csv the GPU's measured limits (cuBLAS GEMM,
# device memory, H2D / D2H pinned and pageable). The study itself should take under 8 minutes; environment builds (several GB
# of CUDA wheels) are timed apart.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # OUT_DIR gets runs.csv, limits.csv, timings.txt
#
# Exit status 0 when every CUDA job ran ('ok'); 1 when any was unavailable or failed
# (a CUDA provider or device that was not actually in use is reported, not hidden).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/gpu-check}"
mkdir -p "$out"
config=config/gpu-check.yaml

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L | grep -q '^GPU 0'; then
    echo "gpu_check: no NVIDIA GPU (nvidia-smi -L lists none); nothing to check" >&2
    exit 2
fi
nvidia-smi -L | tee "$out/gpus.txt"
python -m pip install --no-input -q -e '.[frameworks]'

started=$(date +%s)
snakemake --configfile "$config" --cores all -q \
    results/envs/torch-2.13-cuda/lock.json \
    results/envs/onnxruntime-gpu-1.30/lock.json \
    results/envs/tensorflow-2.21-cuda/lock.json
envs_s=$(( $(date +%s) - started ))

started=$(date +%s)
snakemake --configfile "$config" --cores all -q \
    results/summary/runs.csv results/summary/system_ranking.csv results/summary/limits.csv
study_s=$(( $(date +%s) - started ))

cp results/summary/runs.csv results/summary/limits.csv "$out/"
{
    echo "environment builds: ${envs_s} s"
    echo "CUDA study: ${study_s} s (target: under 480 s)"
} | tee "$out/timings.txt"

python - "$out/runs.csv" "$out/limits.csv" <<'PY'
import sys

import pandas as pd

runs = pd.read_csv(sys.argv[1])
limits = pd.read_csv(sys.argv[2])
pd.set_option("display.width", 250)
# The GPU's limits (issue 30): cuBLAS GEMM, device memory, and the interconnect.
cuda_limits = [
    "gemm_gflops", "gemm_framework", "gemm_shape", "device_memory_gbps", "h2d_pinned_gbps",
    "h2d_pageable_gbps", "d2h_pinned_gbps", "d2h_pageable_gbps", "seconds",
]
print(limits[["system", "device", *cuda_limits]].to_string(index=False))
on_gpu = limits[limits["device"] == "cuda"]
if on_gpu.empty or on_gpu[cuda_limits[:1] + cuda_limits[3:8]].isna().any(axis=None):
    print("gpu_check: the CUDA limits were not all measured (see limits.csv)", file=sys.stderr)
    sys.exit(1)
columns = [
    "model", "framework", "env", "batch_size", "status", "latency_ms_p50", "throughput_ips",
    "breakdown_h2d_ms", "breakdown_compute_ms", "breakdown_d2h_ms", "gpu_memory_max_mb",
    "gpu_utilisation_pct", "energy_per_inference_j", "bound_gflops", "roofline_share",
    "roofline_status", "reason",
]
print(runs[[c for c in columns if c in runs.columns]].to_string(index=False))
bad = runs[runs["status"] != "ok"]
skipped = bad[bad["status"] == "skipped"]
if len(skipped):
    print(f"{len(skipped)} points skipped by the time budget (see reason)")
failed = bad[bad["status"] != "skipped"]
if len(failed):
    print(f"gpu_check: {len(failed)} CUDA jobs did not run on the GPU", file=sys.stderr)
    sys.exit(1)
PY
