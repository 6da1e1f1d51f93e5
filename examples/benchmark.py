"""Speed of minikd against PyTorch on the lecture's teacher and student, measured in one run.

    python examples/benchmark.py [--steps 30] [--threads 2] [--json benchmark.json]

For each model: training throughput (forward + backward + Adam step, images/s) at batch
64 and 128, inference throughput at batch 1 and 1000, peak resident memory of a training
run (each framework in a fresh child process), and the FLOP rate achieved — training
≈ 3 × the forward FLOPs (2 × MACs, from ``minikd.profile``) — against NumPy's float32
matmul rate measured in the same run, the practical ceiling of this CPU. If PyTorch is
installed, the same models run in the same process with the same number of threads and
the minikd/PyTorch ratios are printed; otherwise those columns say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

import minikd as mk
from minikd import functional as F
from minikd import optim
from minikd.models import StudentModel, TeacherModel
from minikd.profile import platform_info, summary

MODELS = {"teacher": TeacherModel, "student": StudentModel}
TRAIN_BATCHES, INFER_BATCHES = (64, 128), (1, 1000)


def median_time(fn, steps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def matmul_gflops(n=1024, steps=10):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    return 2 * n ** 3 / median_time(lambda: a @ a, steps) / 1e9


# --------------------------------------------------------------------------- minikd

def minikd_train_step(model, batch):
    rng = np.random.default_rng(0)
    x = mk.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = mk.tensor(rng.integers(0, 10, batch))
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def minikd_infer(model, batch):
    x = mk.tensor(np.random.default_rng(0).standard_normal((batch, 1, 28, 28)).astype(np.float32))
    model.eval()

    def run():
        with mk.no_grad():
            model(x)
    return run


# --------------------------------------------------------------------------- PyTorch (optional peer)

def torch_models():
    import torch
    from torch import nn as tnn
    from torch.nn import functional as tF

    class Net(tnn.Module):
        def __init__(self, c1, c2, hidden):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, c1, 3, padding=1)
            self.conv2 = tnn.Conv2d(c1, c2, 3, padding=1)
            self.fc1 = tnn.Linear(c2 * 49, hidden)
            self.fc2 = tnn.Linear(hidden, 10)

        def forward(self, x):
            x = tF.relu(tF.max_pool2d(self.conv1(x), 2))
            x = tF.relu(tF.max_pool2d(self.conv2(x), 2))
            return self.fc2(tF.relu(self.fc1(x.flatten(1))))

    return torch, {"teacher": lambda: Net(32, 64, 128), "student": lambda: Net(8, 16, 32)}


def torch_train_step(torch, model, batch):
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_infer(torch, model, batch):
    x = torch.randn(batch, 1, 28, 28)
    model.eval()

    def run():
        with torch.no_grad():
            model(x)
    return run


# --------------------------------------------------------------------------- peak memory (child processes)

def peak_rss_child(framework, model, batch, steps):
    """Run ``steps`` training steps in a fresh interpreter; return its peak RSS in MiB."""
    out = subprocess.run([sys.executable, __file__, "--rss-worker", framework, model, str(batch), str(steps)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rss_worker(framework, model, batch, steps):
    if framework == "minikd":
        step = minikd_train_step(MODELS[model](), batch)
    else:
        torch, makers = torch_models()
        step = torch_train_step(torch, makers[model](), batch)
    for _ in range(steps):
        step()
    print(peak_rss_mib())


def peak_rss_mib():
    """This process's peak resident memory. VmHWM (Linux) counts this program alone; ru_maxrss
    would also carry the parent's peak, which a forked child inherits."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement (median reported)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default="benchmark.json")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--rss-worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_worker:
        framework, model, batch, steps = args.rss_worker
        return rss_worker(framework, model, int(batch), int(steps))

    torch = makers = None
    if not args.no_torch:
        try:
            torch, makers = torch_models()
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    ceiling = matmul_gflops()
    results = {"platform": platform_info("cpu"), "threads": args.threads, "torch": torch.__version__ if torch else None,
               "numpy_matmul_gflops": ceiling, "python": platform.python_version(), "rows": []}

    for name, make in MODELS.items():
        fwd_flops = summary(make(), (1, 28, 28), "flops").total_flops  # 2 × MACs per image
        for kind, batches in (("train", TRAIN_BATCHES), ("infer", INFER_BATCHES)):
            for batch in batches:
                mk.manual_seed(0)
                model = make()
                fn = minikd_train_step(model, batch) if kind == "train" else minikd_infer(model, batch)
                steps = args.steps if batch > 1 else 10 * args.steps
                t_mk = median_time(fn, steps)
                t_pt = None
                if torch is not None:
                    tm = makers[name]()
                    fn_pt = torch_train_step(torch, tm, batch) if kind == "train" else torch_infer(torch, tm, batch)
                    t_pt = median_time(fn_pt, steps)
                work = fwd_flops * batch * (3 if kind == "train" else 1)
                row = {"model": name, "kind": kind, "batch": batch, "minikd_img_s": batch / t_mk,
                       "torch_img_s": batch / t_pt if t_pt else None,
                       "ratio": t_pt / t_mk if t_pt else None, "minikd_gflops": work / t_mk / 1e9}
                results["rows"].append(row)
                print(_fmt(row), flush=True)

    for name in MODELS:
        rss = {"minikd": peak_rss_child("minikd", name, 64, 20)}
        if torch is not None:
            rss["torch"] = peak_rss_child("torch", name, 64, 20)
        results[f"peak_rss_mib_{name}_train64"] = rss
        ratio = f"  ratio {rss['minikd'] / rss['torch']:.2f}" if "torch" in rss else ""
        print(f"peak RSS, {name} training at batch 64: minikd {rss['minikd']:.0f} MiB"
              + (f", PyTorch {rss['torch']:.0f} MiB" if "torch" in rss else ", PyTorch not installed") + ratio)
    print(f"NumPy float32 matmul 1024³: {ceiling:.0f} GFLOP/s (this CPU's practical ceiling); threads {args.threads}")
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, args.json)
    print(f"wrote {args.json}")


def _fmt(row):
    pt = f"{row['torch_img_s']:>9,.0f}" if row["torch_img_s"] else "  no torch"
    ratio = f"{row['ratio']:.2f}x" if row["ratio"] else "-"
    return (f"{row['model']:8s} {row['kind']:5s} batch {row['batch']:>4}: minikd {row['minikd_img_s']:>9,.0f} img/s"
            f"  PyTorch {pt} img/s  minikd/PyTorch {ratio:>6}  ({row['minikd_gflops']:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
