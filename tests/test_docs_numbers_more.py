"""The other pages' measured tables say what their results files say.

As tests/test_docs_numbers.py does for kd_methods.md and distillation.md: each test recomputes a
table of a page from the results files kept in docs/ — with the example's own functions where the
example computes the table (``aggregate`` of mnist_teacher_student, ``summarise`` of
quantface_mnist, ``sample_std`` of examples/common.py, as the runs use it) — and compares every
number the table prints, at the precision it prints.

Checked: performance.md's Intel Xeon benchmark, pruning.md's two tables, quantization.md's
accuracy and memory tables, results.md's table, gpu.md's hands-on, speed and time-breakdown
tables, and data_free.md's three-seed table,
QuantFace's tables and the LeNet pair's tables. Not checked: numbers in the prose, data_free.md's
targets table (prose that repeats the tables above), the rows of scratch scripts that kept no
results file, and tables with no results file in the repository (deploy.md's, performance.md's
EPYC benchmarks) or computed rather than measured (model_complexity.md's, checked by its code blocks).
"""

import re

import numpy as np
import pytest

from tests.test_docs_numbers import assert_printed, by_first_cell, load, numbers, section, table
from tests.util import load_example


@pytest.fixture(scope="module")
def common():
    return load_example("common")


def header(text: str, first_cell: str) -> list:
    """The header cells of the table in ``text`` whose header row starts with ``first_cell``."""
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]


def assert_range(cell: str, values, where: str):
    """``cell`` prints the smallest and the largest of ``values`` ("12.3–14.7 min"), or one number
    where both round alike."""
    decimals = numbers(cell)[0][1]
    low, high = round(min(values), decimals), round(max(values), decimals)
    assert_printed(cell, *((low,) if low == high else (low, high)), where=where)


# --------------------------------------------------------------------------- pruning.md

PRUNING_COLUMNS = ("unstructured, L1, local", "unstructured, L1, global", "unstructured, gradient, global",
                   "unstructured, random, global", "unstructured, L1, global, iterative")


def test_the_pruning_table_is_what_its_results_file_gives():
    """docs/pruning.md, "Measured": test accuracy after pruning and fine-tuning, per sparsity and method."""
    rows = table(section("pruning.md", "## Measured"), "sparsity")
    report, = load("pruning/results.json")
    acc = {(r["method"], r["amount"]): 100 * r["acc_finetuned"] for r in report["rows"]}
    assert [numbers(c[0])[0][0] for c in rows] == pytest.approx([100 * a for a in report["settings"]["sparsities"]])
    for cells in rows:
        amount = numbers(cells[0])[0][0] / 100
        for method, cell in zip(PRUNING_COLUMNS, cells[1:], strict=True):
            key = (method, amount)
            assert_printed(cell, *([acc[key]] if key in acc else []), where=f"{method}, {cells[0]}")


def test_the_structured_pruning_table_is_what_its_results_file_gives():
    """docs/pruning.md, "Measured": the structured runs' parameters, MACs, accuracy, time per batch
    and speed-up."""
    rows = table(section("pruning.md", "## Measured"), "filters / neurons removed")
    report, = load("pruning/results.json")
    runs = [r for r in report["rows"] if r["method"].startswith("structured")]
    assert [numbers(c[0])[0][0] for c in rows] == pytest.approx([100 * r["amount"] for r in runs])
    for cells, r in zip(rows, runs):
        where = f"structured, {cells[0]}"
        assert_printed(cells[1], r["params"], where=where)
        assert_printed(cells[2], r["macs"], where=where)
        assert_printed(cells[3], 100 * r["acc_finetuned"], where=where)
        assert_printed(cells[4], r["latency_ms"], where=where)
        assert_printed(cells[5], r["speedup"], where=where)
        assert r["speedup"] == pytest.approx(report["unpruned"]["latency_ms"] / r["latency_ms"])


# --------------------------------------------------------------------------- quantization.md

QUANT_COLUMNS = [("float32", 32)] + [(m, b) for b in (8, 6, 4, 2) for m in ("PTQ", "QAT + KD")]


def test_the_quantization_tables_are_what_their_results_file_gives():
    """docs/quantization.md, section 5: the teacher's and the student's test accuracy per bit width
    and method, their parameter counts and their parameter memory."""
    text = section("quantization.md", "## 5. Measured")
    report, = load("quantization/results.json")
    rows = {(r["model"], r["method"], r["bits"]): r for r in report["rows"]}
    accuracy = table(text, "model | float32 | w8a8 PTQ")
    memory = table(text, "model | float32 | 8 bits")
    assert header(text, "model | float32 | w8a8 PTQ")[1:] == ["float32"] + [
        f"w{b}a{b} {'PTQ' if m == 'PTQ' else 'QAT'}" for m, b in QUANT_COLUMNS[1:]]
    assert header(text, "model | float32 | 8 bits")[1:] == ["float32", "8 bits", "6 bits", "4 bits", "2 bits"]
    assert [c[0].split(" ")[0] for c in accuracy] == report["settings"]["models"]
    for cells, memory_cells in zip(accuracy, memory, strict=True):
        model = cells[0].split(" ")[0]
        assert memory_cells[0] == f"{model}, parameter memory"
        assert_printed(cells[0], rows[model, "float32", 32]["size_bytes"] / 4, where=model)     # its parameters
        for (method, bits), cell in zip(QUANT_COLUMNS, cells[1:], strict=True):
            assert_printed(cell, 100 * rows[model, method, bits]["test_acc"], where=f"{model}, {method}, {bits}")
        for bits, cell in zip((32, 8, 6, 4, 2), memory_cells[1:], strict=True):
            size = rows[model, "float32" if bits == 32 else "PTQ", bits]["size_bytes"]
            assert_printed(cell, size / 1024, where=f"{model}, {bits} bits, KiB")


# --------------------------------------------------------------------------- results.md

RESULTS_ROWS = {"teacher (CE)": "teacher", "student alone (CE)": "student",
                "student, logit KD (λ = 0.5, T = 3)": "kd", "student, feature KD (λ = 0.5)": "fkd"}


def test_the_hands_on_table_is_what_its_results_file_gives():
    """docs/results.md, "The table": parameters, FLOPs, the lecture's number, mean ± std over the
    seeds, each seed and the training time, as the example's ``aggregate`` computes them."""
    example = load_example("mnist_teacher_student")
    rows = by_first_cell(table(section("results.md", "## The table"), "run"))
    report, = load("results/results.json")
    assert set(rows) == set(RESULTS_ROWS) and report["settings"]["seeds"] == [0, 1, 2]
    summary = example.aggregate(report["runs"])
    for run, t in summary.items():
        kept = report["summary"][run]
        assert (t["test_acc_mean"], t["test_acc_std"], t["train_seconds_mean"]) == pytest.approx(
            (kept["test_acc_mean"], kept["test_acc_std"], kept["train_seconds_mean"])), run
    for title, run in RESULTS_ROWS.items():
        t, cells = summary[run], rows[title]
        assert_printed(cells[0], t["params"], where=title)
        assert_printed(cells[1], t["flops"], where=title)
        assert_printed(cells[2], *([t["lecture_test_acc"]] if t["lecture_test_acc"] else []), where=title)
        assert_printed(cells[3], t["test_acc_mean"], t["test_acc_std"], where=title)
        assert_printed(cells[4], t["test_acc_runs"][0], where=title)
        assert_printed(cells[5], *t["test_acc_runs"][1:], where=title)
        assert_printed(cells[6], t["train_seconds_mean"], where=title)


# --------------------------------------------------------------------------- gpu.md

HANDS_ON = {"teacher": "teacher", "student": "student", "logit KD": "kd", "feature KD": "fkd"}


def test_the_gpu_hands_on_table_is_what_its_three_results_files_give():
    """docs/gpu.md, "On a real GPU": the one-epoch hands-on on the CPU, on the GPU with the xp
    references (run 2) and with the numba.cuda kernels (run 3)."""
    rows = by_first_cell(table(section("gpu.md", "## On a real GPU"), "model"))
    reports = load("gpu_run/cpu_reference/handson_1epoch_results.json", "gpu_run/run2/handson_results.json",
                   "gpu_run/run3/handson_results.json")
    assert set(rows) == set(HANDS_ON)
    for report in reports:
        assert report["settings"]["epochs"] == 1 and report["settings"]["seeds"] == [0]
    for title, run in HANDS_ON.items():
        for cell, report in zip(rows[title], reports, strict=True):
            assert_printed(cell, report["summary"][run]["test_acc_mean"], where=title)


def test_the_gpu_speed_table_is_what_run_3s_benchmark_gives():
    """docs/gpu.md, "On a real GPU": minikd's and PyTorch's images/s on the H200 and their ratio."""
    report, = load("gpu_run/run3/benchmark_cuda.json")
    assert_speed_table(table(section("gpu.md", "## On a real GPU"), "model | kind"), report)


def assert_speed_table(rows, report):
    """A table of examples/benchmark.py's rows: model, kind, batch, minikd and PyTorch img/s, ratio."""
    assert [(c[0], c[1], int(c[2])) for c in rows] == [(r["model"], r["kind"], r["batch"]) for r in report["rows"]]
    for cells, r in zip(rows, report["rows"]):
        where = f"{r['model']} {r['kind']} {r['batch']}"
        assert_printed(cells[3], r["minikd_img_s"], where=where)
        assert_printed(cells[4], r["torch_img_s"], where=where)
        assert_printed(cells[5], r["ratio"], where=where)


def test_the_intel_xeon_speed_table_is_what_its_benchmark_gives():
    """docs/performance.md, "Another host": minikd's and PyTorch's images/s on the Intel Xeon and their ratio."""
    report, = load("performance/benchmark_intel_xeon.json")
    assert report["repeats"] == 3 and report["platform"]["llvm_cpu"] == "emeraldrapids"
    assert_speed_table(table(section("performance.md", "## Another host"), "model | what"), report)


BREAKDOWN = {"minikd, numba.cuda kernels": "minikd kernels", "minikd, xp references": "minikd xp reference",
             "PyTorch": "torch"}


def test_the_gpu_breakdown_table_is_what_run_3s_breakdown_gives():
    """docs/gpu.md, "Where the time goes": the teacher's wall, host and GPU-busy time per step, its
    kernels and its first host sync, per framework and batch."""
    # the table's first header cell is empty: its header row starts "| | batch |"
    rows = table(section("gpu.md", "## On a real GPU"), "| batch")
    report, = load("gpu_run/run3/breakdown_cuda.json")
    teacher = {(r["framework"], r["batch"]): r for r in report["rows"] if r["model"] == "teacher"}
    assert len(rows) == len(teacher)
    for cells in rows:
        r = teacher[BREAKDOWN[cells[0]], int(cells[1])]
        where = f"{cells[0]}, batch {cells[1]}"
        assert_printed(cells[2], 1000 * r["wall_s"], where=where)
        assert_printed(cells[3], 1000 * r["host_s"], where=where)
        assert_printed(cells[4], 1000 * r["gpu_busy_s"], where=where)
        assert_printed(cells[5], r["kernels"], where=where)
        assert cells[6] == r.get("first_sync", "–"), where


# --------------------------------------------------------------------------- data_free.md: the three seeds

def runs_of(*files):
    """The runs of ``files`` (under docs/data_free/), each file holding one method, in order."""
    runs = []
    for report in load(*(f"data_free/{f}" for f in files)):
        (result,) = report["methods"].values()
        runs += result["runs"]
    return runs


def seeds(name: str, n: int = 3):
    """``name`` with {} as each of seeds 0 .. n − 1."""
    return [name.format(s) for s in range(n)]


# the table's rows in order: the start of the first cell → the files of its runs (seed 0 first), and
# where the wall time is another run's (the cheaper synthesis, timed again), the files of those runs
THREE_SEED_ROWS = [
    ("1: the conditional GAN's samples", ["results_s1_zstd2.json"]),
    ("1: the same, 60 epochs", seeds("s1_e60/results_seed{}.json")),
    ("1: the same, z ~ N(0, I), no jitter", ["results_s1.json", "seeds12/results_generator.json"]),
    ("reference, not data-free: scenario 1's loop", ["results_real.json"]),
    ("reference, not data-free: the same, 60 epochs", ["s1_e60/results_real_seed0.json"]),
    ("1: the same G and settings, the teacher trained 15 epochs", seeds("teacher_e15/results_e60_seed{}.json")),
    ("1: the same teacher, 20 epochs", ["teacher_e15/results_e20.json"]),
    ("reference, not data-free: the same teacher, real", ["teacher_e15/results_real_e60_seed0.json"]),
    ("2: activation maximisation (+ diversity", ["results_am5.json", "seeds12/results_actmax.json"]),
    ("2: activation maximisation, pool of 61,440",
     ["results_am61.json", "seeds12/results_am61_seed1.json", "seeds12/results_am61_seed2.json"]),
    ("2: DeepInversion", ["results_di6.json", "seeds12/results_deepinversion.json"]),
    ("2: DAFL, 5 epochs", ["results_dafl1.json", "seeds12/results_dafl.json"]),
    ("2: DAFL, 10 epochs",
     ["results_dafl10.json", "seeds12/results_dafl10_seed1.json", "seeds12/results_dafl10_seed2.json"]),
    ("2: LeNet-5 → LeNet-5-half, activation maximisation, pool of 122,880",
     seeds("lenet/results_actmax_pool122880_seed{}.json")),
    ("2: LeNet-5 → LeNet-5-half, activation maximisation, pool of 30,720",
     ["results_am_lenet.json", "seeds12/results_lenet5.json"]),
    ("2: LeNet-5 → LeNet-5-half, DAFL", ["lenet/results_dafl.json"]),
    ("reference, not data-free: LeNet-5-half, scenario 1's loop", ["lenet/results_real.json"]),
    ("2: LeNet-5 → LeNet-5-half, Adaptive DeepInversion", seeds("lenet/adaptive/results_adi_r4_w1_seed{}.json")),
    ("2: LeNet-5 → LeNet-5-half, the same Adaptive DeepInversion from a LeNet-5 trained on noisy images",
     seeds("lenet/noise/results_adi_r4_w1_noise1_seed{}.json")),
    ("2: LeNet-5 → LeNet-5-half, the same from the noisy teacher, cheaper",
     seeds("lenet/noise/results_adi_r4_w1_noise1_iters30_e30_seed{}.json"),
     seeds("lenet/noise/results_adi_r4_w1_noise1_iters30_e30_timed_seed{}.json")),
    ("2: LeNet-5 → LeNet-5-half, the same 4 rounds without competition",
     seeds("lenet/adaptive/results_rounds4_seed{}.json")),
    ("reference, not data-free: LeNet-5-half, scenario 1's loop on real training images, no jitter, as many seen",
     ["lenet/adaptive/results_real_2457600_seen_seed0.json"]),
]


def three_seed_rows():
    """The rows of data_free.md's three-seed table, the first (the real-data logit KD of results.md) apart."""
    rows = table(section("data_free.md", "## Results over three seeds"), "scenario, method")
    assert rows[0][0].startswith("real data, for reference: logit KD")
    assert len(rows) == 1 + len(THREE_SEED_ROWS)
    for cells, (start, *_) in zip(rows[1:], THREE_SEED_ROWS):
        assert cells[0].startswith(start), f"{cells[0]!r} should start with {start!r}"
    return rows[0], rows[1:]


def test_the_data_free_table_is_what_its_results_files_give(common):
    """docs/data_free.md, "Results over three seeds": each row's teacher, the student's mean ± std
    (sample std, as data_free_kd reports it) or its one seed, each seed, the images seen (distinct)
    and the wall time per seed (one number where the seeds' round alike, else the range)."""
    _, rows = three_seed_rows()
    for cells, (start, files, *timed) in zip(rows, THREE_SEED_ROWS):
        teacher, accuracy, per_seed, seen, wall = cells[1:]
        runs = runs_of(*files)
        accs = [100 * r["student_test_acc"] for r in runs]
        assert [r["seed"] for r in runs] == list(range(len(runs))), start
        assert len({r["teacher_test_acc"] for r in runs}) == 1, start
        assert_printed(teacher.rsplit(",", 1)[1], 100 * runs[0]["teacher_test_acc"], where=start)
        if len(runs) == 1:
            assert_printed(accuracy.split("(")[0], accs[0], where=start)
            assert accuracy.endswith(("(seed 0)", "(seed 0 only)")), start
        else:
            assert_printed(accuracy, np.mean(accs), common.sample_std(accs), where=start)
        assert_printed(per_seed, *accs, where=start)
        assert_printed(seen, runs[0]["synthetic_images_seen"], runs[0]["distinct_synthetic_images"], where=start)
        if timed:
            timed_runs = runs_of(*timed[0])
            assert [r["student_test_acc"] for r in timed_runs] == [r["student_test_acc"] for r in runs], start
            runs = timed_runs
        assert_range(wall.split("(")[0], [r["wall_seconds"] / 60 for r in runs], where=start)
    generator, = load("data_free/generator.json")            # G's training, in the first row's wall time
    assert_printed(rows[0][5].split("(")[1], generator["wall_seconds"] / 60, where="training G")


def test_the_data_free_tables_real_data_row_is_results_mds_logit_kd():
    """docs/data_free.md, "Results over three seeds": the first row, logit KD on real data, repeats
    results.md's (its teacher's mean, mean ± std, seeds, 5 epochs of 60,000 images, training time)."""
    cells, _ = three_seed_rows()
    report, = load("results/results.json")
    kd, teacher = report["summary"]["kd"], report["summary"]["teacher"]
    assert_printed(cells[1].rsplit(",", 1)[1], teacher["test_acc_mean"], where="teacher")
    assert_printed(cells[2], kd["test_acc_mean"], kd["test_acc_std"], where="logit KD")
    assert_printed(cells[3], *kd["test_acc_runs"], where="logit KD")
    assert_printed(cells[4], report["settings"]["epochs"] * 60_000, 60_000, where="images seen")
    assert_printed(cells[5].split("(")[0], kd["train_seconds_mean"] / 60, where="training time")


# --------------------------------------------------------------------------- data_free.md: QuantFace

QF_METHODS = ("PTQ", "QAT (QuantFace)", "QAT, validated")


@pytest.fixture(scope="module")
def quantface():
    """quantface/results.json's rows, summarised by the example's ``summarise``: {(model, source, method,
    bits): row}."""
    example = load_example("quantface_mnist")
    report, = load("quantface/results.json")
    assert report["settings"]["seeds"] == [0, 1, 2]
    summary = example.summarise(report["rows"])
    for mine, kept in zip(summary, report["summary"], strict=True):
        assert (mine["model"], mine["source"], mine["method"], mine["bits"]) == \
            (kept["model"], kept["source"], kept["method"], kept["bits"])
        assert (mine["test_acc"], mine["test_acc_std"]) == pytest.approx((kept["test_acc"], kept["test_acc_std"]))
        assert mine["per_seed"] == kept["per_seed"]
    return {(r["model"], r["source"], r["method"], r["bits"]): r for r in summary}


@pytest.mark.parametrize("model", ["teacher", "student"])
def test_the_quantface_tables_are_what_their_results_file_gives(quantface, model):
    """docs/data_free.md, "QuantFace": the float32 model's mean ± std and seeds, and each source's
    test accuracy per bit width and method, mean ± std over the three seeds."""
    text = section("data_free.md", "## QuantFace")
    title = next(line for line in text.splitlines() if line.startswith(f"**{model}** (float32:"))
    fp = quantface[model, "-", "float32", 32]
    assert_printed(title.split("float32:")[1], 100 * fp["test_acc"], 100 * fp["test_acc_std"],
                   *(100 * v for v in fp["per_seed"].values()), where=f"{model}, float32")
    rows = table(text.split(title)[1], "data")
    assert header(text.split(title)[1], "data")[1:] == [
        f"w{b}a{b} {m}" for b in (8, 6, 4) for m in ("PTQ", "QAT", "validated")]
    assert [re.search(r"`(\w+)`", c[0])[1] for c in rows] == ["real", "generator", "actmax", "deepinversion"]
    for cells in rows:
        source = re.search(r"`(\w+)`", cells[0])[1]
        for (bits, method), cell in zip([(b, m) for b in (8, 6, 4) for m in QF_METHODS], cells[1:], strict=True):
            r = quantface[model, source, method, bits]
            assert_printed(cell, 100 * r["test_acc"], 100 * r["test_acc_std"],
                           where=f"{model}, {source}, w{bits}, {method}")


QF_DIFFERENCE_METHODS = {"PTQ": "PTQ", "QAT (one pass)": "QAT (QuantFace)", "QAT, validated": "QAT, validated"}


def test_the_quantface_w8a8_differences_are_what_its_results_file_gives(quantface):
    """docs/data_free.md, "QuantFace": at w8a8, each synthetic source against real images, the mean
    over the seeds of the per-seed difference (and, where printed, each seed's)."""
    rows = by_first_cell(table(section("data_free.md", "## QuantFace"), "model, method"))
    assert len(rows) == 6
    for title, cells in rows.items():
        model, method = title.split(", ", 1)
        real = quantface[model, "real", QF_DIFFERENCE_METHODS[method], 8]["per_seed"]
        for source, cell in zip(("generator", "actmax", "deepinversion"), cells, strict=True):
            synthetic = quantface[model, source, QF_DIFFERENCE_METHODS[method], 8]["per_seed"]
            difference = [100 * (synthetic[s] - real[s]) for s in ("0", "1", "2")]
            values = [np.mean(difference)] + (difference if len(numbers(cell)) > 1 else [])
            assert_printed(cell, *values, where=f"{title}, {source}")


# --------------------------------------------------------------------------- data_free.md: the LeNet pair

def lenet(name: str) -> dict:
    """The one run of docs/data_free/lenet/``name``."""
    run, = runs_of(f"lenet/{name}")
    return run


def acc(run) -> float:
    return 100 * run["student_test_acc"]


def after_rounds(run, n: int) -> float:
    """The student's test accuracy after the first ``n`` rounds of a run made in rounds."""
    return 100 * run["history"][sum(r["epochs"] for r in run["rounds"][:n]) - 1]["test_acc"]


def test_the_lenet_changes_table_is_what_its_results_files_give():
    """docs/data_free.md, "The LeNet pair with the 99.14 % teacher": the rows run by data_free_kd.py
    (accuracy, the images seen, the wall time), and the example runs that the scratch rows compare with.
    The scratch rows' own numbers have no file."""
    rows = table(section("data_free.md", "### The targets, honestly"), "change")

    def row(start):
        found = [cells for cells in rows if cells[0].startswith(start)]
        assert len(found) == 1, start
        return found[0]

    adi = [lenet(f"adaptive/results_adi_r4_w1_seed{s}.json") for s in (0, 1)]
    examples = {      # the start of the first cell → the runs the row names, and those it compares with
        "pool of 122,880, 20 epochs": ([lenet("teacher_e20/results_actmax_pool122880_seed0.json")], [], False),
        "pool of 61,440, 100 Adam steps": ([lenet("adaptive/results_iters100_seed0.json")], [], True),
        "the same, 4 rounds, w = 1, 100 steps": ([lenet("adaptive/results_adi_r4_w1_iters100_seed0.json")], [], True),
        "the same, 4 rounds, w = 1, pool of 92,160": (
            [lenet(f"adaptive/results_adi_r4_w1_pool92160_seed{s}.json") for s in (0, 1)], adi, True),
        "Adaptive DeepInversion (4 rounds, w = 1), the student's Adam at lr 3e-3":
            ([lenet("adaptive/results_adi_r4_w1_lr3e-3_seed0.json")], adi[:1], True),
        "Adaptive DeepInversion, 3 rounds": ([lenet("adaptive/results_adi_r3_w1_seed0.json")], [], True),
        "Adaptive DeepInversion (4 rounds, w = 1), twice the student's epochs": (
            [lenet(f"adaptive/results_adi_r4_w1_epochs80_seed{s}.json") for s in (0, 1)], adi, True),
        "reference, not data-free: real training images": (
            [lenet("adaptive/results_real_2457600_seen_seed0.json")], [], True),
    }
    for start, (runs, compared, timed) in examples.items():
        change, student, how = row(start)
        assert how.startswith("example"), start
        # a row whose pool differs from the runs it compares with names theirs ("with 61,440")
        distinct = [c["distinct_synthetic_images"] for c in compared[:1]
                    if c["distinct_synthetic_images"] != runs[0]["distinct_synthetic_images"]]
        assert_printed(student, *[acc(r) for r in runs], *[acc(r) for r in compared], *distinct, where=start,
                       prefix=True)
        if timed:
            minutes = [r["wall_seconds"] / 60 for r in runs]
            if " and " in how:
                assert_printed(how, *minutes, where=start, prefix=True)
            else:
                assert_range(how.split(":")[0], minutes, where=start)
        seen = runs[0]["synthetic_images_seen"]
        assert f"{seen:,}" in change or (seen == 2_457_600 and "seen" not in change), f"{start}: {seen:,} seen"

    w2 = lenet("adaptive/results_adi_r4_w2_seed0.json")
    change, student, how = row("Adaptive DeepInversion, 4 rounds, w = 2")
    assert_printed(student, acc(w2), after_rounds(w2, 3), 3, where="w = 2")
    assert_printed(how, w2["wall_seconds"] / 60, where="w = 2")
    # the scratch rows' comparisons with the example's runs (seeds 0 and 1, 4 rounds, w = 1)
    assert_printed(row("Adaptive DeepInversion (4 rounds, w = 1), the student's weights averaged")[1].split("(")[1],
                   *[acc(r) for r in adi], where="EMA: without")
    assert_printed(row("the Adaptive DeepInversion pools of seeds 0 and 1")[1].split("(")[1],
                   *[acc(r) for r in adi], where="the pools: in rounds")
    restart = row("Adaptive DeepInversion (4 rounds, w = 1), the student's cosine restarted")[1]
    assert_printed(restart.split("against")[1], after_rounds(adi[0], 3), acc(adi[0]), where="one cosine")


def lenet_seed_table(text: str, first_cell: str, before: list, after: list, where: str, common, gain=True):
    """A table of the LeNet pair with rows 0, 1, 2 (each seed's accuracy ``before`` and ``after``, and
    the gain), then mean ± std (and the mean gain); returns the rows after those."""
    rows = table(text, first_cell)
    a, b = [acc(r) for r in before], [acc(r) for r in after]
    for s in range(3):
        cells = rows[s]
        assert cells[0] == str(s) and before[s]["seed"] == after[s]["seed"] == s, where
        assert_printed(cells[1], a[s], where=f"{where}, seed {s}")
        assert_printed(cells[2], b[s], where=f"{where}, seed {s}")
        if gain:
            assert_printed(cells[3], b[s] - a[s], where=f"{where}, gain of seed {s}")
    cells = rows[3]
    assert cells[0] == "mean ± std", where
    assert_printed(cells[1], np.mean(a), common.sample_std(a), where=f"{where}, mean")
    assert_printed(cells[2], np.mean(b), common.sample_std(b), where=f"{where}, mean")
    if gain:
        assert_printed(cells[3], np.mean(b) - np.mean(a), where=f"{where}, mean gain")
    return rows[4:]


def test_the_lenet_competition_table_is_what_its_results_files_give(common):
    """docs/data_free.md, "The LeNet pair with the 99.14 % teacher": 4 rounds without and with the
    competition term, per seed, mean ± std, the gain and the wall times."""
    plain = [lenet(f"adaptive/results_rounds4_seed{s}.json") for s in range(3)]
    compete = [lenet(f"adaptive/results_adi_r4_w1_seed{s}.json") for s in range(3)]
    wall, = lenet_seed_table(section("data_free.md", "### The targets, honestly"), "seed", plain, compete,
                             "competition", common)
    assert wall[0] == "wall time per run" and wall[3] == ""
    for cell, runs in zip(wall[1:3], (plain, compete)):
        assert_range(cell, [r["wall_seconds"] / 60 for r in runs], where="wall time")


def test_the_lenet_batchnorm_screen_is_what_its_results_files_give():
    """docs/data_free.md, the LeNet-5 with BatchNorm: each teacher's accuracy, the student's and the
    synthesis time, per method (and r_bn)."""
    rows = table(section("data_free.md", "### The targets, honestly"), "teacher | method")
    expected = [("bn/results_actmax_lenet5_no_bn.json",), ("bn/results_actmax.json",),
                ("bn/results_deepinversion_rbn1.json", "bn/results_deepinversion_rbn10.json",
                 "bn/results_deepinversion_rbn50.json")]
    assert len(rows) == len(expected)
    for cells, files in zip(rows, expected):
        reports = load(*(f"data_free/lenet/{f}" for f in files))
        runs = [lenet(f) for f in files]
        where = " / ".join(files)
        assert len({r["teacher_test_acc"] for r in runs}) == 1, where
        assert_printed(cells[0].rsplit(",", 1)[1], 100 * runs[0]["teacher_test_acc"], where=where)
        assert cells[1].startswith({"actmax": "activation maximisation", "deepinversion": "DeepInversion"}[
            reports[0]["settings"]["method"][0]]), where
        if len(files) > 1:
            assert_printed(cells[1].split("=")[1], *[r["settings"]["r_bn"] for r in reports], where=where)
        assert_printed(cells[2], *[acc(r) for r in runs], where=where)
        assert_range(cells[3], [r["synthesis_seconds"] / 60 for r in runs], where=where)


NOISE_SCREEN = {"no noise (the 99.14 % teacher above)": ("teacher_e20/teacher_lenet5_e20_cosine.json", "base"),
                "σ = 0.5": ("noise/teacher_lenet5_noise0.5.json", "noise0.5"),
                "σ = 1": ("noise/teacher_lenet5_noise1.json", "noise1"),
                "σ = 2": ("noise/teacher_lenet5_noise2.0.json", "noise2.0")}


def test_the_noisy_teachers_screen_is_what_its_results_files_give():
    """docs/data_free.md, "A teacher trained on noisy images": each teacher's test accuracy and the
    student of the screen (pool of 12,288, 20 epochs, seed 0)."""
    rows = by_first_cell(table(section("data_free.md", "### A teacher trained on noisy images"),
                               "teacher (LeNet-5, 20 epochs, cosine)"))
    assert set(rows) == set(NOISE_SCREEN)
    for title, (teacher_file, screen) in NOISE_SCREEN.items():
        teacher, = load(f"data_free/lenet/{teacher_file}")
        run = lenet(f"noise/screen_pool12288_{screen}.json")
        assert run["teacher_test_acc"] == teacher["test_acc"], title
        assert_printed(rows[title][0], 100 * teacher["test_acc"], where=title)
        assert_printed(rows[title][1], acc(run), where=title)
    assert_printed(next(iter(NOISE_SCREEN)), 100 * lenet("noise/screen_pool12288_base.json")["teacher_test_acc"],
                   where="no noise")


def test_the_noisy_teachers_seeds_are_what_their_results_files_give(common):
    """docs/data_free.md, "A teacher trained on noisy images": Adaptive DeepInversion from the plain
    and from the σ = 1 teacher, per seed, mean ± std, the gain, the teachers in the header and the
    wall times (each seed's, and seed 0 of both run side by side on one day)."""
    text = section("data_free.md", "### A teacher trained on noisy images")
    plain = [lenet(f"adaptive/results_adi_r4_w1_seed{s}.json") for s in range(3)]
    noisy = [lenet(f"noise/results_adi_r4_w1_noise1_seed{s}.json") for s in range(3)]
    cells = header(text, "seed")
    assert_printed(cells[1], 100 * plain[0]["teacher_test_acc"], where="header")
    assert_printed(cells[2].split("=")[1], 1, 100 * noisy[0]["teacher_test_acc"], where="header")
    wall, = lenet_seed_table(text, "seed", plain, noisy, "noisy teacher", common)
    same_day = [lenet("noise/results_adi_r4_w1_plain_sameday_seed0.json"),
                lenet("noise/results_adi_r4_w1_noise1_sameday_seed0.json")]
    assert [acc(r) for r in same_day] == [acc(plain[0]), acc(noisy[0])]
    assert wall[0].startswith("wall time per run")
    before, today = wall[1].split(";")
    assert_range(before.split("min")[0], [r["wall_seconds"] / 60 for r in plain], where="wall, plain")
    assert_printed(today, same_day[0]["wall_seconds"] / 60, where="wall, plain, the same day")
    side_by_side, seed_2, today = wall[2].split(";")      # seed 2's "4.4-minute teacher run beside it" has no file
    assert_printed(side_by_side, *[r["wall_seconds"] / 60 for r in noisy[:2]], where="wall, noisy")
    assert_printed(seed_2, noisy[2]["wall_seconds"] / 60, 2, where="wall, noisy, seed 2", prefix=True)
    assert_printed(today, same_day[1]["wall_seconds"] / 60, where="wall, noisy, the same day")
    assert wall[3] == ""


def test_the_cheaper_synthesis_table_is_what_its_results_files_give(common):
    """docs/data_free.md, "A cheaper synthesis": 50 steps and 40 epochs against 30 steps at lr 0.15
    and 30 epochs, per seed and mean ± std, and the images seen (distinct)."""
    fifty = [lenet(f"noise/results_adi_r4_w1_noise1_seed{s}.json") for s in range(3)]
    thirty = [lenet(f"noise/results_adi_r4_w1_noise1_iters30_e30_seed{s}.json") for s in range(3)]
    seen, = lenet_seed_table(section("data_free.md", "### A cheaper synthesis"), "seed", fifty, thirty,
                             "cheaper", common, gain=False)
    assert seen[0] == "synthetic images seen (distinct)"
    for cell, runs in zip(seen[1:], (fifty, thirty), strict=True):
        assert_printed(cell, runs[0]["synthetic_images_seen"], runs[0]["distinct_synthetic_images"], where="seen")
