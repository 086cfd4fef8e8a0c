#!/usr/bin/env bash
# The GPU check in one go: the unit tests on the GPU, then the benchmark suites (ops, then training), each step
# under its own time limit so that one slow step cannot take the others down. Everything lands in OUT_DIR:
#   log.txt (versions, test report, both benchmark tables) and the two results files (.json, .md, .png).
# Usage: benchmarks/gpu_check.sh OUT_DIR      (PYTHON=python3 by default; run from the repository root)
# Knobs (environment): TESTS (pytest targets), PYTEST_ARGS, T_TESTS / T_EXP / T_QUICK / T_TRITON / T_GRAPHS / T_OPS /
# T_TRAIN (seconds; 0 skips the step; T_EXP, T_QUICK, T_TRITON and T_GRAPHS are off unless set), DENSE_SHAPES,
# TRI_SHAPES, MIN_RUN_TIME, SLOW_S, EPOCHS.
# T_EXP runs the notebooks' experiments (eignotes.course.experiments) on the GPU at small sizes; T_QUICK the benchmark
# command in quick mode (every suite's GPU branch, tiny shapes); T_TRITON the dense Triton kernel's check
# (benchmarks/gpu_dense_triton_check.py); T_GRAPHS the CUDA-graph training check (benchmarks/gpu_graphs_check.py).
# Shapes are the goal shapes plus what fits a short session: torch.linalg loops over the matrices of a batch on a
# GPU, so a 16384-matrix baseline costs seconds per call; --slow-s times such a call once instead of repeating it.
set -u
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log="$out/log.txt"
step() { echo; echo "=== $* ($(date -u +%T))"; }
{
  step versions
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  $py -c "import torch, numpy, scipy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
  for m in cupy triton numba; do $py -c "import $m; print('$m', $m.__version__)" 2>&1 | tail -1; done

  if [ "${T_TESTS:-150}" != 0 ]; then
    step "unit tests"
    timeout "${T_TESTS:-150}" $py -m pytest ${TESTS:-tests} -q -p no:cacheprovider -ra ${PYTEST_ARGS:-} 2>&1
    echo "pytest exit: $?"
  fi

  if [ "${T_EXP:-0}" != 0 ]; then
    step "experiments on the GPU (small sizes)"
    timeout "$T_EXP" $py - <<'PY' 2>&1
import torch
from eignotes import tridiagonal_backends
from eignotes.course import experiments
dev = torch.device("cuda")
print("tridiagonal backends on cuda:", tridiagonal_backends(dev))
for row in experiments.tridiagonal_accuracy(device=dev):
    print(row)
speed = experiments.tridiagonal_speed([15, 45], [256, 4096], dev, min_run_time=0.05)
for key, series in speed.items():
    print(key, {label: [f"{t * 1e3:.3f} ms" for t in ts] for label, (xs, ts) in series.items()})
print(experiments.sweep_n([32, 33], 64, dev, min_run_time=0.05))
PY
    echo "experiments exit: $?"
  fi

  if [ "${T_QUICK:-0}" != 0 ]; then
    step "bench --quick on the GPU"
    timeout "$T_QUICK" $py -m eignotes.bench --quick --out "$out/quick" 2>&1 | tail -40
    echo "bench quick exit: ${PIPESTATUS[0]}"
  fi

  if [ "${T_TRITON:-0}" != 0 ]; then
    step "dense Triton kernel: correctness, host syncs, CUDA graph, goal timings"
    timeout "$T_TRITON" $py benchmarks/gpu_dense_triton_check.py 2>&1
    echo "dense triton check exit: $?"
  fi

  if [ "${T_OPS:-170}" != 0 ]; then
    step "bench: dense and tridiagonal ops, float32"
    timeout "${T_OPS:-170}" $py -m eignotes.bench --suite dense,tridiagonal --out "$out" \
      --dense-shapes "${DENSE_SHAPES:-500x100,1024x45}" --tri-shapes "${TRI_SHAPES:-1024x45,16384x45,1024x100}" \
      --min-run-time "${MIN_RUN_TIME:-0.5}" --slow-s "${SLOW_S:-2}" 2>&1
    echo "bench ops exit: $?"
  fi

  if [ "${T_TRAIN:-130}" != 0 ]; then
    step "bench: training, dim 45"
    timeout "${T_TRAIN:-130}" $py -m eignotes.bench --suite training --epochs "${EPOCHS:-3}" --out "$out" 2>&1
    echo "bench training exit: $?"
  fi
  step done
} 2>&1 | tee "$log"
