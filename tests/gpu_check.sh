#!/usr/bin/env bash
# The project's one GPU check, for a machine with an NVIDIA GPU and CuPy (run from anywhere):
#   1. the tests marked `gpu` (they skip on a CPU-only machine), then the whole suite on it;
#   2. the GPU benchmark (examples/benchmark.py --device cuda; PyTorch columns if torch has CUDA).
# The checkout is put on PYTHONPATH (no pip install: the GPU machine may have no network).
# If hypothesis is missing there, populate .gpu_deps here first and carry it:
#   pip install --target .gpu_deps hypothesis      (the folder is git-ignored)
# Results go to $OUT (or ./gpu_check_out): pytest's log, the benchmark's JSON and table.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD:$PWD/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
status=0

python - <<'PY' || exit 1
import cupy, minikd
n = cupy.cuda.runtime.getDeviceCount()
name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
print(f"CuPy {cupy.__version__}, {n} device(s), device 0: {name}; minikd.cuda_available() = {minikd.cuda_available()}")
assert minikd.cuda_available(), "minikd does not see the GPU"
PY

echo "== GPU tests (-m gpu)"
python -m pytest -q -m gpu -p no:cacheprovider -rs 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25 || status=1
grep -qE "[0-9]+ passed" "$OUT/pytest_gpu.log" && ! grep -qE "failed|error" "$OUT/pytest_gpu.log" || status=1

echo "== whole suite, not slow (CPU paths on this machine's CPU)"
python -m pytest -q -m "not slow" -x -p no:cacheprovider 2>&1 | tail -5 | tee "$OUT/pytest_all.log" || status=1

echo "== GPU benchmark"
timeout 400 python examples/benchmark.py --device cuda --steps 20 --json "$OUT/benchmark_gpu.json" 2>&1 \
    | tee "$OUT/benchmark_gpu.txt" | tail -20 || status=1

exit $status
