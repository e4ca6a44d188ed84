#!/usr/bin/env bash
# One-shot GPU check, one command, at most 8 minutes on one GPU:
#   1. the gpu-marked tests (tests/test_gpu.py): CUDA peaks per phase, NVML against torch,
#      every precision policy, 4-bit QLoRA, the calibration against the datasheet peak, MFU in
#      (0, 1] and the planner within its band on a Llama-3.2-1B-shaped model, and a deliberate
#      OOM classified as `oom`;
#   2. the smoke and default profiles on CUDA;
#   3. the smoke profile's LoRA run under --max-memory 256MiB: the whole-device budget (context
#      included) must make it an `oom` record, not a crash and not an ok;
#   4. OUT/summary.json: torch's reserved memory against NVML's figure for the process, per
#      phase, the planner's prediction against the measured peak, per method, and any MFU flag;
# and one verdict line, "gpu-check: PASS (...)" or "gpu-check: FAIL (...)": exit 0 or 1.
#
#   bash scripts/gpu_check.sh [OUT]          (default OUT: reports/gpu-check)
#
# Without a CUDA device the tests skip with their reason, the profiles are not run (they would
# only repeat the CPU runs CI already makes), and the verdict says so: exit 0 when nothing failed.
# Budget (3 + 1.5 + 2.5 + 0.75 min = 7.75): each step has its own timeout, so the whole stays
# under 8 minutes.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-reports/gpu-check}
rm -rf "$OUT" && mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

gpu=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>/dev/null)
echo "gpu-check: ${gpu:-no CUDA device visible to torch}"

timeout 180 "$PY" -m pytest tests/test_gpu.py -m gpu -q -rs -p no:cacheprovider --junitxml="$OUT/gpu-tests.xml" 2>&1 \
    | tee "$OUT/gpu-tests.log"

profiles=()
skipped=""
if [ -n "$gpu" ]; then
    for step in "smoke 90" "default 150"; do
        set -- $step
        timeout "$2" "$PY" run_bench.py --profile "$1" --device cuda --out "$OUT/$1" 2>&1 | tee "$OUT/$1.log"
        profiles+=(--profile "$1=${PIPESTATUS[0]}")
    done
    timeout 45 "$PY" run_bench.py --profile smoke --methods lora --device cuda --no-eval --no-report \
        --max-memory 256MiB --out "$OUT/oom" 2>&1 | tee "$OUT/oom.log"
    profiles+=(--profile "oom=${PIPESTATUS[0]}")
else
    skipped="torch sees no CUDA device; profiles not run"
fi

"$PY" scripts/gpu_check_summary.py "$OUT" --gpu "$gpu" ${profiles[@]+"${profiles[@]}"} ${skipped:+--skipped "$skipped"}
