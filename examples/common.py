"""Small helpers the MNIST examples share: their command lines, the data, evaluation, the
one training loop (:func:`fit`) with its losses, atomic writes.

The examples put ``examples/`` first on ``sys.path`` when run as scripts, so they import this
module as ``common``.

**Command lines.** Every example checks all its arguments before it does any work (before
loading data, before training): a bad one ends the program through ``parser.error`` — one
line naming the option, exit status 2, never a traceback — with the sentence of the shared
validators in :mod:`minikd.checks`. :func:`run_cli` runs an example's ``main`` so that a
closed pipe (``... | head``) ends it quietly.

**Devices.** ``--device`` (:data:`DEVICE_HELP`, checked by :func:`device_option`) says where the
models train and run. The data stay on the host as NumPy arrays; each minibatch goes to the
device once, when a loader makes it (``DataLoader(..., device=...)``, :class:`IndexedLoader`).
Models are moved with ``model.to(device)`` before their optimizer is built; :func:`evaluate`,
:func:`train_ce` and the loaders of these helpers follow the model (:func:`model_device`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

import minikd as mk
from minikd import backend, kd, optim
from minikd import functional as F
from minikd.checks import check_int, check_number
from minikd.data import DataLoader, load_mnist
from minikd.data.idx import IDXError
from minikd.data.mnist import FILES, find_data_dir, missing_files, mnist_dir
from minikd.random import get_rng

# --------------------------------------------------------------------------- command lines


DATA_DIR_HELP = ("a folder that holds the four MNIST .gz files (an error if it lacks any); without it: "
                 "$MINIKD_DATA, else ~/.cache/minikd/mnist, downloaded there if missing")


DEVICE_HELP = ("where the models train and run: cpu (the default), cuda or cuda:N (an NVIDIA GPU through CuPy: "
               "the gpu-cuda12 or gpu-cuda13 extra); the data stay on the host and go to the device a minibatch "
               "at a time")


def device_option(device, op: str = "--device") -> str:
    """The canonical name of a ``--device`` value (``"cuda"`` → ``"cuda:0"``): ``cpu``, ``cuda``,
    ``cuda:N`` or a registered device (:func:`minikd.backend.check_device`). A CUDA device must
    exist now — CuPy installed, the GPU there — so that a run that cannot use it stops before
    any work, with the backend's message (which names the extra to install). ValueError otherwise."""
    try:
        name = backend.check_device(device)
        if name.startswith("cuda"):
            backend.xp_for(name)  # raises when CuPy or the GPU is missing
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"{op}: {e}") from None
    return name


def check(parser: argparse.ArgumentParser, validator, *args, **kwargs):
    """``validator(*args, **kwargs)`` (one of :mod:`minikd.checks`, with the option as its ``op``);
    its TypeError/ValueError ends the program through ``parser.error`` (exit status 2)."""
    try:
        return validator(*args, **kwargs)
    except (TypeError, ValueError) as e:
        parser.error(" ".join(str(e).split()))


def check_training_options(parser, args, default_epochs: int = 5) -> None:
    """The options every training example has: --epochs, --batch-size, --lr, --seed. Without
    --epochs: ``default_epochs``, or 1 with --quick (an --epochs given is kept, --quick or not)."""
    ok = partial(check, parser)
    quick_defaults(args, epochs=(default_epochs, 1))
    ok(check_int, args.epochs, "--epochs", "the number of epochs", low=1)
    ok(check_int, args.batch_size, "--batch-size", "the batch size", low=1)
    ok(check_number, args.lr, "--lr", "the learning rate", low=0, low_open=True)
    ok(check_int, args.seed, "--seed", "the seed", low=0)


def sample_std(values) -> float:
    """The sample standard deviation over seeds (ddof 1, as the tables report it); 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def parse_int_list(parser, text: str, option: str, low: int = 0, what: str = "integers") -> list[int]:
    """``0,1,2`` → [0, 1, 2]: comma-separated integers ≥ ``low``, at least one, none twice."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        parser.error(f"{option}: expected comma-separated {what} ≥ {low} (e.g. 0,1,2); got {text!r}")
    bad = [v for v in values if v < low]
    if bad:
        parser.error(f"{option}: every value must be ≥ {low}; got {bad[0]} in {text!r}")
    return refuse_repeats(parser, values, option, text)


def refuse_repeats(parser, values: list, option: str, text: str) -> list:
    """``values`` of a comma-separated option, none of them twice (the run would repeat it)."""
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        parser.error(f"{option}: {twice[0]} is given twice in {text!r}")
    return values


def parse_name_list(parser, text: str, option: str, choices, what: str = "name") -> list[str]:
    """``teacher,student`` → ["teacher", "student"]: comma-separated names from ``choices``, at least
    one, none twice (it would be run twice)."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        parser.error(f"{option}: no {what} given; choose from {', '.join(choices)}")
    unknown = [v for v in names if v not in choices]
    if unknown:
        parser.error(f"{option}: unknown {unknown[0]!r} in {text!r}; choose from {', '.join(choices)}")
    return refuse_repeats(parser, names, option, text)


def quick_defaults(args, **defaults) -> None:
    """Each option ``name=(full, quick)`` left out (None) takes its full run's default, or its --quick
    one: a value given is kept, --quick or not (as :func:`check_training_options` keeps --epochs)."""
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if getattr(args, "quick", False) else full)


def given_options(parser, argv, args) -> set[str]:
    """The options (as their ``dest`` names) on the command line ``argv``, whatever their values — a
    default typed out included: ``argv`` parsed again into a namespace that already holds every name,
    where argparse sets no default. ``argv`` None: ``sys.argv[1:]``, as ``parse_args`` reads it."""
    unset = object()
    again = parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(vars(args), unset)))
    return {name for name, value in vars(again).items() if value is not unset}


def read_json(parser, path, label: str, what: str):
    """The JSON object or list in file ``path``, for an option that names a file: one that is missing, a
    folder, or not JSON is a parser error, ``"{label} {path}: not a readable {what} (...)"``."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        parser.error(f"{label} {path}: not a readable {what} ({type(e).__name__}: {e})")


def refuse_unused(parser, given: set[str], unused: dict) -> None:
    """Options the chosen mode would ignore, refused: ``unused`` maps an option's ``dest`` name to the
    error that names it and says why; the first of them in ``given`` (:func:`given_options`) ends the
    program — never an option silently ignored."""
    for name, error in unused.items():
        if name in given:
            parser.error(error)


def check_data_dir(parser, data_dir, option: str = "--data-dir"):
    """A folder given with ``--data-dir`` must hold the four MNIST files: when it does not, that is an
    error naming what is missing — not a silent fall-back to ``$MINIKD_DATA`` or the cache."""
    if data_dir is None:
        return None
    folder = Path(data_dir)
    if not folder.is_dir():
        parser.error(f"{option} {data_dir}: no such folder (leave {option} out to use $MINIKD_DATA, "
                     "else ~/.cache/minikd/mnist, downloading the files there if they are missing)")
    missing = missing_files(folder)
    if missing:
        lacks = "all four" if len(missing) == 4 else f"{len(missing)} of the four"
        parser.error(f"{option} {data_dir}: the folder lacks {lacks} MNIST files: "
                     f"{', '.join(missing)}")
    return folder


def add_out_option(parser, default: str, what: str) -> None:
    """``--out``: the folder for ``what``; :func:`check_out` fills in ``default`` when it is not given."""
    parser.add_argument("--out", default=None, help=f"folder for {what} (default {default}; with --quick "
                                                    f"{default}_quick, so that a smoke run never replaces a full "
                                                    f"run's files)")
    parser.out_default = default


def check_out(parser, args) -> None:
    """``--out`` as given, else the parser's default (:func:`add_out_option`) — with ``_quick``
    appended for a ``--quick`` run: a smoke run's models and results must never replace a full
    run's, which later commands read (a 1-epoch teacher under runs/data_free/ was loaded as the
    real one). Then :func:`check_writable_dir`."""
    if args.out is None:
        args.out = parser.out_default + ("_quick" if getattr(args, "quick", False) else "")
    check_writable_dir(parser, args.out, "--out")


def check_writable_dir(parser, path, option: str) -> None:
    """``path`` is a folder a file can be written in, or can be made into one: tried by making it
    and a temporary file in it — asking ``os.access`` is not enough (root may "write" to /proc,
    where nothing can be made). The folders made for the try are removed: a refused command leaves
    nothing behind."""
    given, path = path, Path(path).absolute()
    if path.exists() and not path.is_dir():
        parser.error(f"{option} {given}: exists and is not a folder")
    made = [p for p in (path, *path.parents) if not p.exists()]   # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        parser.error(f"{option} {given}: cannot write there ({e.strerror or e})")
    finally:
        for folder in made:
            with suppress(OSError):
                folder.rmdir()


def save_checkpoint(model, path, **meta) -> None:
    """``model``'s weights and, under ``meta.<name>``, what rebuilds and describes it (its architecture,
    its settings): one ``.npz`` (:func:`minikd.save`, atomic, no pickle)."""
    state = dict(model.state_dict())
    state.update({f"meta.{k}": np.asarray(v) for k, v in meta.items()})
    mk.save(state, path)


def read_checkpoint(path) -> tuple[dict, dict]:
    """``(weights, meta)`` of a :func:`save_checkpoint` file; meta's values as Python scalars/strings.
    A plain :func:`minikd.save` of a state dict reads as ``(weights, {})``: every example loads a
    model through this (or :func:`load_weights`), as its option's check read it."""
    state = mk.load(path)
    meta = {k[5:]: state[k].item() if state[k].ndim == 0 else state[k].tolist() for k in state if k.startswith("meta.")}
    return {k: v for k, v in state.items() if not k.startswith("meta.")}, meta


def load_weights(model, path):
    """``model`` with the weights of checkpoint ``path`` (its ``meta.*`` entries aside: a file that
    :func:`save_checkpoint` wrote, with its architecture, loads as one without); returns ``model``."""
    model.load_state_dict(read_checkpoint(path)[0])
    return model


@contextmanager
def seeded_stream_kept():
    """Inside, models may be built to check an option (their initial weights are drawn) without
    shifting minikd's seeded random stream: the run after the checks draws what it would have."""
    state = get_rng().bit_generator.state
    try:
        yield
    finally:
        get_rng().bit_generator.state = state


def check_checkpoint(parser, path, option: str, model_cls, must_exist: bool, hint: str = "") -> None:
    """A checkpoint option: an existing file must load into ``model_cls`` (its ``meta.*`` entries, if any,
    aside: :func:`read_checkpoint`); a missing one is an error when ``must_exist`` (``hint`` says what to
    do), else its folder must be creatable (the example trains the model and saves it)."""
    path = Path(path)
    if not path.exists():
        if must_exist:
            parser.error(f"{option} {path}: no such file" + (f"; {hint}" if hint else ""))
        check_writable_dir(parser, path.parent, option)
        return
    if not path.is_file():
        parser.error(f"{option} {path}: is a folder, not a checkpoint file")
    try:
        weights = read_checkpoint(path)[0]
    except (OSError, ValueError, KeyError, TypeError) as e:     # damaged, truncated, or not a checkpoint at all
        parser.error(f"{option} {path}: not a readable checkpoint: {e}")
    try:
        with seeded_stream_kept():
            model_cls().load_state_dict(weights)
    except (ValueError, KeyError, TypeError) as e:
        lines = [" ".join(line.split()) for line in str(e).splitlines() if line.strip()]  # one line, "; " apart
        problems = " ".join(lines[:1] + ["; ".join(lines[1:])] if len(lines) > 1 else lines)
        hint = what_it_holds(weights, model_cls)
        parser.error(f"{option} {path}: not a {model_cls.__name__} checkpoint: {problems}{hint}")


KNOWN_MODELS = ("TeacherModel", "TeacherModelBN", "StudentModel", "LeNet5", "LeNet5BN", "LeNet5Half")


def what_it_holds(weights: dict, model_cls) -> str:
    """A hint for a checkpoint that does not load into ``model_cls``: the known model it does load into,
    or, for the same layers with smaller shapes, a compacted (structurally pruned) model; else ""."""
    from minikd import models
    from minikd.prune.pruning import MASK_BUFFERS
    for name in KNOWN_MODELS:
        cls = getattr(models, name)
        if cls is model_cls:
            continue
        try:
            with seeded_stream_kept():
                cls().load_state_dict(weights)
        except (ValueError, KeyError, TypeError):
            continue
        return f" (it holds a {name})"
    with seeded_stream_kept():
        own = model_cls().state_dict()
    extra = set(weights) - set(own)
    if set(own) <= set(weights) and all(k.rpartition(".")[2] in MASK_BUFFERS for k in extra) and all(
            np.ndim(weights[k]) == v.ndim and all(a <= b for a, b in zip(np.shape(weights[k]), v.shape))
            for k, v in own.items()):
        return (f" (the layers of a {model_cls.__name__} with fewer units: a structurally pruned, compacted model, "
                f"which this option does not take)")
    return ""


HANDS_ON_DIR = "runs/teacher_student"  # where mnist_teacher_student.py keeps the models the later examples read
HANDS_ON_HINT = "run python examples/mnist_teacher_student.py first (it saves its models in " + HANDS_ON_DIR + "/)"


def hands_on_model_option(parser, args, name: str, model_cls, file: str) -> None:
    """``--teacher`` / ``--student`` of an example that trains the model itself when it has none.
    A path given must exist and load into ``model_cls``. Without one, ``args.<name>`` becomes the
    hands-on's ``HANDS_ON_DIR/file``: loaded if it is there, else trained by the example and saved
    there by a full run only (:func:`keep_trained_model`) — a --quick model must never pass for the
    hands-on's."""
    option = f"--{name}"
    if getattr(args, name) is not None:
        check_checkpoint(parser, getattr(args, name), option, model_cls, must_exist=True)
        return
    setattr(args, name, f"{HANDS_ON_DIR}/{file}")
    check_checkpoint(parser, getattr(args, name), option, model_cls, must_exist=False)


def load_or_train(name: str, model_cls, path, x, y, args):
    """The model of ``--teacher`` / ``--student`` (:func:`hands_on_model_option`), in eval mode: read
    from ``path`` if the file is there, else a new ``model_cls`` (seeded with ``args.seed``) trained
    here by :func:`train_ce` on (x, y) for ``args.epochs`` and kept (:func:`keep_trained_model`)."""
    mk.manual_seed(args.seed)
    model = model_cls().to(args.device)  # before its optimizer is built (train_ce)
    if Path(path).is_file():
        load_weights(model, path)
        print(f"{name}: loaded {path}")
    else:
        print(f"{name}: {path} not found, training one ({args.epochs} epochs)")
        train_ce(model, x, y, args.epochs, args.batch_size, args.lr, args.seed, args.progress, name)
        keep_trained_model(model, path, args.quick)
    return model.eval()


def keep_trained_model(model, path, quick: bool) -> None:
    """Save a model an example had to train at the hands-on's ``path`` — unless it is a --quick smoke
    model, which is kept in memory only (the next full run must not load it as the real one)."""
    if quick:
        print(f"  (a --quick model: not saved to {path})")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    mk.save(model.state_dict(), path)
    print(f"  saved to {path}")


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run_cli(main) -> None:
    """Run ``main()``; when the reader of stdout goes away (``... | head``), end quietly.

    The usual remedy (Python's ``signal`` docs): point stdout at devnull so the interpreter's
    final flush cannot fail again, and exit with status 1 — no BrokenPipeError traceback. A run
    that diverged (:class:`TrainingDiverged`) ends the same way, with its one error line. An
    error exit (``SystemExit``) keeps its own status and message.
    """
    try:
        main()
        sys.stdout.flush()  # inside the try: a write that fails here fails now, not at shutdown
    except BrokenPipeError:
        _stdout_to_devnull()
        sys.exit(1)
    except TrainingDiverged as e:  # not a bug to debug: one line that says what happened, status 1
        sys.exit(f"error: {e}")
    except SystemExit:
        try:  # what is still buffered for a closed pipe must not turn the exit into a traceback
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_to_devnull()
        raise


def run_settings(args, drop=()) -> dict:
    """The options of a run, for its results.json: every argparse option but the progress flag and
    ``drop``, paths as text, and ``data_dir`` as the MNIST folder actually read — the option is None
    when ``$MINIKD_DATA`` or the cache supplied it (left as given if no folder holds the test files)."""
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("progress", *drop)}
    if "data_dir" in settings:
        try:
            settings["data_dir"] = str(find_data_dir(args.data_dir, FILES["test"]))
        except FileNotFoundError:
            pass
    return settings


def run_platform(args) -> dict:
    """What a run ran on, for its results.json beside :func:`run_settings`: the processor (name,
    family/model, AVX-512), cores, NumPy/Numba or CuPy versions, the thread variables, and the GPU
    on a ``--device cuda`` run (:func:`minikd.profile.platform_info`). The last bits of a trained
    network, and so a few test errors, can differ between machines and package versions."""
    return mk.profile.platform_info(getattr(args, "device", "cpu"))


def format_seconds(seconds: float) -> str:
    """A duration people read: ``8.4 s`` under a minute, else ``3.7 min (222 s)``."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"


# --------------------------------------------------------------------------- data

def read_mnist_split(split: str, data_dir=None, download: bool = True):
    """``(images, labels)`` of one split ("train" or "test") from ``data_dir`` (a folder, else
    ``$MINIKD_DATA``, else the cache, downloaded if missing and ``download``). Missing or damaged data
    (a truncated or garbled file) ends the program with one line naming the file (status 1): every
    example reads MNIST through this."""
    with data_errors_end_the_program():
        return load_mnist(split, data_dir, download=download)


@contextmanager
def data_errors_end_the_program():
    """Missing data (FileNotFoundError; DownloadError, whose message names the files and what to do) or a
    damaged file (IDXError, naming it) ends the program with that message on one line (status 1)."""
    try:
        yield
    except (FileNotFoundError, IDXError) as e:
        raise SystemExit(f"error: {' '.join(str(e).split())}") from None


def load_mnist_data(data_dir=None):
    """``(x_train, y_train, x_test, y_test)``, uint8 images and int64 labels, from the folder that
    holds the four files (``--data-dir``, else ``$MINIKD_DATA``, else the cache, downloaded if
    missing); prints which folder it read. Missing or damaged data ends the program as in
    :func:`read_mnist_split`."""
    with data_errors_end_the_program():
        folder = mnist_dir(data_dir)
    x_train, y_train = read_mnist_split("train", folder)
    x_test, y_test = read_mnist_split("test", folder)
    print(f"MNIST: read {folder} ({len(x_train):,} training and {len(x_test):,} test images)")
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------- training and evaluation


def model_device(model) -> str:
    """The device of ``model``'s parameters (``"cpu"`` for a model without any)."""
    return next((p.device for p in model.parameters()), "cpu")


def evaluate(model, x, y, batch_size: int = 1000) -> float:
    """Test accuracy in eval mode, without a graph, on the model's device (host arrays ``x``, ``y``
    go there a batch at a time); the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    correct = 0
    with mk.no_grad():
        for xb, yb in DataLoader(x, y, batch_size, device=model_device(model)):
            correct += int((model(xb).numpy().argmax(axis=1) == yb.numpy()).sum())
    model.train(was_training)
    return correct / len(y)


def ce_step(model, x, y):
    """The plain loss: cross-entropy with the labels. Returns ``(loss, logits)``, as every loss of :func:`fit`."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def make_kd_step(teacher, T: float, lam: float):
    """The lecture's distillation loss from a frozen ``teacher`` (in eval mode):
    L = (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s) (:func:`minikd.kd.kd_loss`)."""
    def step(student, x, y):
        logits = student(x)
        with mk.no_grad():          # the teacher is frozen: no graph, no gradient
            teacher_logits = teacher(x)
        return kd.kd_loss(logits, teacher_logits, y, T=T, lam=lam), logits
    return step


def fit(model, opt, loss_fn, loader, epochs: int = 1, name: str = "", test=None, schedule=None, progress=True,
        on_epoch_end=None, after_step=None):
    """The examples' one training loop: ``epochs`` passes over the minibatches of ``loader``.

    For each minibatch ``(x, y)``: ``loss, logits = loss_fn(model, x, y)`` (:func:`ce_step`,
    :func:`make_kd_step`, ... — the loss is what changes between runs), then ``opt.zero_grad()``,
    ``loss.backward()``, ``opt.step()``, ``after_step(model)`` if given (a weight constraint such
    as :func:`minikd.nn.utils.max_norm_`) and, if given, a step of the learning-rate ``schedule``.

    ``loader`` is a DataLoader, which draws a new order each epoch from its one seed, or a
    function ``epoch → DataLoader`` (epochs count from 1) for a loader seeded anew each epoch.
    A minibatch may carry more than ``(x, y)``: the loss then gets all of it,
    ``loss_fn(model, x, y, *rest)`` (:class:`IndexedLoader` adds the images' indices, to look
    up precomputed teacher outputs). A progress bar shows the running loss and training
    accuracy (``progress=False``: none). With ``test=(x_test, y_test)`` every epoch ends with
    the test accuracy and a printed line. ``on_epoch_end(epoch, model)``, if given, is called
    after each epoch (after the test), e.g. to keep a checkpoint per epoch.

    Several networks trained together (deep mutual learning's peers) are one ``model``: a
    Module holding them, one optimizer over all their parameters, and a ``loss_fn`` that
    returns the sum of their losses (each peer's loss must depend on its own parameters only:
    then the sum's gradient is each peer's own gradient, and Adam, per parameter, steps each
    peer exactly as its own optimizer would).

    A loss that turns nan or infinite ends the run at the end of that epoch with
    :class:`TrainingDiverged` (a learning rate too high for the loss, usually), which
    :func:`run_cli` reports as one error line.

    Returns the history, one dict per epoch (``epoch``, ``train_loss``, ``train_acc`` — means
    over the epoch's minibatches, weighted by their size — and ``test_acc`` with ``test``),
    and the seconds spent training (evaluation excluded).

    The model, its optimizer and the loader's batches are on one device (``model.to(device)``
    before the optimizer is built; a loader with ``device=``). Off the CPU, reading a loss or an
    accuracy is a wait for the device: without a progress bar the epoch's per-batch losses and
    hits stay on the device and are read once, at its end (the same sums, in the same order).
    """
    model.train()
    history, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        batches = loader(epoch) if callable(loader) else loader
        desc = (f"{name} " if name else "") + f"epoch {epoch}/{epochs}"
        bar = tqdm(batches, desc=desc, leave=False, disable=not progress)
        tally = _Tally()
        start = time.perf_counter()
        for batch in bar:
            loss, logits = loss_fn(model, *batch)
            y = batch[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
            if schedule is not None:
                schedule.step()
            tally.add(loss, logits, y)
            if progress:  # the bar's running numbers: read now (off the CPU, a wait for the device each step)
                bar.set_postfix(loss=f"{tally.loss:.4f}", acc=f"{100 * tally.acc:.2f}%", refresh=False)
        total_loss, correct, seen = tally.read()  # the epoch's last wait for the device: inside the timing
        seconds += time.perf_counter() - start
        stop_if_diverged(total_loss / seen, desc, schedule.base_lr if schedule is not None else opt.lr)
        row = {"epoch": epoch, "train_loss": total_loss / seen, "train_acc": correct / seen}
        if test is not None:
            row["test_acc"] = evaluate(model, *test)
            tqdm.write(f"{desc}: loss {row['train_loss']:.4f}, train acc {100 * row['train_acc']:.2f} %, "
                       f"test acc {100 * row['test_acc']:.2f} %")
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history, seconds


class TrainingDiverged(FloatingPointError):
    """:func:`fit`'s error when an epoch's training loss is nan or infinite."""


def stop_if_diverged(loss: float, where: str, lr: float, what: str = "the training loss") -> None:
    """Raise :class:`TrainingDiverged` if ``loss`` (an epoch's mean) is nan or infinite: every number
    after it would be meaningless. ``where`` names the run and epoch, ``lr`` is the run's learning rate
    (the starting one, under a schedule)."""
    if not math.isfinite(loss):
        raise TrainingDiverged(f"{where}: {what} is {loss} — the run diverged (learning rate {lr:g}). "
                               "Try a lower learning rate.")


class _Tally:
    """The running training loss and accuracy of an epoch, read from the device only when asked."""

    def __init__(self):
        self.pending = []  # (loss, hits, n) of batches not read yet: device values
        self.total_loss, self.correct, self.seen = 0.0, 0, 0

    def add(self, loss, logits, y):
        self.pending.append((loss.detach(), logits.argmax(axis=1) == y, len(y)))

    def read(self):
        for loss, hits, n in self.pending:  # in batch order: the sums of a batch-by-batch reading
            self.total_loss += loss.item() * n
            self.correct += int(hits.numpy().sum())
            self.seen += n
        self.pending = []
        return self.total_loss, self.correct, self.seen

    @property
    def loss(self):
        total, _, seen = self.read()
        return total / seen

    @property
    def acc(self):
        _, correct, seen = self.read()
        return correct / seen


class IndexedLoader:
    """Minibatches ``(x, y, i)``: exactly the batches, in the same order, of
    ``DataLoader(x, y, batch_size, shuffle=True, seed=seed)``, plus ``i``, the indices (a NumPy
    array) of the batch's images in ``x``. With them a loss looks up what was computed once for
    the whole training set — a frozen teacher's logits and features — instead of running the
    teacher on every batch of every epoch (its outputs are the same each time: eval mode, no graph).

    ``x`` and ``y`` go to ``device`` a batch at a time; ``i`` stays on the host (it indexes host arrays)."""

    def __init__(self, x, y, batch_size: int, seed: int, device: str = "cpu"):
        self.batches = DataLoader(x, np.arange(len(x)), batch_size, shuffle=True, seed=seed)  # the same draws
        self.y = np.asarray(y)
        self.device = device

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for x, index in self.batches:  # made on the host, then uploaded once
            i = index.numpy()
            yield x.to(self.device), mk.tensor(self.y[i], device=self.device), i


def train_ce(model, x, y, epochs: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, progress=True,
             name: str = "model"):
    """The lecture's training from scratch: Adam, cross-entropy, ``epochs`` passes over (x, y),
    shuffled with the seed ``seed + epoch − 1`` in each, on the model's device. Returns the model.

    (The hands-on draws every epoch's order from one seeded loader instead; each example keeps
    the order it has always used, so its numbers for a given seed stay the same.)"""
    opt = optim.Adam(model.parameters(), lr=lr)
    device = model_device(model)
    fit(model, opt, ce_step, lambda epoch: DataLoader(x, y, batch_size, shuffle=True, seed=seed + epoch - 1,
                                                      device=device),
        epochs, name, progress=progress)
    return model


_SMOKE_RUN = False  # set by mark_smoke_run: every figure save_figure writes is then watermarked


def mark_smoke_run(on: bool) -> None:
    """From now on (``on``) every figure :func:`save_figure` writes carries a large, faint "SMOKE RUN
    (--quick)" across it, so that a picture of a smoke run — a subset, an epoch — cannot pass for
    a measurement once it is copied out of its folder. Each example calls it with ``args.quick``
    at the start of ``main``; ``False`` turns it off again."""
    global _SMOKE_RUN
    _SMOKE_RUN = bool(on)


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Save a matplotlib figure through a temporary file and a rename: never half a PNG. In a smoke
    run (:func:`mark_smoke_run`) the figure is watermarked first."""
    import matplotlib.pyplot as plt

    if _SMOKE_RUN:  # over everything, faint enough to leave the data readable
        fig.text(0.5, 0.5, "SMOKE RUN (--quick)\nnot a measurement", ha="center", va="center", rotation=20,
                 fontsize=min(40, 4.5 * fig.get_figwidth()), color="crimson", alpha=0.25, fontweight="bold",
                 zorder=1000)
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


def write_json(obj, path: Path) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    os.replace(tmp, path)
