#!/usr/bin/env bash
# Micro-benchmarks (tests/benchmarks) compared with the committed baseline on `min`, each
# against its own threshold, set from measured noise (profiles/baselines/micro/thresholds.json,
# written by scripts/micro_noise.py analyse; see docs/gate.md for the false-alarm and
# missed-regression rates behind it).
# The last line is always "micro-benchmarks: PASS" or "micro-benchmarks: FAIL: <why>";
# exit 0 pass, 1 slower than the threshold (or a benchmark broke), 2 could not run.
#
#   scripts/micro_bench.sh                   compare with this CPU's baseline, profiles/baselines/micro/<cpu>.json
#   scripts/micro_bench.sh --save-baseline   measure and (over)write that baseline
#   scripts/micro_bench.sh -k nf4            further arguments go to pytest
#
# PYTHON (default: python), MICRO_BASELINE and MICRO_THRESHOLDS can be set in the environment.
# The baseline is machine-specific: regenerate it on the CI machine kind (see docs/gate.md).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
# one baseline per CPU model: absolute times do not compare across CPUs (e.g. amd-epyc.json)
CPU=$("$PY" -c "import cpuinfo, re; print(re.sub(r'[^a-z0-9]+', '-', cpuinfo.get_cpu_info()['brand_raw'].lower()).strip('-'))" 2>/dev/null || echo unknown)
BASELINE=${MICRO_BASELINE:-profiles/baselines/micro/$CPU.json}
THRESHOLDS=${MICRO_THRESHOLDS:-profiles/baselines/micro/thresholds.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

run_pytest() {
    "$PY" -m pytest tests/benchmarks -q -p no:cacheprovider \
        --benchmark-enable --benchmark-only --benchmark-warmup=on --benchmark-min-rounds=15 --benchmark-max-time=2 \
        --benchmark-sort=name --benchmark-columns=min,median,mean,stddev,rounds "$@" 2>&1 | tee "$WORK/log"
    return "${PIPESTATUS[0]}"
}

if [ "${1:-}" = "--save-baseline" ]; then
    shift
    run_pytest --benchmark-storage="file://$WORK/store" --benchmark-save=baseline "$@"
    rc=$?
    saved=$(find "$WORK/store" -name '*_baseline.json' 2>/dev/null | head -n 1)
    if [ "$rc" -ne 0 ] || [ -z "$saved" ]; then
        echo "micro-benchmarks: FAIL: could not measure a baseline (pytest exit $rc)"
        exit 2
    fi
    mkdir -p "$(dirname "$BASELINE")" && cp "$saved" "$BASELINE"
    echo "micro-benchmarks: baseline written to $BASELINE"
    exit 0
fi

if [ ! -f "$BASELINE" ]; then
    # timed (the table above is the record), not gated: there is nothing measured on this CPU to compare with
    run_pytest "$@" || { echo "micro-benchmarks: FAIL: pytest exit $?"; exit 1; }
    echo "micro-benchmarks: PASS (not gated: no baseline for this CPU ($CPU) at $BASELINE; run $0 --save-baseline to add one)"
    exit 0
fi
run_pytest --benchmark-compare="$BASELINE" --benchmark-json="$WORK/new.json" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    failed=$(grep -o "^FAILED [^ ]*\|^ERROR [^ ]*" "$WORK/log" | paste -sd ',' -)
    echo "micro-benchmarks: FAIL: pytest exit $rc${failed:+: $failed}"
    [ "$rc" -eq 1 ] && exit 1 || exit 2
fi
"$PY" scripts/micro_noise.py check "$BASELINE" "$WORK/new.json" "$THRESHOLDS" > "$WORK/check"
rc=$?
cat "$WORK/check"
if [ "$rc" -eq 0 ]; then
    echo "micro-benchmarks: PASS (no benchmark slower than its threshold in $THRESHOLDS vs $BASELINE)"
    exit 0
fi
if [ "$rc" -eq 3 ]; then
    echo "micro-benchmarks: PASS (not gated: $(cat "$WORK/check"); run $0 --save-baseline on this machine)"
    exit 0
fi
echo "micro-benchmarks: FAIL: $(grep -v '^micro-benchmarks' "$WORK/check" | paste -sd ';' -)"
[ "$rc" -eq 1 ] && exit 1 || exit 2
