#!/usr/bin/env bash
# Idempotent set-up: .venv in the repo root, the pinned stack, and the offline assets
# (SmolLM2-135M as safetensors, MMLU as JSONL, echarts.min.js) in .cache/.
# Usage: bash scripts/setup.sh [--test]   (--test adds pytest, pytest-benchmark, the trackers extra
# (mlflow, tensorboard) so their tests run, Chromium and Node.js; CI fails on any test that skips
# for want of them: scripts/check_skips.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
if ! $VPY -c "import torch" 2>/dev/null; then
    # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines.
    # GPU users: install a CUDA build of torch==2.13.0 into .venv before running this script.
    $VPY -m pip install --quiet --upgrade pip
    $VPY -m pip install --quiet "torch==2.13.0"
fi
extras=""
[ "${1:-}" = "--test" ] && extras="[test,trackers]"
$VPY -m pip install --quiet -e ".${extras}"
$VPY -m pip check
$VPY -m bench.util.assets
missing=()
if [ "${1:-}" = "--test" ]; then
    # Browser tests of the HTML report (chromium) and its static SVG (node); they skip without them,
    # which fails CI.
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null) || echo "[setup] ${missing[*]} not installed; their tests will skip"
    else
        echo "[setup] ${missing[*]} not found and cannot apt-get them; their tests will skip"
    fi
fi
echo "[setup] done: .venv ready, assets in .cache/"
