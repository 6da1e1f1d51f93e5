"""Speed of minikd against PyTorch on the lecture's teacher and student, measured in one run.

    python examples/benchmark.py [--steps 30] [--threads 2] [--repeats 1] [--models teacher,student]
                                 [--device cpu|cuda|cuda:N] [--no-torch] [--json runs/benchmark.json]

For each model: training throughput (forward + backward + Adam step, images/s) at batch
64 and 128, inference throughput at batch 1 and 1000, peak resident memory of a training
run, and the FLOP rate achieved — training ≈ 3 × the forward FLOPs (2 × MACs, from
``minikd.profile``) — against NumPy's float32 matmul rate on 1024³, the practical ceiling
of this CPU. Each figure is the median of ``--steps`` timed steps (10 × as many at batch 1)
after 3 warm-up steps.

Each framework runs in its own fresh child interpreter, one after another, never two at
once: one worker per (framework, model) times all of that model's rows and prints them as
one JSON line. (PyTorch imported into minikd's process was measured to slow minikd by about
20 %: the two thread pools compete for the cores.) Every worker gets the same ``--threads``
through OMP/OpenBLAS/MKL/NUMBA_NUM_THREADS, set before NumPy or torch is imported, and
``torch.set_num_threads``. With ``--repeats R`` the minikd and PyTorch workers alternate R
times and each row reports the median, which cuts drift on a shared machine.

The very first minikd training step (Numba compiling its kernels, or loading them from the
on-disk cache) is timed apart from the steady state and reported as ``first_step_s``. Peak
RSS (``VmHWM``) comes from separate workers that only run 20 training steps at batch 64 on
the CPU. If PyTorch is not installed, or ``--no-torch`` is given, its columns say so.

``--device cuda`` (or ``cuda:N``) times minikd (through CuPy) and PyTorch on the same GPU
instead: training at batch 64, 128 and 1024, inference at batch 1000, each step's clock read
after waiting for the GPU's queued work (``minikd.backend.synchronize``,
``torch.cuda.synchronize``). The ceiling is then CuPy's float32 matmul rate on 4096³; the peak
RSS workers (host memory of CPU training) are not run. PyTorch's columns say so if its build
has no CUDA. Only ``cpu``, ``cuda`` and ``cuda:N`` are accepted: the workers are fresh
interpreters, where no other device is registered.

Every option is checked before any worker starts (a bad one is a one-line error, exit status 2).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# Only the standard library is imported at module level: a worker must set the thread
# variables below before NumPy, Numba or torch is first imported, and the parent process
# never imports torch (nor minikd) at all.

MODEL_NAMES = ("teacher", "student")
FRAMEWORKS = ("minikd", "torch")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
WARMUP = 3
DEFAULT_JSON = "runs/benchmark.json"  # --json: runs/, where every example writes (ignored by git)
RSS_BATCH, RSS_STEPS = 64, 20
# (training batches, inference batches) when --train-batches / --infer-batches are not given
BATCHES = {"cpu": ([64, 128], [1, 1000]), "cuda": ([64, 128, 1024], [1000])}


def median_time(fn, steps, sync=lambda: None, warmup=WARMUP):
    """(seconds of the first warm-up call, median seconds of ``steps`` timed calls).

    ``sync`` waits for queued device work (a no-op on the CPU) before each clock read.
    """
    first = None
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        sync()
        first = time.perf_counter() - t if first is None else first
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def row_plan(args):
    """The rows every worker measures, in order: (kind, batch, timed steps)."""
    plan = [("train", b, args.steps) for b in args.train_batches]
    plan += [("infer", b, args.steps if b > 1 else 10 * args.steps) for b in args.infer_batches]
    return plan


# --------------------------------------------------------------------------- minikd worker

def minikd_train_step(model, batch, device="cpu"):
    import numpy as np

    import minikd as mk
    from minikd import functional as F
    from minikd import optim

    rng = np.random.default_rng(0)
    x = mk.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), device=device)
    y = mk.tensor(rng.integers(0, 10, batch), device=device)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def minikd_infer(model, batch, device="cpu"):
    import numpy as np

    import minikd as mk

    x = mk.tensor(np.random.default_rng(0).standard_normal((batch, 1, 28, 28)).astype(np.float32), device=device)
    model.eval()

    def run():
        with mk.no_grad():
            model(x)
    return run


def matmul_gflops(n=1024, steps=10, device="cpu"):
    """The float32 n³ matmul rate: NumPy's on the CPU (the practical ceiling of this CPU with these
    threads), CuPy's on a GPU (n = 4096 there: a GPU needs a large product to be busy)."""
    import numpy as np

    if device == "cpu":
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        return 2 * n ** 3 / median_time(lambda: a @ a, steps)[1] / 1e9
    from minikd import backend

    n = 4096
    xp = backend.xp_for(device)
    with backend.on(device):
        a = xp.asarray(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
        return 2 * n ** 3 / median_time(lambda: a @ a, steps, lambda: backend.synchronize(device))[1] / 1e9


def minikd_worker(args):
    import contextlib

    import minikd as mk
    from minikd import backend
    from minikd.models import StudentModel, TeacherModel
    from minikd.profile import platform_info, summary

    sync = lambda: None  # noqa: E731
    where = contextlib.nullcontext()
    if args.device != "cpu":
        try:
            backend.xp_for(args.device)  # CuPy installed, the GPU there: else the backend's message
        except RuntimeError as e:
            return {"error": f"--device {args.device}: {e}"}
        sync = lambda: backend.synchronize(args.device)  # noqa: E731
        where = backend.on(args.device)  # CuPy's current device: the one the arrays are on
    make = {"teacher": TeacherModel, "student": StudentModel}[args.model]

    rows, first_step_s = [], None
    with where:
        for kind, batch, steps in row_plan(args):
            mk.manual_seed(0)
            model = make().to(args.device)
            fn = (minikd_train_step if kind == "train" else minikd_infer)(model, batch, args.device)
            first, median = median_time(fn, steps, sync)
            if first_step_s is None:  # the process's very first step: Numba (or CuPy) compile or cache load
                first_step_s = first
            rows.append({"kind": kind, "batch": batch, "seconds": median})
        ceiling = matmul_gflops(device=args.device)
    # Counted after the timed rows: summary() runs a forward pass, which would compile the
    # kernels before the first step is timed.
    fwd_flops = summary(make(), (1, 28, 28), "flops").total_flops  # 2 × MACs per image
    return {"rows": rows, "first_step_s": first_step_s, "forward_flops": fwd_flops,
            "matmul_gflops": ceiling, "platform": platform_info(args.device),
            "runtime": mk.runtime.settings()}


# --------------------------------------------------------------------------- PyTorch worker (optional peer)

def torch_models():
    import torch
    from torch import nn as tnn
    from torch.nn import functional as tF

    class Net(tnn.Module):
        """The same layers as minikd.models' teacher and student."""

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

    return torch, {"teacher": lambda: Net(32, 64, 128), "student": lambda: Net(16, 32, 64)}


def torch_train_step(torch, model, batch, device="cpu"):
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_infer(torch, model, batch, device="cpu"):
    x = torch.randn(batch, 1, 28, 28, device=device)
    model.eval()

    def run():
        with torch.no_grad():
            model(x)
    return run


def torch_worker(args):
    torch, makers = torch_models()
    torch.set_num_threads(args.threads)
    sync = lambda: None  # noqa: E731
    if args.device != "cpu":
        if not torch.cuda.is_available():
            return {"unavailable": "no CUDA in this PyTorch"}
        index = int(args.device.partition(":")[2] or torch.cuda.current_device())
        if index >= torch.cuda.device_count():
            return {"unavailable": f"PyTorch sees no {args.device}"}
        torch.cuda.set_device(index)
        sync = lambda: torch.cuda.synchronize(index)  # noqa: E731
    rows = []
    for kind, batch, steps in row_plan(args):
        torch.manual_seed(0)
        model = makers[args.model]().to(args.device)
        fn = (torch_train_step if kind == "train" else torch_infer)(torch, model, batch, args.device)
        rows.append({"kind": kind, "batch": batch, "seconds": median_time(fn, steps, sync)[1]})
    return {"rows": rows, "version": torch.__version__}


# --------------------------------------------------------------------------- peak memory worker

def rss_worker(args):
    """Only ``RSS_STEPS`` CPU training steps at batch ``RSS_BATCH``, then this process's peak RSS."""
    if args.worker == "minikd":
        from minikd.models import StudentModel, TeacherModel

        step = minikd_train_step({"teacher": TeacherModel, "student": StudentModel}[args.model](), RSS_BATCH)
    else:
        torch, makers = torch_models()
        torch.set_num_threads(args.threads)
        step = torch_train_step(torch, makers[args.model](), RSS_BATCH)
    for _ in range(RSS_STEPS):
        step()
    return {"peak_rss_mib": peak_rss_mib()}


def peak_rss_mib():
    """This process's peak resident memory. VmHWM (Linux) counts this program alone; ru_maxrss
    would also carry the parent's peak, which a forked child inherits."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_main(args):
    # Before anything imports NumPy, Numba or torch (the parent also sets them in our env).
    os.environ.update({var: str(args.threads) for var in THREAD_VARS})
    if args.rss:
        result = rss_worker(args)
    else:
        result = (minikd_worker if args.worker == "minikd" else torch_worker)(args)
    print(json.dumps(result), flush=True)  # the one line the parent reads


# --------------------------------------------------------------------------- parent

def run_worker(args, framework, model, rss=False):
    """Run one worker in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--models", model,
           "--threads", str(args.threads), "--steps", str(args.steps), "--device", args.device,
           "--train-batches", ",".join(map(str, args.train_batches)),
           "--infer-batches", ",".join(map(str, args.infer_batches))] + (["--rss"] if rss else [])
    env = dict(os.environ, **{var: str(args.threads) for var in THREAD_VARS})
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        sys.exit(f"benchmark: the {framework} worker for {model} failed (exit code {out.returncode})")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in result:
        sys.exit(f"benchmark: {result['error']}")
    return result


def torch_status(args):
    """None if PyTorch will run, else the text its columns show. Never imports torch here."""
    if args.no_torch:
        return "not run (--no-torch)"
    if importlib.util.find_spec("torch") is None:
        return "not installed"
    return None


def int_list(text):
    """``64,128`` → [64, 128]: comma-separated batch sizes, each a positive integer, at least one."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers; got {text!r}")
    return values


def check_json_path(p, path: str, option: str = "--json") -> None:
    """A results file written at the end of a run, refused now if it cannot be: a folder, or a folder that
    cannot hold a file (tried with a temporary file: ``os.access`` may say yes where nothing can be made,
    as for root on /proc). Shared with gpu_breakdown.py."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        p.error(f"{option} {path}: is a folder; give the results file's name")
    folder = os.path.dirname(target)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        p.error(f"{option} {path}: the folder {folder} cannot be written ({e.strerror or e})")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement (median reported)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    p.add_argument("--repeats", type=int, default=1, help="alternate the workers R times; report medians")
    p.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated: teacher,student")
    p.add_argument("--device", default="cpu",
                   help="cpu (default), cuda or cuda:N: minikd (through CuPy) and PyTorch on that GPU")
    p.add_argument("--json", default=DEFAULT_JSON,
                   help=f"where the results are written (default {DEFAULT_JSON}, its folder made if missing; "
                        "another path's folder must exist)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    # Hidden: smaller batches for the test suite, and the worker entry point.
    p.add_argument("--train-batches", type=int_list, default=None, help=argparse.SUPPRESS)
    p.add_argument("--infer-batches", type=int_list, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    p.add_argument("--rss", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(args.models) - set(MODEL_NAMES))
    if unknown or not args.models:
        p.error(f"--models: expected a comma-separated subset of {','.join(MODEL_NAMES)}; got {unknown or 'none'}")
    twice = sorted({m for m in args.models if args.models.count(m) > 1})
    if twice:
        p.error(f"--models: {twice[0]} is given twice (each worker would run twice)")
    for option in ("steps", "repeats", "threads"):  # checked one by one: the error names the one at fault
        if getattr(args, option) < 1:
            p.error(f"--{option}: must be a positive integer; got {getattr(args, option)}")
    kind = check_device(p, args.device)
    train, infer = BATCHES[kind]
    args.train_batches = args.train_batches or train
    args.infer_batches = args.infer_batches or infer
    if not args.worker:  # the results file is written at the end: refuse a path that cannot be written now
        if args.json == DEFAULT_JSON:
            os.makedirs(os.path.dirname(DEFAULT_JSON), exist_ok=True)
        check_json_path(p, args.json)
    args.model = args.models[0]  # a worker measures exactly one model
    return args


def check_device(parser, device) -> str:
    """``"cpu"`` or ``"cuda"``, the kind of ``--device`` (``cpu``, ``cuda`` or ``cuda:N``); for a GPU,
    CuPy must be installed (looked up, not imported: the parent imports neither minikd nor torch)."""
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if importlib.util.find_spec("cupy") is None:
            parser.error(f"--device {device}: minikd needs CuPy on a GPU, which is not installed: "
                         'pip install -e ".[gpu-cuda12]" (CUDA 12) or ".[gpu-cuda13]" (CUDA 13)')
        return "cuda"
    parser.error(f"--device: expected cpu, cuda or cuda:N; got {device!r} (each framework runs in a fresh "
                 "interpreter, where no other device is registered)")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)

    no_torch = torch_status(args)
    frameworks = ["minikd"] + ([] if no_torch else ["torch"])
    torch_text = no_torch  # may become "no CUDA in this PyTorch" below
    # runs[(framework, model)] = one worker result per repeat. Workers run one at a time,
    # alternating frameworks within each repeat.
    runs = {}
    for r in range(args.repeats):
        for model in args.models:
            for fw in list(frameworks):
                print(f"[{r + 1}/{args.repeats}] {fw} {model} ...", file=sys.stderr, flush=True)
                result = run_worker(args, fw, model)
                if "unavailable" in result:
                    frameworks.remove(fw)
                    torch_text = result["unavailable"]
                    continue
                runs.setdefault((fw, model), []).append(result)

    mk_runs = [res for model in args.models for res in runs[("minikd", model)]]
    torch_runs = [res for model in args.models for res in runs.get(("torch", model), [])]
    ceiling = statistics.median(res["matmul_gflops"] for res in mk_runs)
    ceiling_key = "numpy_matmul_gflops" if args.device == "cpu" else "cupy_matmul_gflops"
    results = {"platform": mk_runs[0]["platform"], "device": args.device, "threads": args.threads,
               "steps": args.steps, "repeats": args.repeats,
               "torch": torch_runs[0]["version"] if torch_runs else None,
               ceiling_key: ceiling, "python": platform.python_version(),
               # the first repeat's: the one that may have compiled rather than loaded the cache
               "first_step_s": {model: runs[("minikd", model)][0]["first_step_s"] for model in args.models},
               "minikd_runtime": mk_runs[0].get("runtime", {}), "rows": []}

    for model in args.models:
        mk_res, pt_res = runs[("minikd", model)], runs.get(("torch", model), [])
        fwd_flops = mk_res[0]["forward_flops"]
        for i, row in enumerate(mk_res[0]["rows"]):
            kind, batch = row["kind"], row["batch"]
            mk_ips = [batch / res["rows"][i]["seconds"] for res in mk_res]
            pt_ips = [batch / res["rows"][i]["seconds"] for res in pt_res]
            mk_med = statistics.median(mk_ips)
            pt_med = statistics.median(pt_ips) if pt_ips else None
            work = fwd_flops * (3 if kind == "train" else 1)  # FLOPs per image
            results["rows"].append({
                "model": model, "kind": kind, "batch": batch, "minikd_img_s": mk_med, "torch_img_s": pt_med,
                "ratio": mk_med / pt_med if pt_med else None, "minikd_gflops": work * mk_med / 1e9,
                "minikd_img_s_runs": mk_ips, "torch_img_s_runs": pt_ips})

    # Peak memory: separate workers that do nothing but RSS_STEPS training steps on the CPU
    # (host memory of CPU training: not measured in a GPU run).
    if args.device == "cpu":
        print("peak RSS workers ...", file=sys.stderr, flush=True)
        for model in args.models:
            rss = {fw: run_worker(args, fw, model, rss=True)["peak_rss_mib"] for fw in ("minikd", "torch")
                   if fw == "minikd" or not no_torch}
            results[f"peak_rss_mib_{model}_train{RSS_BATCH}"] = rss

    print_report(results, args, torch_text)
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, args.json)  # atomic: a reader never sees half a file
    print(f"wrote {args.json}")


def print_report(results, args, torch_text):
    where = results["platform"].get("processor", "?")
    if "gpu" in results["platform"]:
        where = f"{results['platform']['gpu']} ({results['platform'].get('backend', 'cupy')}), host {where}"
    print(f"\n{where}, {args.device}, {args.threads} threads, "
          f"PyTorch {results['torch'] or torch_text}, median of {args.steps} steps"
          + (f", median of {args.repeats} alternating runs" if args.repeats > 1 else "") + "\n")
    print("| model | kind | batch | minikd img/s | PyTorch img/s | minikd/PyTorch | minikd GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in results["rows"]:
        pt = f"{row['torch_img_s']:,.0f}" if row["torch_img_s"] else torch_text
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] else "-"
        print(f"| {row['model']} | {row['kind']} | {row['batch']} | {row['minikd_img_s']:,.0f} | {pt} | {ratio} "
              f"| {row['minikd_gflops']:.1f} |")
    print()
    what = "Numba compile or cache load" if args.device == "cpu" else "CuPy kernel compile or cache load"
    for model, seconds in results["first_step_s"].items():
        print(f"minikd first step, {model} ({what}): {seconds:.2f} s")
    for model in args.models:
        rss = results.get(f"peak_rss_mib_{model}_train{RSS_BATCH}")
        if rss is None:  # a GPU run
            continue
        line = f"peak RSS, {model} training at batch {RSS_BATCH}: minikd {rss['minikd']:.0f} MiB"
        if "torch" in rss:
            line += f", PyTorch {rss['torch']:.0f} MiB  ratio {rss['minikd'] / rss['torch']:.2f}"
        else:
            line += f", PyTorch {torch_text}"
        print(line)
    if args.device == "cpu":
        print(f"NumPy float32 matmul 1024³: {results['numpy_matmul_gflops']:.0f} GFLOP/s "
              f"(this CPU's practical ceiling, {args.threads} threads, in a minikd worker)")
    else:
        print(f"CuPy float32 matmul 4096³: {results['cupy_matmul_gflops']:,.0f} GFLOP/s (the GPU's practical "
              f"ceiling for these kernels, in a minikd worker); peak RSS: measured by the CPU benchmark only")
    settings = results.get("minikd_runtime", {})
    if settings:  # minikd/runtime.py: every process setting minikd made in its workers
        print("minikd process settings: " + "; ".join(f"{k}: {'on' if v is True else 'off' if v is False else v}"
                                                       for k, v in settings.items()))


def cli():
    """``main()``, ending quietly (status 1, no traceback) when the reader of stdout goes away (``| head``)."""
    try:
        main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    cli()
