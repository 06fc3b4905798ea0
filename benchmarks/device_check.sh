#!/usr/bin/env bash
# One command for the first GPU machine: the CUDA tests, the search-cost and throughput
# benchmarks, and one paper-protocol evaluation, in under 8 minutes, into one file whose
# last lines are the figures (benchmarks/device_summary.py).
#
#   benchmarks/device_check.sh                 # on a GPU machine, from a clean copy
#   benchmarks/device_check.sh --device cpu    # CI-sized, on any machine (about a minute)
#
# Options: --device cuda|cpu (default cuda; cpu uses tiny settings), --out FILE (default:
# device_check.txt in a new temporary folder, named at the start and the end; never the
# checkout, where it would show in `git status`), --python PY (use this interpreter instead of installing .venv with
# `make`). Each step has its own time limit, so a slow or failing step costs its limit,
# never the whole check; the summary says what was not measured.
#
#   benchmarks/device_check.sh --real-patients # then the real-patient supernet search too
#
# --real-patients adds, after the figures, issue 31's real-patient run at its full setting
# (benchmarks/real_lung.py --scoring supernet at 64 px, budget 150, top 5 retrained, then
# the evaluation against the U-Net preset over 3 folds x 3 seeds), limited to an hour:
# more than this CPU can run (docs/one_shot.md has the largest setting it could).
set -u -o pipefail

DEVICE=cuda
OUT=""
PY=""
REAL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --python) PY="$2"; shift 2 ;;
        --real-patients) REAL=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "error: --device must be cuda or cpu, got $DEVICE" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$OUT" ]; then
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/mbnas-device-check-XXXXXX")/device_check.txt"
fi
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
echo "device check writing to $OUT" >&2
cd "$ROOT" || exit 2
if [ -z "$PY" ]; then
    make -s .venv/.installed >&2 || { echo "error: make could not install .venv" >&2; exit 2; }
    PY="$ROOT/.venv/bin/python"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/device-check-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
: > "$OUT"

if [ "$DEVICE" = cuda ]; then
    TESTS=(tests)
    COST=(--device cuda --concurrency 1,2,4 --fused 3 --networks 2 --steps 10)
    THROUGHPUT=(--device cuda)
    EVALUATION=(--device cuda --folds-trained 1)
    LIMITS=(75 170 50 150)
else  # tiny: checks that every step runs, measures nothing worth quoting
    TESTS=(tests/training/test_cuda.py)
    COST=(--device cpu --size 32 --batch 2 --base-channels 4 --steps 1 --concurrency 1
          --fused 2 --networks 1 --matmul-size 256 --precision fp32)
    THROUGHPUT=(--device cpu --size 32 --batch 4 --slices 8 --epochs 1 --steps 1
                --matmul-size 256)
    EVALUATION=(--device cpu --cases 6 --slices-per-case 8 --size 32 --epochs 1
                --samples-per-epoch 0 --base-channels 4 --threads 1 --seeds-trained 1)
    LIMITS=(120 120 120 120)
fi

step() {  # step NAME LIMIT COMMAND...: run with a time limit, output into $OUT
    local name="$1" limit="$2"; shift 2
    local t0=$SECONDS
    echo "== $name (limit ${limit} s): $*" >> "$OUT"
    timeout --kill-after=10 "$limit" "$@" >> "$OUT" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s" >> "$OUT"
    echo "$name: exit $rc after $((SECONDS - t0)) s" >&2
}

{
    echo "mbnas device check, $(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, $(uname -n)"
    git -C "$ROOT" rev-parse --short HEAD 2>/dev/null | sed 's/^/commit /'
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} >> "$OUT" 2>&1

step "CUDA tests" "${LIMITS[0]}" "$PY" -m pytest -q -p no:cacheprovider -m cuda "${TESTS[@]}"
step "search cost" "${LIMITS[1]}" "$PY" benchmarks/gpu_search_cost.py "${COST[@]}" \
    --json "$WORK/search_cost.json"
step "train throughput" "${LIMITS[2]}" "$PY" benchmarks/train_throughput.py \
    "${THROUGHPUT[@]}" --json "$WORK/throughput.json"
step "paper evaluation" "${LIMITS[3]}" "$PY" benchmarks/paper_evaluation.py \
    "${EVALUATION[@]}" --json "$WORK/evaluation.json"

echo "== figures" >> "$OUT"
"$PY" benchmarks/device_summary.py "$WORK" >> "$OUT" 2>&1
if [ "$REAL" = 1 ]; then
    if [ "$DEVICE" = cuda ]; then
        REAL_ARGS=(--image-size 64 --base-channels 16 --epochs 20 --folds 3 --budget 150
                   --seeds 3 --retrain-top 5 --target-spacing 5)
    else
        REAL_ARGS=(--image-size 32 --base-channels 4 --epochs 1 --folds 2 --budget 2
                   --seeds 1 --retrain-top 1 --target-spacing 10)
    fi
    step "real patients, supernet search" 3600 "$PY" benchmarks/real_lung.py --scoring supernet \
        --strategies local --foreground-fraction 0.33 "${REAL_ARGS[@]}" --out "$WORK/real"
fi
echo "device check written to $OUT" >&2
