"""Where a training step's time goes on a GPU: Python and kernel launches, the GPU's own work, host syncs.

    python examples/gpu_breakdown.py [--device cuda] [--models teacher,student] [--batches 64,1024]
                                     [--steps 20] [--no-torch] [--json breakdown.json]

A small model on a big GPU is *host-bound*: each op is a few microseconds of GPU work behind the
host's Python and kernel launches (on an H200, about 600 µs per minikd op at batch 64), so the
GPU waits for the host. This script measures, for one training step (forward, cross-entropy,
backward, Adam) of each framework:

- **wall**: the step's time with the clock read after the GPU finished (median of ``--steps``);
- **host**: the time until the Python call returns, the GPU's queue drained before and after
  (launches are asynchronous, so this is the Python and launch cost of the step);
- **GPU busy**: the summed duration of the step's CUDA kernels, and their **count**, each the
  mean per step over ``--steps`` more steps, from PyTorch's profiler (CUPTI records every
  kernel in the process, CuPy's and Numba's too); "not measured" without PyTorch built with CUDA;
- **ops** (minikd): the autograd ops of the forward pass (``Function.apply`` calls); each has a
  backward too, so host / ops is the Python and launch cost of one op's forward, backward and
  share of Adam;
- **first sync** (minikd): where the step first makes the host wait for the GPU
  (``cupyx.allow_synchronize(False)``), or "none".

minikd is measured twice on a GPU: with its GPU kernels (``minikd.kernels.cuda``, numba.cuda)
when Numba can compile them there, and on the plain xp references (CuPy calls only, the
``"numpy"`` kernel backend).

wall ≈ host with GPU busy ≪ wall means the step is host-bound: a cheaper host cost per op helps
(fewer ops, cheaper launches), a faster GPU does not. Both frameworks run in this one process (PyTorch's profiler
must see minikd's kernels); each is warmed up first. ``--device cpu`` runs the same flow on the
CPU (host = wall, no kernels), which is how the tests check this script without a GPU.

PyTorch in the process may slow minikd's step: on the H200 the breakdown's teacher step at
batch 1024 took 10.3 ms, the benchmark's (one framework per process) 6.3 ms. For speed, trust
``examples/benchmark.py``; this script says where a step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmark import check_json_path, minikd_train_step, torch_models, torch_train_step  # noqa: E402

WARMUP = 3
PATH_NAMES = {"numba": "minikd kernels", "numpy": "minikd xp reference"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (the flow only)")
    p.add_argument("--models", default="teacher,student", help="comma-separated: teacher,student")
    p.add_argument("--batches", default="64,1024", help="comma-separated training batch sizes")
    p.add_argument("--steps", type=int, default=20, help="timed steps per number (median)")
    p.add_argument("--no-torch", action="store_true", help="minikd only")
    p.add_argument("--json", default=None, help="where to write the rows")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if not models or any(m not in ("teacher", "student") for m in models):
        p.error(f"--models: expected teacher and/or student, comma-separated; got {args.models!r}")
    try:
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        batches = []
    if not batches or any(b < 1 for b in batches):
        p.error(f"--batches: expected positive integers, comma-separated; got {args.batches!r}")
    if args.steps < 1:
        p.error(f"--steps: expected a positive integer; got {args.steps}")
    if not (args.device == "cpu" or args.device == "cuda" or (args.device.startswith("cuda:")
                                                                and args.device[5:].isdigit())):
        p.error(f"--device: expected cuda, cuda:N or cpu; got {args.device!r}")
    for option, values in (("--models", models), ("--batches", batches)):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            p.error(f"{option}: {twice[0]} is given twice (it would be measured twice)")
    if args.json:   # written at the end: refuse now a path that cannot be written
        check_json_path(p, args.json)
    args.models, args.batches = models, batches
    return args


def timings(step, sync, steps):
    """(median wall s, median host s) of ``step``: host stops when the call returns, wall after ``sync``."""
    for _ in range(WARMUP):
        step()
    sync()
    wall, host = [], []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
        host.append(t1 - t0)
        wall.append(t2 - t0)
    return statistics.median(wall), statistics.median(host)


def kernel_stats(step, sync, steps):
    """(kernels per step, GPU-busy seconds per step, the 6 costliest kernels as (name, launches per
    step, seconds per step)), from PyTorch's profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        sync()
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    if not kernels:
        raise RuntimeError("the profiler recorded no CUDA kernel")
    busy_us = sum(e.time_range.elapsed_us() for e in kernels)
    by_name = {}  # name -> [launches, µs]
    for e in kernels:
        entry = by_name.setdefault(e.name, [0, 0.0])
        entry[0] += 1
        entry[1] += e.time_range.elapsed_us()
    top = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:6]
    return (len(kernels) / steps, busy_us / steps / 1e6,
            [(n[:50], c / steps, us / steps / 1e6) for n, (c, us) in top])


def add_kernel_stats(row, step, sync, steps):
    """``row`` with the step's kernels, GPU-busy time and costliest kernels, or why they are missing."""
    try:
        row["kernels"], row["gpu_busy_s"], row["top"] = kernel_stats(step, sync, steps)
    except Exception as e:  # noqa: BLE001 - reported in the row
        row["kernels_error"] = f"{type(e).__name__}: {e}"
    return row


def count_ops(step):
    """How many ``Function.apply`` calls (autograd ops) one minikd step makes."""
    from minikd import function

    calls = [0]
    original = function.Function.apply.__func__

    def counting(cls, *a, **k):
        calls[0] += 1
        return original(cls, *a, **k)

    function.Function.apply = classmethod(counting)
    try:
        step()
    finally:
        function.Function.apply = classmethod(original)
    return calls[0]


def first_sync(step, device):
    """Where the step first waits for the GPU (file:line in minikd), or "none"."""
    if device == "cpu":
        return "n/a on the CPU"
    try:
        import cupyx

        allow = cupyx.allow_synchronize
        synchronized = cupyx.DeviceSynchronized
    except (ImportError, AttributeError) as e:
        return f"not checked: {type(e).__name__}: {e}"
    try:
        with allow(False):
            step()
    except synchronized as e:  # only the wait; any other error is a bug, and propagates
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "minikd" in f.filename]
        where = f"{os.path.relpath(frames[-1].filename)}:{frames[-1].lineno} ({frames[-1].name})" if frames else "?"
        return f"{type(e).__name__} at {where}"
    return "none"


def torch_cuda(device):
    try:
        import torch
    except ImportError:
        return None
    return torch if device != "cpu" and torch.cuda.is_available() else None


def main(argv=None):
    args = parse_args(argv)
    import minikd as mk
    from minikd import backend
    from minikd import kernels as K
    from minikd.models import StudentModel, TeacherModel

    torch = None if args.no_torch else torch_cuda(args.device)
    if args.device != "cpu":
        try:
            backend.xp_for(args.device)
        except RuntimeError as e:
            sys.exit(f"gpu_breakdown: --device {args.device}: {e}")
    sync = lambda: backend.synchronize(args.device)  # noqa: E731
    # minikd's two code paths: its GPU kernels (numba.cuda) where usable, and the plain xp references
    if args.device == "cpu":
        paths = ["numba"]
    else:
        print(f"numba.cuda kernels: {K.cuda_kernels_status()}")
        paths = ["numba", "numpy"] if K.cuda_kernels_usable() else ["numpy"]
    makers = {"teacher": TeacherModel, "student": StudentModel}
    if torch is not None:
        _, tmodels = torch_models()
        cuda = f"cuda:{int(args.device.partition(':')[2] or 0)}"
        tsync = lambda: torch.cuda.synchronize(cuda)  # noqa: E731
    rows = []
    for name in args.models:
        for batch in args.batches:
            for path in paths:
                mk.manual_seed(0)
                with backend.on(args.device), K.use_backend(path):
                    step = minikd_train_step(makers[name]().to(args.device), batch, args.device)
                    wall, host = timings(step, sync, args.steps)
                    row = {"framework": PATH_NAMES[path], "model": name, "batch": batch, "wall_s": wall,
                           "host_s": host, "ops": count_ops(step), "first_sync": first_sync(step, args.device)}
                    if torch is not None:
                        add_kernel_stats(row, step, sync, args.steps)
                rows.append(row)
            if torch is not None:
                torch.manual_seed(0)
                tstep = torch_train_step(torch, tmodels[name]().to(cuda), batch, cuda)
                wall, host = timings(tstep, tsync, args.steps)
                rows.append(add_kernel_stats({"framework": "torch", "model": name, "batch": batch, "wall_s": wall,
                                              "host_s": host}, tstep, tsync, args.steps))
    print_table(rows, args.device, torch is not None)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"device": args.device, "rows": rows}, f, indent=1)
        os.replace(tmp, args.json)  # atomic: never half a file
    return rows


def print_table(rows, device, profiled):
    print(f"one training step (forward, cross-entropy, backward, Adam) on {device}, median of the timed steps")
    print("| framework | model | batch | wall ms | host ms | GPU busy ms | busy / wall | kernels | ops "
          "| host µs / op | first host sync |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        busy = r.get("gpu_busy_s")
        ops = r.get("ops")
        print(f"| {r['framework']} | {r['model']} | {r['batch']} | {1e3 * r['wall_s']:.2f} | {1e3 * r['host_s']:.2f} | "
              + (f"{1e3 * busy:.2f} | {busy / r['wall_s']:.0%} | {r['kernels']:.0f} | " if busy is not None
                 else "not measured | - | - | ")
              + (f"{ops} | {1e6 * r['host_s'] / ops:.0f} | {r['first_sync']} |" if ops else "- | - | - |"))
    for r in rows:
        if "top" in r:
            tops = "; ".join(f"{n} ×{c:.0f} {1e3 * s:.3f} ms" for n, c, s in r["top"])
            print(f"costliest kernels per step, {r['framework']} {r['model']} b{r['batch']}: {tops}")
        if "kernels_error" in r:
            print(f"kernels of {r['framework']} {r['model']} b{r['batch']} not measured: {r['kernels_error']}")
    if not profiled:
        print("GPU busy and kernels: not measured (needs PyTorch with CUDA for its profiler)")


if __name__ == "__main__":
    main()
