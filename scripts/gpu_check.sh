#!/usr/bin/env bash
# One-shot GPU check, one command, at most 8 minutes on one GPU:
#   1. the gpu-marked tests (tests/test_gpu.py): CUDA peaks per phase, NVML against torch,
#      every precision policy, 4-bit QLoRA, the calibration against the datasheet peak, MFU in
#      (0, 1] and the planner within its band on a Llama-3.2-1B-shaped model, and a deliberate
#      OOM classified as `oom`;
#   2. the smoke profile and the default profile's lora run on CUDA;
#   3. the smoke profile's LoRA run under --max-memory 256MiB: the whole-device budget (context
#      included) must make it an `oom` record, not a crash and not an ok;
#   4. OUT/summary.md (one screen, to commit as it is) and OUT/summary.json: torch's reserved memory against NVML's figure for the process, per
#      phase, the planner's prediction against the measured peak, per method, and any MFU flag;
# and one verdict line, "gpu-check: PASS (...)" or "gpu-check: FAIL (...)": exit 0 or 1.
#
#   bash scripts/gpu_check.sh [OUT]          (default OUT: reports/gpu-check)
#
# Without a CUDA device the tests skip with their reason, the profiles are not run (they would
# only repeat the CPU runs CI already makes), and the verdict says so: exit 0 when nothing failed.
# Budgets: each step's time limit is scaled from a measured per-run fixed cost, not a flat figure
# (measured on 2 shared cores of an AMD EPYC, no GPU; docs/gpu.md):
DRIVER_S=14        # ftbench's own start-up and data check: a `--steps 1` smoke run took 31.4 s, its run 17.8 s
RUN_FIXED_S=18     # one smoke run at --steps 1: child start-up, load, 1 step, lm-eval set-up and its 77 questions
DEFAULT_RUN_S=129  # the default profile's lora run less its train phase (load, eval, start-up; its CPU eval is
                   # the bulk, so on a GPU this is an upper bound): reports/samples/cpu-default
TESTS_S=150        # the gpu tests: torch import, ten tests, a 1.24B-parameter shape built on the GPU (not measured:
                   # no GPU yet; a timeout here is a failed check, not a slow one)
OTHER_S=15         # the GPU probe above and the summary
margin() { echo $(( ($1 * 5 + 3) / 4 )); }   # x1.25 for a slower host than the one measured
SMOKE_S=$(margin $(( DRIVER_S + 3 * RUN_FIXED_S )))     # 3 runs (full, lora, qlora)
DEFAULT_S=$(margin $(( DRIVER_S + DEFAULT_RUN_S )))     # lora only: 4 runs would not fit 8 minutes
OOM_S=$(margin $(( DRIVER_S + RUN_FIXED_S )))           # 1 run, no eval
TOTAL_S=$(( TESTS_S + SMOKE_S + DEFAULT_S + OOM_S + OTHER_S ))
echo "gpu-check: budgets (s): tests $TESTS_S, smoke $SMOKE_S, default $DEFAULT_S, oom $OOM_S, other $OTHER_S;" \
     "total $TOTAL_S of 480"
if [ "$TOTAL_S" -gt 480 ]; then echo "gpu-check: FAIL (budgets sum to $TOTAL_S s, over 8 minutes)"; exit 1; fi
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-reports/gpu-check}
rm -rf "$OUT" && mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

gpu=$(timeout 60 "$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>/dev/null)
echo "gpu-check: ${gpu:-no CUDA device visible to torch}"

timeout "$TESTS_S" "$PY" -m pytest tests/test_gpu.py -m gpu -q -rs -p no:cacheprovider --junitxml="$OUT/gpu-tests.xml" 2>&1 \
    | tee "$OUT/gpu-tests.log"

profiles=()
skipped=""
if [ -n "$gpu" ]; then
    for step in "smoke $SMOKE_S" "default $DEFAULT_S --methods lora"; do
        set -- $step
        name=$1 limit=$2
        shift 2
        timeout "$limit" "$PY" run_bench.py --profile "$name" "$@" --device cuda --no-report --out "$OUT/$name" 2>&1 \
            | tee "$OUT/$name.log"
        profiles+=(--profile "$name=${PIPESTATUS[0]}")
    done
    timeout "$OOM_S" "$PY" run_bench.py --profile smoke --methods lora --device cuda --no-eval --no-report \
        --max-memory 256MiB --out "$OUT/oom" 2>&1 | tee "$OUT/oom.log"
    profiles+=(--profile "oom=${PIPESTATUS[0]}")
else
    skipped="torch sees no CUDA device; profiles not run"
fi

"$PY" scripts/gpu_check_summary.py "$OUT" --gpu "$gpu" --budget "tests=$TESTS_S" --budget "smoke=$SMOKE_S" \
    --budget "default=$DEFAULT_S" --budget "oom=$OOM_S" --budget "other=$OTHER_S" ${profiles[@]+"${profiles[@]}"} ${skipped:+--skipped "$skipped"}
