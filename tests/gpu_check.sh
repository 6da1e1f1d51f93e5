#!/usr/bin/env bash
# The project's one GPU check, for a lent machine with an NVIDIA GPU (run from anywhere):
#
#   1  the GPU: nvidia-smi -L, CuPy's device, minikd.cuda_available(), PyTorch's CUDA, the modules
#   2a the op, layer, loss, KD, pruning, quantization and device tests with MINIKD_TEST_DEVICE=cuda:
#      every op test (tests/util.check_grad) repeats its forward and backward on the GPU and must
#      give the CPU's numbers; the tests marked `gpu` in those files run too
#   2b every test marked `gpu` (the `device` fixture's cuda case, ...)
#   3  the numba.cuda kernels on the real GPU (tests/test_cuda_kernels.py, no simulator)
#   4  the hands-on for one epoch on the GPU (examples/mnist_teacher_student.py --device cuda)
#   5  the GPU benchmark: minikd and PyTorch on the same GPU (examples/benchmark.py --device cuda)
#   5b where a training step's time goes: host, GPU busy, kernels, syncs (examples/gpu_breakdown.py)
#   6  the hands-on's --quick run on the CPU and on the GPU: the same accuracies
#
# then a summary table (step, PASS/FAIL/SKIPPED, seconds, log), printed and written to
# $OUT/summary.txt; the exit status is 1 if any step failed. Every step runs under `timeout`,
# with what is left of an 8-minute budget (DEADLINE_S, default 450 s, leaves room to start and
# to copy the logs): a step that finishes early leaves its time to the later ones.
#
# The GPU machine has no network and gets the repository only: the checkout goes on PYTHONPATH
# (no pip install); modules missing there can be put in .gpu_deps here and carried
# (pip install --target .gpu_deps hypothesis; the folder is git-ignored). MNIST is not in the
# repository: real files are used if minikd finds them (MINIKD_DATA, ~/.cache/minikd/mnist),
# else the hands-on trains on synthetic MNIST-shaped data (10 noisy class templates: learnable,
# so a broken GPU training still shows) written to a temporary folder, and says so.
#
# Logs and results go to $OUT (default ./gpu_check_out). Without a GPU the script stops at step 1
# with a message. GPU_CHECK_DRY_RUN=1 runs the same flow on the CPU instead (device tests on the
# stand-in device, the kernels on Numba's CUDA simulator, the examples on the CPU, smaller runs),
# to check the script itself; GPU_CHECK_SYNTHETIC=1 uses synthetic data even where MNIST is found.
# GPU_CHECK_STEPS="2b 3 5b" runs only those steps after step 1 (a rerun of what failed, to save
# device time); the others are listed as SKIPPED.
#
# numba.cuda compiles its kernels with NVVM, which comes with a CUDA toolkit: when Numba finds
# none and CUDA_HOME is unset, step 1 looks for a toolkit in /usr/local/cuda* and /opt/cuda*,
# and sets CUDA_HOME to it for the later steps if that makes the kernels usable (it says so).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export PYTHONPATH="$ROOT:$ROOT/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
PY="${PYTHON:-$(command -v python || command -v python3)}"
DRY="${GPU_CHECK_DRY_RUN:-0}"
DEADLINE_S="${DEADLINE_S:-450}"
START=$SECONDS
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "$DRY" = 1 ]; then
    DEV=cpu; TEST_DEV=standin; AGAINST=standin
    echo "GPU_CHECK_DRY_RUN=1: the flow on the CPU (stand-in device, CUDA simulator, small runs); no GPU is used"
else
    DEV=cuda; TEST_DEV=cuda; AGAINST=cuda
fi

# the test files of step 2a: ops, layers, losses, KD, pruning, quantization, devices
DEVICE_TESTS="tests/test_ops.py tests/test_conv_pool.py tests/test_gradcheck.py tests/test_nn.py tests/test_norm.py
tests/test_resize.py tests/test_generator_layers.py tests/test_tensor.py tests/test_optim.py tests/test_losses.py
tests/test_kd.py tests/test_kd_methods.py tests/test_prune.py tests/test_compact.py tests/test_quant_ops.py
tests/test_quant_modules.py tests/test_quant_integer.py tests/test_device.py"
# step 2b collects the whole suite but the documentation's tests (they need the docs tooling, no GPU)
DOC_TESTS="--ignore=tests/test_docs.py --ignore=tests/test_markdown.py --ignore=tests/test_site.py
--ignore=tests/test_site_browser.py"
PYTEST=("$PY" -m pytest -q -p no:cacheprovider -rfEs)
# step 2a on several processes where pytest-xdist is installed (the GPU machine has 16 cores; each
# worker compiles its own CuPy kernels, which go to CuPy's on-disk cache for the others)
PARALLEL=()
if [ "$DRY" != 1 ] && "$PY" -c "import xdist" 2> /dev/null; then PARALLEL=(-n "${GPU_CHECK_WORKERS:-6}"); fi

# ------------------------------------------------------------------ the summary's rows
NAMES=(); STATUS=(); SECS=(); LOGS=(); NOTES=()
record() {  # name status seconds log note
    NAMES+=("$1"); STATUS+=("$2"); SECS+=("$3"); LOGS+=("$4"); NOTES+=("$5")
    printf '   -> %s %s (%s s)%s\n' "$1" "$2" "$3" "${5:+: $5}"
}

summary() {
    local f="$OUT/summary.txt" i
    {
        echo "gpu_check summary ($( [ "$DRY" = 1 ] && echo "DRY RUN on the CPU" || echo "device $DEV" )," \
             "$(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - START)) s in all)"
        printf '%-34s %-8s %7s  %-28s %s\n' step status seconds log note
        printf '%-34s %-8s %7s  %-28s %s\n' "----" "------" "-------" "---" "----"
        for i in "${!NAMES[@]}"; do
            printf '%-34s %-8s %7s  %-28s %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${LOGS[$i]}" \
                "${NOTES[$i]}"
        done
        if [ -f "$OUT/05_benchmark.log" ] && grep -q '^| model ' "$OUT/05_benchmark.log"; then
            echo
            echo "benchmark (step 5), images/s:"
            grep -E '^(\||minikd first step|CuPy float32|NumPy float32)' "$OUT/05_benchmark.log"
        fi
        if [ -f "$OUT/05b_breakdown.log" ] && grep -q '^| framework ' "$OUT/05b_breakdown.log"; then
            echo
            echo "where a training step's time goes (step 5b):"
            grep -E '^(\||costliest|kernels of|GPU busy)' "$OUT/05b_breakdown.log"
        fi
    } > "$f"
    echo
    cat "$f"
}

FLOORS=()  # the least time each later step needs, reserved while an earlier one runs
budget() {  # budget WANT: echo the seconds a step may take now (0: none left)
    local want=$1 left reserve=0 f
    for f in ${FLOORS[@]+"${FLOORS[@]}"}; do reserve=$((reserve + f)); done
    left=$((DEADLINE_S - (SECONDS - START) - reserve))
    [ "$left" -lt "$want" ] && want=$left
    [ "$want" -lt 10 ] && want=0
    echo "$want"
}

# run NAME LOG WANT CMD...: CMD under timeout (stdout and stderr to $OUT/LOG); sets RC, TOOK, LIMIT
run() {
    local name=$1 log=$2 want=$3 id=${1%% *}
    shift 3
    FLOORS=(${FLOORS[@]+"${FLOORS[@]:1}"})
    if [ -n "${GPU_CHECK_STEPS:-}" ] && [ "$id" != 1 ] && [[ " $GPU_CHECK_STEPS " != *" $id "* ]]; then
        RC=-2; TOOK=0; LIMIT=0
        echo; echo "== $name: not in GPU_CHECK_STEPS"
        return
    fi
    LIMIT=$(budget "$want")
    echo
    echo "== $name (limit ${LIMIT} s, log $log)"
    if [ "$LIMIT" = 0 ]; then
        RC=-1; TOOK=0
        echo "no time left in the ${DEADLINE_S} s budget" > "$OUT/$log"
        return
    fi
    local t0=$SECONDS
    timeout -k 5 "$LIMIT" "$@" > "$OUT/$log" 2>&1
    RC=$?
    TOOK=$((SECONDS - t0))
    tail -n 4 "$OUT/$log" | sed 's/^/   | /'
}

# the status of a pytest step from its exit code and its last line ("12 passed, 3 skipped in 4.1s")
pytest_row() {  # name log [skipped-is-ok]
    local name=$1 log=$2 ok_skip=${3:-0} line passed
    line=$(grep -E '[0-9]+ (passed|failed|skipped|errors?|deselected)' "$OUT/$log" | tail -n 1)
    passed=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    if [ "$RC" = -2 ]; then record "$name" SKIPPED 0 - "not in GPU_CHECK_STEPS"
    elif [ "$RC" = -1 ]; then record "$name" SKIPPED 0 "$log" "no time left"
    elif [ "$RC" = 124 ] || [ "$RC" = 137 ]; then record "$name" FAIL "$TOOK" "$log" "timed out after $LIMIT s; ${line}"
    elif [ "$RC" = 0 ] && [ "${passed:-0}" -gt 0 ]; then record "$name" PASS "$TOOK" "$log" "$line"
    elif [ "$RC" = 0 ] || [ "$RC" = 5 ]; then
        if [ "$ok_skip" = 1 ]; then record "$name" SKIPPED "$TOOK" "$log" "nothing ran (${line:-no tests})"
        else  # on a GPU every one of these must run: the first skip's reason says why it did not
            record "$name" FAIL "$TOOK" "$log" "nothing ran (${line:-no tests}) $(grep -m1 -oE 'SKIPPED \[.*' \
                "$OUT/$log" | cut -c1-160)"
        fi
    else record "$name" FAIL "$TOOK" "$log" "exit $RC; ${line}"; fi
}

plain_row() {  # name log [note]
    if [ "$RC" = -2 ]; then record "$1" SKIPPED 0 - "not in GPU_CHECK_STEPS"
    elif [ "$RC" = -1 ]; then record "$1" SKIPPED 0 "$2" "no time left"
    elif [ "$RC" = 124 ] || [ "$RC" = 137 ]; then record "$1" FAIL "$TOOK" "$2" "timed out after $LIMIT s"
    elif [ "$RC" = 0 ]; then record "$1" PASS "$TOOK" "$2" "${3:-}"
    else record "$1" FAIL "$TOOK" "$2" "exit $RC: $(grep -v '^\s*$' "$OUT/$2" | tail -n 1 | cut -c1-110)"; fi
}

# the least seconds of each step after the first (2a, 2b, 3, 4, 5, 5b, 6)
FLOORS=(0 60 30 30 60 60 30 30)
[ -n "${GPU_CHECK_STEPS:-}" ] && FLOORS=(0 0 0 0 0 0 0 0)   # a rerun of chosen steps: no reserve
RESERVED=0
for f in "${FLOORS[@]}"; do RESERVED=$((RESERVED + f)); done
if ! [[ "$DEADLINE_S" =~ ^[0-9]+$ ]]; then
    echo "gpu_check: DEADLINE_S: expected whole seconds; got '$DEADLINE_S'" >&2
    exit 2
elif [ "$DEADLINE_S" -lt $((RESERVED + 30)) ]; then
    # (twice on the GPU, DEADLINE_S=280 and 300 left step 1 no time at all, and the run was lost)
    echo "gpu_check: DEADLINE_S=$DEADLINE_S is too short: the later steps reserve $RESERVED s, and step 1 needs" \
         "30 s more; give at least $((RESERVED + 30)) (default 450), or name fewer steps in GPU_CHECK_STEPS" >&2
    exit 2
fi

# ------------------------------------------------------------------ 1. the GPU
run "1 GPU and software" 01_gpu.log 60 env DRY="$DRY" "$PY" - <<'PY'
import importlib.util
import os
import shutil
import subprocess
import sys

print(f"python {sys.version.split()[0]} at {sys.executable}")
if shutil.which("nvidia-smi"):
    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
else:
    print("nvidia-smi: not on PATH")
for name in ("numpy", "numba", "cupy", "torch", "pytest", "hypothesis", "tqdm", "matplotlib"):
    spec = importlib.util.find_spec(name)
    print(f"{name:>11}: {'missing' if spec is None else 'found'}")
try:
    import cupy
    n = cupy.cuda.runtime.getDeviceCount()
    names = [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(n)]
    print(f"CuPy {cupy.__version__}: {n} device(s): {names}; CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
except Exception as e:  # noqa: BLE001 - any failure is the message
    print(f"CuPy: {type(e).__name__}: {e}")
import minikd
from minikd import kernels

ok = minikd.cuda_available()
print(f"minikd.cuda_available() = {ok}; numba.cuda kernels: {kernels.cuda_kernels_status()}")
try:
    import torch
    cuda = torch.cuda.is_available()
    print(f"PyTorch {torch.__version__}: torch.cuda.is_available() = {cuda}"
          + (f", {torch.cuda.get_device_name(0)}" if cuda else ""))
except Exception as e:  # noqa: BLE001
    print(f"PyTorch: {type(e).__name__}: {e}")
if not ok and os.environ.get("DRY") != "1":
    sys.exit("no GPU: minikd sees no CUDA device (CuPy missing, or no NVIDIA GPU/driver). This script needs one; "
             "GPU_CHECK_DRY_RUN=1 runs its flow on the CPU")
PY
if [ "$RC" != 0 ]; then
    plain_row "1 GPU and software" 01_gpu.log
    echo
    echo "gpu_check: stopped at step 1 — $(tail -n 1 "$OUT/01_gpu.log")"
    for s in "2a device tests" "2b gpu-marked tests" "3 CUDA kernels" "4 hands-on, 1 epoch" "5 benchmark" \
             "5b time breakdown" "6 hands-on --quick, CPU vs $AGAINST"; do
        record "$s" SKIPPED 0 - "not run: step 1 failed"
    done
    summary
    exit 1
fi
# numba.cuda's kernels need NVVM: look for a CUDA toolkit if Numba found none by itself
if [ "$DRY" != 1 ] && [ -z "${CUDA_HOME:-}" ] && grep -q 'numba.cuda kernels: [^u]' "$OUT/01_gpu.log"; then
    for d in /usr/local/cuda /usr/local/cuda-* /opt/cuda /opt/cuda-*; do
        ls "$d"/nvvm/lib64/libnvvm.so* > /dev/null 2>&1 || continue
        status=$(CUDA_HOME=$d "$PY" -c "from minikd import kernels; print(kernels.cuda_kernels_status())" 2>&1 | tail -n 1)
        echo "with CUDA_HOME=$d: numba.cuda kernels: $status" >> "$OUT/01_gpu.log"
        if [[ "$status" == usable* ]]; then
            export CUDA_HOME=$d
            echo "CUDA_HOME=$d set for the later steps" >> "$OUT/01_gpu.log"
            break
        fi
    done
    tail -n 2 "$OUT/01_gpu.log" | sed 's/^/   | /'
fi
plain_row "1 GPU and software" 01_gpu.log "$(grep -m1 -E '^(CuPy|GPU)' "$OUT/01_gpu.log" | cut -c1-100)"
HAVE_PLOTS=1
grep -qE '^ *(tqdm|matplotlib): missing' "$OUT/01_gpu.log" && HAVE_PLOTS=0

# ------------------------------------------------------------------ 2. the tests on the device
# shellcheck disable=SC2086  # the file lists are meant to split
run "2a device tests (MINIKD_TEST_DEVICE=$TEST_DEV)" 02a_device_tests.log 180 \
    env MINIKD_TEST_DEVICE="$TEST_DEV" "${PYTEST[@]}" ${PARALLEL[@]+"${PARALLEL[@]}"} -m "not slow" $DEVICE_TESTS
pytest_row "2a device tests ($TEST_DEV)" 02a_device_tests.log

# shellcheck disable=SC2086
run "2b tests marked gpu" 02b_gpu_tests.log 60 "${PYTEST[@]}" -m gpu $DOC_TESTS tests/
pytest_row "2b gpu-marked tests" 02b_gpu_tests.log "$DRY"

# ------------------------------------------------------------------ 3. the numba.cuda kernels
if [ "$DRY" = 1 ]; then
    run "3 CUDA kernels (Numba's simulator)" 03_cuda_kernels.log 60 \
        env NUMBA_ENABLE_CUDASIM=1 "${PYTEST[@]}" -m cudasim tests/test_cuda_kernels.py
else
    run "3 CUDA kernels on the GPU" 03_cuda_kernels.log 60 \
        env -u NUMBA_ENABLE_CUDASIM "${PYTEST[@]}" -m cudasim tests/test_cuda_kernels.py
fi
pytest_row "3 CUDA kernels$( [ "$DRY" = 1 ] && echo ' (simulator)')" 03_cuda_kernels.log

# ------------------------------------------------------------------ data for the hands-on
DATA=$("$PY" -c "from minikd.data import find_data_dir; print(find_data_dir())" 2>/dev/null)
if [ -z "$DATA" ] || [ "${GPU_CHECK_SYNTHETIC:-0}" = 1 ]; then
    DATA="$WORK/synthetic_mnist"
    DATA_NOTE="SYNTHETIC data (no MNIST here): the accuracies only show that training learns"
    "$PY" - "$DATA" <<'PY' > "$OUT/04_data.log" 2>&1 || DATA=""
import gzip
import sys
from pathlib import Path

import numpy as np

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
templates = rng.uniform(0, 1, (10, 28, 28)) > 0.75           # one random pattern of strokes per class


def images(n):
    labels = rng.integers(0, 10, n)
    x = 80.0 + templates[labels] * 80.0 + rng.normal(0, 60, (n, 28, 28))   # the class pattern, under heavy noise
    return np.clip(x, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write(name, a):
    header = bytes([0, 0, 8, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    with gzip.open(folder / name, "wb", compresslevel=1) as f:
        f.write(header + a.tobytes())


for split, n in (("train", 60000), ("t10k", 10000)):
    x, y = images(n)
    write(f"{split}-images-idx3-ubyte.gz", x)
    write(f"{split}-labels-idx1-ubyte.gz", y)
print(f"synthetic MNIST-shaped data in {folder}: 60,000 + 10,000 images of 10 noisy class templates")
PY
else
    DATA_NOTE="real MNIST ($DATA)"
fi

# the accuracies of a hands-on results.json, and whether every run learned (> 20 %: chance is 10 %)
accuracies() {  # results.json -> "teacher 98.1 %, student ... " ; exit 1 if a run is near chance
    "$PY" - "$1" <<'PY'
import json
import sys

summary = json.load(open(sys.argv[1]))["summary"]
print(", ".join(f"{k} {v['test_acc_mean']:.1f} %" for k, v in summary.items()))
sys.exit(0 if all(v["test_acc_mean"] > 20 for v in summary.values()) else 1)
PY
}

# ------------------------------------------------------------------ 4. the hands-on, one epoch
HANDSON=(examples/mnist_teacher_student.py --device "$DEV" --epochs 1 --data-dir "$DATA" --out "$OUT/handson"
         --no-progress)
[ "$DRY" = 1 ] && HANDSON+=(--quick)   # the CPU: a 2,000-image subset, to keep the dry run short
if [ -z "$DATA" ]; then
    FLOORS=(${FLOORS[@]+"${FLOORS[@]:1}"})
    record "4 hands-on, 1 epoch" SKIPPED 0 04_data.log "no MNIST and the synthetic data could not be written"
elif [ "$HAVE_PLOTS" = 0 ]; then
    FLOORS=(${FLOORS[@]+"${FLOORS[@]:1}"})
    record "4 hands-on, 1 epoch" SKIPPED 0 01_gpu.log "tqdm or matplotlib missing on this machine (see step 1)"
else
    run "4 hands-on, 1 epoch on $DEV" 04_handson.log 150 "$PY" "${HANDSON[@]}"
    if [ "$RC" = 0 ]; then
        if acc=$(accuracies "$OUT/handson/results.json"); then
            record "4 hands-on, 1 epoch on $DEV" PASS "$TOOK" 04_handson.log "$acc; $DATA_NOTE"
        else
            record "4 hands-on, 1 epoch on $DEV" FAIL "$TOOK" 04_handson.log "a run stayed near chance: $acc"
        fi
    else
        plain_row "4 hands-on, 1 epoch on $DEV" 04_handson.log
    fi
fi

# ------------------------------------------------------------------ 5. the benchmark
if [ "$DRY" = 1 ]; then
    BENCH=(examples/benchmark.py --device cpu --steps 3 --models student --no-torch)
else
    BENCH=(examples/benchmark.py --device cuda --steps 15)
fi
run "5 benchmark ($DEV)" 05_benchmark.log 150 "$PY" "${BENCH[@]}" --json "$OUT/benchmark_$DEV.json"
plain_row "5 benchmark ($DEV)" 05_benchmark.log "table in the log, results in benchmark_$DEV.json"

# ------------------------------------------------------------------ 5b. where the time goes
if [ "$DRY" = 1 ]; then
    BREAK=(examples/gpu_breakdown.py --device cpu --steps 2 --batches 8 --models student)
else
    BREAK=(examples/gpu_breakdown.py --device cuda --steps 20 --batches 64,1024)
fi
run "5b time breakdown ($DEV)" 05b_breakdown.log 60 "$PY" "${BREAK[@]}" --json "$OUT/breakdown_$DEV.json"
plain_row "5b time breakdown ($DEV)" 05b_breakdown.log "table in the log"

# ------------------------------------------------------------------ 6. the same --quick run on the CPU and the device
# (the stand-in device is registered by the tests only: a dry run starts the example through them)
RUN_ON_STANDIN='import runpy, sys; from tests import standin; standin.register(); sys.path.insert(0, "examples")
sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")'
if [ -z "$DATA" ] || [ "$HAVE_PLOTS" = 0 ]; then
    FLOORS=(${FLOORS[@]+"${FLOORS[@]:1}"})
    record "6 hands-on --quick, CPU vs $AGAINST" SKIPPED 0 - "no data, or tqdm/matplotlib missing"
else
    QUICK=(examples/mnist_teacher_student.py --quick --data-dir "$DATA" --no-progress --runs teacher,student,kd)
    if [ "$AGAINST" = standin ]; then DEVICE_RUN=("$PY" -c "$RUN_ON_STANDIN"); else DEVICE_RUN=("$PY"); fi
    {   # the two runs, one after the other, as one command for `timeout`
        echo "set -e"
        printf '%q ' "$PY" "${QUICK[@]}" --device cpu --out "$OUT/agree_cpu"; echo
        printf '%q ' "${DEVICE_RUN[@]}" "${QUICK[@]}" --device "$AGAINST" --out "$OUT/agree_dev"; echo
    } > "$WORK/agree.sh"
    run "6 hands-on --quick, CPU vs $AGAINST" 06_agree.log 90 bash "$WORK/agree.sh"
    if [ "$RC" = 0 ]; then
        if agree=$("$PY" - "$OUT/agree_cpu/results.json" "$OUT/agree_dev/results.json" 2>&1 <<'PY'
import json
import sys

cpu, dev = (json.load(open(p))["summary"] for p in sys.argv[1:3])
worst = max(abs(cpu[k]["test_acc_mean"] - dev[k]["test_acc_mean"]) for k in cpu)
print(", ".join(f"{k} {cpu[k]['test_acc_mean']:.1f} vs {dev[k]['test_acc_mean']:.1f} %" for k in cpu))
sys.exit(0 if worst <= 1.0 else 1)   # float32 noise: a few of the 1,000 test images at most
PY
        ); then
            record "6 hands-on --quick, CPU vs $AGAINST" PASS "$TOOK" 06_agree.log "$agree"
        else
            record "6 hands-on --quick, CPU vs $AGAINST" FAIL "$TOOK" 06_agree.log "differ: $agree"
        fi
    else
        plain_row "6 hands-on --quick, CPU vs $AGAINST" 06_agree.log
    fi
fi

summary
for s in "${STATUS[@]}"; do
    [ "$s" = FAIL ] && exit 1
done
exit 0
