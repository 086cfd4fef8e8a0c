#!/usr/bin/env bash
# Every notebook executed as a Colab user runs it, on whatever device this machine has (made for a lent GPU), each
# under its own time limit so that one slow or failing notebook cannot take the others down.
# Usage: benchmarks/gpu_notebooks.sh OUT_DIR      (PYTHON=python3 by default; run from the repository root)
# Knobs (environment):
#   SCALE    the scale every notebook runs at (default: cpu, what Colab users get by default, GPU or not)
#   FULL     notebooks to run again at the full scale, by number (default: "01 05", the ones that fit)
#   T_NB     seconds allowed per notebook at SCALE (default 240); T_FULL the same at full scale (default 300)
#   WHEELS   a folder of wheels to install from first (no network on a lent machine), e.g. cupy-cuda12x; skipped
#            where absent, and what is missing is listed in the log
# Writes OUT_DIR/log.txt (versions, every notebook's report and traceback), OUT_DIR/times.md (one row per notebook
# and scale: seconds, exit status, claims contradicted), and OUT_DIR/<scale>/notebooks/*.ipynb and
# OUT_DIR/<scale>/figures/*.png (the executed notebooks and their figures).
set -u
out=${1:?usage: benchmarks/gpu_notebooks.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
scale=${SCALE:-cpu}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log="$out/log.txt"
times="$out/times.md"
step() { echo; echo "=== $* ($(date -u +%T))"; }

run_one() {  # run_one SCALE NOTEBOOK SECONDS: one notebook alone, its row appended to times.md
  local s=$1 nb=$2 limit=$3 tmp t0 rc secs
  tmp=$(mktemp -d)
  cp "$nb" "$tmp/"
  step "$(basename "$nb") at scale $s (limit ${limit} s)"
  t0=$(date +%s)
  EIGNOTES_SCALE=$s timeout "$limit" $py -m eignotes.course.reproduce --out "$out/$s" --notebooks "$tmp" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  case $rc in
    0) what="ran" ;;
    1) what="exit 1: a cell failed or a claim was contradicted (see log.txt)" ;;
    124|137) what="stopped at the time limit" ;;
    *) what="failed (exit $rc, see log.txt)" ;;
  esac
  echo "| $(basename "$nb" .ipynb) | $s | $secs | $what |" >> "$times"
  rm -rf "$tmp"
}

{
  step versions
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi: no GPU here"
  if [ -n "${WHEELS:-}" ] && [ -d "${WHEELS}" ]; then
    step "installing from $WHEELS"
    $py -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -5
  fi
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available())"
  for m in cupy triton numba nbclient ipykernel matplotlib sklearn ipywidgets; do
    $py -c "import $m; print('$m', getattr($m, '__version__', '?'))" 2>/dev/null || echo "$m: MISSING"
  done
  $py -c "from eignotes import config; print(config.describe())"
  {
    echo "# Notebooks executed on $($py -c 'from eignotes import config; import torch; print(config.device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu")))')"
    echo
    echo "- commit: $(git rev-parse HEAD 2>/dev/null || echo unknown); date: $(date -u +%FT%T)"
    echo "- command: \`benchmarks/gpu_notebooks.sh\` with SCALE=$scale FULL=\"${FULL-01 05}\""
    echo
    echo "| notebook | scale | seconds | outcome |"
    echo "|---|---|---|---|"
  } > "$times"
  for nb in notebooks/[0-9][0-9]_*.ipynb; do
    run_one "$scale" "$nb" "${T_NB:-240}"
  done
  for n in ${FULL-01 05}; do
    for nb in notebooks/${n}_*.ipynb; do
      [ -e "$nb" ] && run_one full "$nb" "${T_FULL:-300}"
    done
  done
  step "times"
  cat "$times"
} 2>&1 | tee "$log"
