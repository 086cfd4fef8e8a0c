#!/usr/bin/env bash
# The GPU check in one go: the unit tests on the GPU, then the benchmark suites (ops, then training), each step
# under its own time limit so that one slow step cannot take the others down. Everything lands in OUT_DIR:
#   log.txt (versions, test report, both benchmark tables) and the two results files (.json, .md, .png).
# Usage: benchmarks/gpu_check.sh OUT_DIR      (PYTHON=python3 by default; run from the repository root)
# Knobs (environment): TESTS (pytest targets), PYTEST_ARGS, T_TESTS / T_OPS / T_TRAIN (seconds; 0 skips the step),
# DENSE_SHAPES, TRI_SHAPES, MIN_RUN_TIME, SLOW_S, EPOCHS.
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

  step "bench: dense and tridiagonal ops, float32"
  timeout "${T_OPS:-170}" $py -m eignotes.bench --suite dense,tridiagonal --out "$out" \
    --dense-shapes "${DENSE_SHAPES:-500x100,1024x45}" --tri-shapes "${TRI_SHAPES:-1024x45,16384x45,1024x100}" \
    --min-run-time "${MIN_RUN_TIME:-0.5}" --slow-s "${SLOW_S:-2}" 2>&1
  echo "bench ops exit: $?"

  if [ "${T_TRAIN:-130}" != 0 ]; then
    step "bench: training, dim 45"
    timeout "${T_TRAIN:-130}" $py -m eignotes.bench --suite training --epochs "${EPOCHS:-3}" --out "$out" 2>&1
    echo "bench training exit: $?"
  fi
  step done
} 2>&1 | tee "$log"
