"""The docs' measured tables say what their results files say.

docs/kd_methods.md and docs/distillation.md print, by hand, tables whose numbers come from
results.json files kept beside them (docs/kd_methods/, docs/hinton/). A number copied wrong, or a
file rerun without its table, would go unnoticed: users read the tables, not the JSON. Each test
here recomputes a table from its files — with the example's own functions where the example
computes it (``aggregate``, ``merge_runs``, ``targets`` of kd_methods_mnist, as ``--chart-from``
does) — and compares every number the table prints, at the precision it prints.

Checked: kd_methods.md's main table, its five-seed targets, the QUD ablation, the AdaDistill
teachers' tables and BAN's budgets; distillation.md's measured rows of sections 7–11 and every
table of Hinton's experiment that has a results file. Not checked: numbers in the prose, and
rows of scratch scripts that kept no results file.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.util import load_example

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NUMBER = re.compile(r"[−-]?\d+(?:,\d{3})*(?:\.\d+)?")


def section(page: str, heading: str) -> str:
    """The text of ``page`` (under docs/) from the line that starts with ``heading`` to the next
    heading of any level (lines in fenced code blocks are not headings)."""
    lines = (DOCS / page).read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    assert start is not None, f"docs/{page} has no line that starts with {heading!r}"
    fenced = False
    for end in range(start + 1, len(lines)):
        fenced ^= lines[end].startswith("```")
        if not fenced and re.match(r"#+ ", lines[end]):
            break
    else:
        end = len(lines)
    return "\n".join(lines[start:end])


def table(text: str, first_cell: str) -> list:
    """The markdown table in ``text`` whose header row starts with ``first_cell``: its rows below
    the header, each a list of cells without their bold marks."""
    lines = text.splitlines()
    top = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |")), None)
    assert top is not None, f"no table whose header starts with {first_cell!r} under {lines[0]!r}"
    rows = []
    for line in lines[top + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("**", "") for c in line.strip().strip("|").split("|")])
    return rows


def by_first_cell(rows: list) -> dict:
    """{first cell: the other cells} of a table whose first cells differ."""
    out = {cells[0]: cells[1:] for cells in rows}
    assert len(out) == len(rows), "two rows have the same first cell"
    return out


def numbers(cell: str) -> list:
    """The numbers of a cell as printed: [(value, decimals)]."""
    out = []
    for m in NUMBER.findall(cell):
        m = m.replace("−", "-").replace(",", "")
        out.append((float(m), len(m.split(".")[1]) if "." in m else 0))
    return out


def assert_printed(cell: str, *values, where: str, prefix: bool = False):
    """Each number of ``cell``, in order, is ``values`` rounded to the decimals it is printed with
    (either neighbour where a value lies exactly halfway); ``prefix``: only the first numbers of
    the cell are values, the rest are settings ("at 1e-3")."""
    printed = numbers(cell)
    count = f"at least {len(values)}" if prefix else len(values)
    assert (len(printed) >= len(values)) if prefix else (len(printed) == len(values)), \
        f"{where}: {cell!r} has {len(printed)} numbers, expected {count}"
    for (shown, decimals), value in zip(printed, values):
        assert abs(shown - value) <= 0.5 * 10 ** -decimals + 1e-9, \
            f"{where}: {cell!r} prints {shown}, the results files give {value:.4f}"


def load(*paths):
    return [json.loads((DOCS / p).read_text()) for p in paths]


# --------------------------------------------------------------------------- kd_methods.md

@pytest.fixture(scope="module")
def kd_methods():
    return load_example("kd_methods_mnist")


# the docs' titles → the example's rows
KD_ROWS = {
    "teacher (CE, 15 epochs)": "teacher", "student alone (CE)": "student", "logit KD": "kd",
    "feature KD (MSE)": "fkd", "RKD + logit KD": "rkd", "DML, peer 1": "dml_peer1", "DML, peer 2": "dml_peer2",
    "BYOT, deepest exit": "byot", "BAN gen 1 (= student alone)": "ban_gen1",
    "BAN gen 2 (taught by gen 1)": "ban_gen2", "BAN gen 3 (taught by gen 2)": "ban_gen3",
    "small student alone": "ta_small_alone", "small ← teacher (KD)": "ta_small_kd",
    "assistant ← teacher (15 epochs, cosine)": "ta_assistant", "small ← assistant ← teacher": "ta_small_ta",
    "PocketNet (teacher checkpoints)": "pocketnet", "ArcFace head, no KD": "arcface",
    "AdaDistill (α′) + MSE": "adadistill", "AdaDistill (α′), no MSE (the paper's loss)": "adadistill_nomse",
    "QUD (no labels)": "qud",
}
MAIN_FILES = ("kd_methods/results.json", "kd_methods/results_ta.json", "kd_methods/results_ban_new_init.json")


def test_the_kd_methods_table_is_what_its_three_results_files_give(kd_methods):
    """docs/kd_methods.md, "Results": every row's parameters, accuracy and verification (mean ±
    std) and TARs, as --chart-from pools them from the three files the table names."""
    rows = by_first_cell(table(section("kd_methods.md", "## Results: 5 epochs"), "run"))
    assert set(rows) == set(KD_ROWS)
    summary = kd_methods.aggregate(kd_methods.merge_runs(load(*MAIN_FILES)))
    for title, cells in rows.items():
        t = summary[KD_ROWS[title]]
        assert t["seeds"] == [0, 1, 2], title
        assert_printed(cells[1], t["params"], where=title)
        assert_printed(cells[2], t["test_acc_mean"], t["test_acc_std"], where=title)
        assert_printed(cells[3], t["verification_mean"], t["verification_std"], where=title)
        assert_printed(cells[4], t["tar_far_1e-2_mean"], where=title)
        assert_printed(cells[5], t["tar_far_1e-3_mean"], where=title)


# the five-seed table's targets → the example's (kd_methods_mnist.targets)
FIVE_SEED_TARGETS = {
    "RKD + KD ≥ KD": "RKD + KD ≥ KD alone (test accuracy)",
    "DML peer 1 ≥ the student alone": "DML peer 1 ≥ the student alone (test accuracy)",
    "DML peer 2 ≥ the student alone": "DML peer 2 ≥ the student alone (test accuracy)",
    "BAN gen 2 ≥ gen 1": "BAN gen 2 ≥ gen 1 (test accuracy)",
    "TA chain ≥ direct KD (small student)": "TA chain ≥ direct KD, small student (test accuracy)",
    "AdaDistill + MSE ≥ ArcFace head (verification)": "AdaDistill ≥ ArcFace head alone (verification)",
    "AdaDistill, no MSE ≥ ArcFace head (verification)": "AdaDistill without MSE ≥ ArcFace head alone (verification)",
    "AdaDistill + MSE ≥ feature KD (verification)": "AdaDistill ≥ feature KD (verification)",
    "QUD at most 0.3 below feature KD (accuracy)": "QUD at most 0.3 points below feature KD (test accuracy)",
    "QUD at most 0.3 below feature KD (verification)": "QUD at most 0.3 points below feature KD (verification)",
}


def test_the_five_seed_targets_are_what_the_four_results_files_give(kd_methods):
    """docs/kd_methods.md, "Five seeds": each target's verdict and means on seeds 0–2 and 0–4, on
    how many of the five seeds it holds, and the per-seed difference's mean ± standard error."""
    rows = by_first_cell(table(section("kd_methods.md", "### Five seeds"), "target"))
    assert set(rows) == set(FIVE_SEED_TARGETS)
    three = {t["target"]: t for t in kd_methods.targets(kd_methods.aggregate(
        kd_methods.merge_runs(load(*MAIN_FILES))))}
    five = {t["target"]: t for t in kd_methods.targets(kd_methods.aggregate(
        kd_methods.merge_runs(load(*MAIN_FILES, "kd_methods/results_seeds_3_4.json"))))}
    for title, (on_three, on_five, seeds, difference) in rows.items():
        a, b = three[FIVE_SEED_TARGETS[title]], five[FIVE_SEED_TARGETS[title]]
        assert b["seeds"] == [0, 1, 2, 3, 4], title
        for cell, t in ((on_three, a), (on_five, b)):
            assert cell.startswith("yes" if t["reached"] else "no"), f"{title}: {cell!r}"
            assert_printed(cell.split(":")[1], *t["values"], where=title)
        assert_printed(seeds, b["seeds_reached"], 5, where=title)
        assert_printed(difference, b["difference"], b["difference_se"], where=title)


def test_the_qud_ablation_is_what_the_two_runs_ablations_give():
    """docs/kd_methods.md, "QUD ablation": each (τ, n) row of the table's run, and the last column
    from the run with the 5-epoch teacher."""
    rows = table(section("kd_methods.md", "## QUD ablation"), "τ")
    main, teacher5 = load("kd_methods/results.json", "kd_methods/results_teacher5.json")
    assert [(numbers(c[0])[0][0], int(c[1])) for c in rows] == [(a["tau"], a["queue"])
                                                              for a in main["qud_ablation"].values()]
    for cells, (key, a) in zip(rows, main["qud_ablation"].items()):
        v = a["verification"]
        values = (100 * a["test_acc"], 100 * v["accuracy"], 100 * v["tar@far=1e-2"], 100 * v["tar@far=1e-3"],
                  a["teacher_alignment"], a["teacher_alignment_centred"],
                  100 * teacher5["qud_ablation"][key]["test_acc"])
        for cell, value in zip(cells[2:], values):
            assert_printed(cell, value, where=key)


def pooled(kd_methods, *files):
    """kd_methods' table of the rows pooled from ``files`` (under docs/), as --chart-from pools them."""
    reports = load(*files)
    return kd_methods.aggregate(kd_methods.merge_runs(reports), reports[-1]["settings"].get("ada_teacher", "ce"))


def assert_run_row(cells, t, where, tar=True, cos=None):
    """A row of the AdaDistill teachers' tables: accuracy and verification (mean ± std), verification
    per seed, TAR@FAR 1e-3 (``tar``: the table has the column) and, where ``cos``, the mean cos(e, f_t)."""
    assert_printed(cells[0], t["test_acc_mean"], t["test_acc_std"], where=where)
    assert_printed(cells[1], t["verification_mean"], t["verification_std"], where=where)
    assert_printed(cells[2], *t["verification_runs"], where=where)
    if tar:
        assert_printed(cells[3], t["tar_far_1e-3_mean"], where=where)
    if cos:
        assert_printed(cells[4], t[cos], where=where)


def test_the_adadistill_teacher_tables_are_what_their_results_files_give(kd_methods):
    """docs/kd_methods.md: AdaDistill from the ArcFace teacher, from the CE teacher's features minus
    their mean and from the CE teacher fine-tuned with an ArcFace head, and the summary of the four."""
    main = pooled(kd_methods, *MAIN_FILES)
    arcface = pooled(kd_methods, "kd_methods/results_ada_teacher_arcface.json")
    centred = pooled(kd_methods, "kd_methods/results_ada_teacher_ce_centred.json")
    fine_tuned = pooled(kd_methods, "kd_methods/results_ada_teacher_ce_arcface.json")
    cos = "teacher_alignment_mean"

    rows = by_first_cell(table(section("kd_methods.md", "#### AdaDistill from an ArcFace teacher"), "run"))
    assert_run_row(rows["teacher: the slide's network, ArcFace head"], arcface["teacher_arcface"], "ArcFace teacher")
    assert_run_row(rows["ArcFace head, no KD (the same run as above)"], arcface["arcface"], "ArcFace head", cos=cos)
    assert_run_row(rows["AdaDistill (α′) + MSE, from the ArcFace teacher"], arcface["adadistill"], "+ MSE", cos=cos)
    assert_run_row(rows["AdaDistill (α′), no MSE, from the ArcFace teacher"], arcface["adadistill_nomse"],
                   "no MSE", cos=cos)

    rows = by_first_cell(table(section("kd_methods.md", "#### AdaDistill from the CE teacher's features"), "run"))
    teacher = load("kd_methods/results_ada_teacher_ce_centred.json")[0]["runs"]
    cells = rows["the CE teacher's embedding, as it is / minus μ"]
    assert_printed(cells[1], centred["teacher"]["verification_mean"], centred["teacher"]["verification_centred_mean"],
                   where="CE teacher")
    minus_mean = [100 * r["rows"]["teacher"]["embedding"]["verification_centred"] for r in teacher]
    assert_printed(cells[2], *centred["teacher"]["verification_runs"], *minus_mean, where="CE teacher")
    assert_run_row(rows["ArcFace head, no KD (the table's)"], main["arcface"], "ArcFace head")
    assert_run_row(rows["AdaDistill (α′) + MSE ← CE − μ"], centred["adadistill"], "+ MSE")
    assert_run_row(rows["AdaDistill (α′), no MSE ← CE − μ"], centred["adadistill_nomse"], "no MSE")

    text = section("kd_methods.md", "#### AdaDistill from the CE teacher fine-tuned")
    rows = by_first_cell(table(text, "run"))
    assert_run_row(rows["teacher: the CE teacher, 3 epochs with an ArcFace head"], fine_tuned["teacher_ce_arcface"],
                   "fine-tuned teacher")
    assert_run_row(rows["ArcFace head, no KD (the table's)"], main["arcface"], "ArcFace head")
    assert_run_row(rows["AdaDistill (α′) + MSE ← CE + ArcFace"], fine_tuned["adadistill"], "+ MSE", cos=cos)
    assert_run_row(rows["AdaDistill (α′), no MSE ← CE + ArcFace"], fine_tuned["adadistill_nomse"], "no MSE", cos=cos)

    rows = by_first_cell(table(text, "AdaDistill's teacher"))
    summary = {"CE (the default)": (main["teacher"]["verification_mean"], main["adadistill"], main["adadistill_nomse"]),
               "CE − μ (`ce-centred`)": (centred["teacher"]["verification_centred_mean"], centred["adadistill"],
                                         centred["adadistill_nomse"]),
               "ArcFace, 15 epochs from scratch (`arcface`)": (arcface["teacher_arcface"]["verification_mean"],
                                                               arcface["adadistill"], arcface["adadistill_nomse"]),
               "CE, then ArcFace for 3 epochs (`ce-arcface`)": (
                   fine_tuned["teacher_ce_arcface"]["verification_mean"], fine_tuned["adadistill"],
                   fine_tuned["adadistill_nomse"])}
    assert set(rows) == set(summary)
    for title, (embedding, with_mse, without) in summary.items():
        assert_printed(rows[title][0], embedding, where=title)
        assert_printed(rows[title][1], with_mse["verification_mean"], where=title)
        assert_printed(rows[title][2], without["verification_mean"], where=title)


def test_the_ban_budget_table_is_what_its_four_results_files_give(kd_methods):
    """docs/kd_methods.md, "Why": BAN's generations at 5 and at 15 epochs, each generation from new
    weights / from generation 1's: mean ± std, per seed (new weights), verification, TAR@FAR 1e-3."""
    rows = table(section("kd_methods.md", "### Why"), "budget")
    runs = {"5 epochs": (pooled(kd_methods, *MAIN_FILES), pooled(kd_methods, "kd_methods/results.json")),
            "15 epochs, cosine": (pooled(kd_methods, "kd_methods/results_ban_new_init_15_epochs.json"),
                                  pooled(kd_methods, "kd_methods/results_ban_15_epochs.json"))}
    budget = None
    for cells in rows:
        budget = cells[0] or budget
        new, same = runs[budget]
        gen = {"gen 1 (= the student alone)": "ban_gen1", "gen 2, new weights / gen 1's": "ban_gen2",
               "gen 3, new weights / gen 1's": "ban_gen3"}[cells[1]]
        both = [new[gen]] if gen == "ban_gen1" else [new[gen], same[gen]]
        where = f"{budget}, {gen}"
        assert_printed(cells[2], *[v for t in both for v in (t["test_acc_mean"], t["test_acc_std"])], where=where)
        assert_printed(cells[3], *new[gen]["test_acc_runs"], where=where)
        assert_printed(cells[4], *[v for t in both for v in (t["verification_mean"], t["verification_std"])],
                       where=where)
        assert_printed(cells[5], *[t["tar_far_1e-3_mean"] for t in both], where=where)
    assert [c[1] for c in rows].count("gen 2, new weights / gen 1's") == 2


def assert_per_seed_table(rows, columns, where):
    """A table of rows "0", "1", "2" (each seed's test accuracy) and "mean ± std", one column per
    kd_methods row (``columns``: the aggregated rows, in the table's order)."""
    for cells in rows:
        if cells[0] == "mean ± std":
            for cell, t in zip(cells[1:], columns, strict=True):
                assert_printed(cell, t["test_acc_mean"], t["test_acc_std"], where=f"{where}, mean")
        else:
            seed = int(cells[0])
            for cell, t in zip(cells[1:], columns, strict=True):
                assert_printed(cell, t["test_acc_runs"][t["seeds"].index(seed)], where=f"{where}, seed {seed}")
    assert [c[0] for c in rows] == ["0", "1", "2", "mean ± std"]


def test_the_ta_and_ban_per_seed_tables_are_what_their_results_files_give(kd_methods):
    """docs/kd_methods.md, "Why": the TA chain's small students and assistants seed by seed
    (results_ta.json; the 5-epoch assistant's chain from the full run), and BAN's generations at
    15 epochs (results_ban_15_epochs.json)."""
    text = section("kd_methods.md", "### Why")
    ta, full = pooled(kd_methods, "kd_methods/results_ta.json"), pooled(kd_methods, "kd_methods/results.json")
    assert_per_seed_table(table(text, "seed | small alone"),
                          [ta["ta_small_alone"], ta["ta_small_kd"], full["ta_small_ta"], ta["ta_small_ta"],
                           ta["ta_assistant"]], "TA chain")
    ban = pooled(kd_methods, "kd_methods/results_ban_15_epochs.json")
    assert_per_seed_table(table(text, "seed | gen 1 (= the student alone)"),
                          [ban["ban_gen1"], ban["ban_gen2"], ban["ban_gen3"]], "BAN, 15 epochs")


def test_the_mse_weight_table_rows_with_results_files_are_what_they_give(kd_methods):
    """docs/kd_methods.md, "Why": AdaDistill's MSE weight, the rows of the two full runs (teachers of
    15 and 5 epochs) and of the 5-epoch teacher's run without the MSE; the scratch rows have no file."""
    rows = {(c[0], c[1]): c[3:] for c in table(section("kd_methods.md", "### Why"), "MSE weight λ_a")}
    main = pooled(kd_methods, "kd_methods/results.json")
    teacher5 = pooled(kd_methods, "kd_methods/results_teacher5.json")
    nomse5 = pooled(kd_methods, "kd_methods/results_adadistill_nomse_teacher5.json")
    runs = {("0.1 (the default)", "15 epochs"): main["adadistill"],
            ("0: the paper's loss, no MSE", "15 epochs"): main["adadistill_nomse"],
            ("ArcFace head, no KD", "–"): main["arcface"],
            ("0.1", "5 epochs"): teacher5["adadistill"],
            ("0, no MSE", "5 epochs"): nomse5["adadistill_nomse"],
            ("ArcFace head, no KD", "– (one thread)"): teacher5["arcface"]}
    for key, t in runs.items():
        accuracy, verification, tar, cos = rows[key]
        assert_printed(accuracy, t["test_acc_mean"], t["test_acc_std"], where=str(key))
        assert_printed(verification, t["verification_mean"], t["verification_std"], where=str(key))
        assert_printed(tar, t["tar_far_1e-3_mean"], where=str(key))
        assert_printed(cos, t["teacher_alignment_mean"], where=str(key))
    assert all("scratch" in k[0] or k in runs or k == ("0.5 (the hands-on's λ)", "5 epochs") for k in rows)


def test_the_teachers_budget_table_is_what_the_two_full_runs_give(kd_methods):
    """docs/kd_methods.md, "The teacher's budget": each target's verdict and means in the run with
    the 5-epoch teacher (results_teacher5.json) and in the full run (results.json, BAN from gen 1's
    weights, the 5-epoch assistant), and the TA chain with today's 15-epoch assistant."""
    rows = by_first_cell(table(section("kd_methods.md", "## The teacher's budget"), "target"))
    runs = [{t["target"]: t for t in kd_methods.targets(pooled(kd_methods, f"kd_methods/{f}"))}
            for f in ("results_teacher5.json", "results.json")]
    single = {"RKD + KD ≥ KD": "RKD + KD ≥ KD alone (test accuracy)",
              "BAN gen 2 ≥ gen 1": "BAN gen 2 ≥ gen 1 (test accuracy)",
              "TA chain ≥ direct KD": "TA chain ≥ direct KD, small student (test accuracy)",
              "AdaDistill ≥ ArcFace (verification)": "AdaDistill ≥ ArcFace head alone (verification)",
              "QUD at most 0.3 below feature KD (accuracy)": "QUD at most 0.3 points below feature KD (test accuracy)"}
    for title, target in single.items():
        for cell, run in zip(rows[title], runs, strict=True):
            t = run[target]
            assert cell.startswith("yes" if t["reached"] else "no"), f"{title}: {cell!r}"
            assert_printed(cell.split(":")[1], *t["values"], where=title, prefix=True)
    for cell, run in zip(rows["DML peer 1, peer 2 ≥ alone"], runs, strict=True):
        peer1, peer2 = (run[f"DML peer {k} ≥ the student alone (test accuracy)"] for k in (1, 2))
        assert_printed(cell, peer1["values"][0], peer2["values"][0], peer1["values"][1], where="DML")
        verdicts = re.findall(r"\b(yes|no)\b", cell)
        assert verdicts == ["yes" if t["reached"] else "no" for t in (peer1, peer2)], cell
    now = {t["target"]: t for t in kd_methods.targets(pooled(kd_methods, *MAIN_FILES))}
    chain = rows["TA chain ≥ direct KD"][1].split("(")[1]
    assert_printed(chain, 15, *now[single["TA chain ≥ direct KD"]]["values"], where="TA chain, 15-epoch assistant")


# --------------------------------------------------------------------------- distillation.md: sections 7-11

# each row of the sections' small tables → the rows of kd_methods' table it repeats ("a / b" cells: two
# rows), and the files they pool from
SECTION_ROWS = {
    "## 7. Relation": {"student alone": ["student"], "logit KD": ["kd"], "RKD + logit KD": ["rkd"]},
    "## 8. Offline": {
        "student alone (= BAN generation 1)": ["ban_gen1"], "DML, peer 1 / peer 2": ["dml_peer1", "dml_peer2"],
        "BYOT, deepest exit": ["byot"],
        "BAN generation 2 / 3, each from new random weights": ["ban_gen2", "ban_gen3"],
        "BAN generation 2 / 3, from generation 1's initial weights (`--ban-init same`)":
            ("kd_methods/results.json", ["ban_gen2", "ban_gen3"])},
    "## 9. Multi-step": {
        "small student alone": ["ta_small_alone"], "small ← teacher (direct KD)": ["ta_small_kd"],
        "small ← assistant ← teacher (the assistant: 15 epochs of logit KD, 99.17 %)": ["ta_small_ta"],
        "PocketNet (hands-on student, teacher checkpoints)": ["pocketnet"],
        "logit KD from the final teacher, for comparison": ["kd"]},
    "## 10. AdaDistill": {
        "ArcFace head (m1 = 0.5, s = 16), no KD": ["arcface"],
        "AdaDistill (α′) + MSE, weight λ_a = 0.1": ["adadistill"],
        "AdaDistill (α′), the paper's loss without MSE": ["adadistill_nomse"],
        "feature KD (MSE), for comparison": ["fkd"]},
    "## 11. QUD": {"QUD (τ = 2, n = 1,024)": ["qud"], "feature KD (MSE)": ["fkd"]},
}


@pytest.mark.parametrize("heading", SECTION_ROWS)
def test_the_method_sections_repeat_the_kd_methods_table(kd_methods, heading):
    """docs/distillation.md, sections 7-11: each "measured row" is kd_methods' row (mean ± std of
    accuracy and verification, TAR@FAR 1e-3 where shown), from the files it names."""
    rows = by_first_cell(table(section("distillation.md", heading), "run"))
    pooled = kd_methods.aggregate(kd_methods.merge_runs(load(*MAIN_FILES)))
    for title, source in SECTION_ROWS[heading].items():
        summary = pooled if isinstance(source, list) else kd_methods.aggregate(kd_methods.merge_runs(load(source[0])))
        keys = source if isinstance(source, list) else source[1]
        cells = [c for c in rows[title] if c not in ("yes", "no")]       # section 11's labels column
        ts = [summary[k] for k in keys]
        assert_printed(cells[0], *[v for t in ts for v in (t["test_acc_mean"], t["test_acc_std"])], where=title)
        assert_printed(cells[1], *[v for t in ts for v in (t["verification_mean"], t["verification_std"])],
                       where=title)
        if len(cells) > 2:
            assert_printed(cells[2], *[t["tar_far_1e-3_mean"] for t in ts], where=title)
    if heading == "## 11. QUD":      # the paper's τ, from the ablation
        a = load("kd_methods/results.json")[0]["qud_ablation"]["tau=0.1,n=1024"]
        cells = rows["QUD, τ = 0.1 (the paper's; ablation, one seed)"]
        assert_printed(cells[1], 100 * a["test_acc"], where="QUD τ = 0.1")
        assert_printed(cells[2], 100 * a["verification"]["accuracy"], where="QUD τ = 0.1")


# --------------------------------------------------------------------------- distillation.md: Hinton

HINTON_ROWS = {"teacher": "teacher 1200-1200, dropout + jitter + max-norm (c = 1)",
               "student": "student 800-800 alone", "kd": "student 800-800, distilled (T = 20, λ = 0.9)"}


def errors(report, run):
    return [r[run]["test_errors"] for r in report["runs"]]


def mean_std(values):
    """Mean and sample std, as the examples report them (``common.sample_std``)."""
    return float(np.mean(values)), load_example("common").sample_std(values)


def assert_seeds_and_means(rows, titles, groups):
    """A table of each seed's test errors and their mean, one (seeds, mean) pair of columns per group
    of results files, with a last row of distilled / alone ratios (per seed, and of the means).
    ``titles``: {run: its row}; ``groups``: [(results files, the index of its seeds column)]."""
    def seed_errors(reports, run):
        return [e for report in reports for e in errors(report, run)]

    for run, title in titles.items():
        for reports, col in groups:
            seeds_cell, mean_cell = rows[title][col:col + 2]
            assert_printed(seeds_cell, *seed_errors(reports, run), where=title)
            assert_printed(mean_cell, np.mean(seed_errors(reports, run)), where=title)
    for reports, col in groups:
        kd, alone = seed_errors(reports, "kd"), seed_errors(reports, "student")
        seeds_cell, mean_cell = rows["distilled / alone"][col:col + 2]
        assert_printed(seeds_cell, *(k / s for k, s in zip(kd, alone)), where="ratio per seed")
        assert_printed(mean_cell, np.mean(kd) / np.mean(alone), where="ratio")


def test_the_hinton_table_is_what_its_two_results_files_give():
    """docs/distillation.md, "The table": per seed and mean ± std of the test errors on one and on
    two BLAS threads, and the distilled / alone ratios (per seed, and of the means)."""
    rows = by_first_cell(table(section("distillation.md", "### The table"), "run"))
    one, two = load("hinton/results_one_thread.json", "hinton/results.json")
    for report in (one, two):
        assert report["settings"]["seeds"] == [0, 1, 2] and report["settings"]["teacher_max_norm"] == 1.0
    for run, title in HINTON_ROWS.items():
        cells = rows[title]
        for report, (mean_cell, seeds_cell) in ((one, cells[1:3]), (two, cells[3:5])):
            assert_printed(mean_cell, *mean_std(errors(report, run)), where=title)
            assert_printed(seeds_cell, *errors(report, run), where=title)
    ratio = rows["distilled / alone"]
    for report, (mean_cell, seeds_cell) in ((one, ratio[1:3]), (two, ratio[3:5])):
        kd, alone = errors(report, "kd"), errors(report, "student")
        assert_printed(mean_cell, np.mean(kd) / np.mean(alone), where="ratio")
        assert_printed(seeds_cell, *(k / s for k, s in zip(kd, alone)), where="ratio per seed")
        assert report["kd_over_student"] == pytest.approx(np.mean(kd) / np.mean(alone))


def test_the_hinton_timed_rerun_repeats_the_table_and_its_times_are_the_files():
    """docs/distillation.md, "The table": the two-thread default run timed again repeats the
    table's run (every seed's test errors after every epoch), and the paragraph's times and
    speed ratios are the two files'."""
    table_run, timed, usual = load("hinton/results.json", "hinton/timed_default_run.json",
                                   "hinton/results_no_max_norm_two_threads.json")   # the last: a usual day
    assert {**timed["settings"], "out": None} == {**table_run["settings"], "out": None}
    for a, b in zip(table_run["runs"], timed["runs"], strict=True):
        for run in ("teacher", "student", "kd"):
            assert [r["test_acc"] for r in a[run]["history"]] == [r["test_acc"] for r in b[run]["history"]]
    text = " ".join(section("distillation.md", "### The table").split())
    start = text.index("**Timed again on another slow day")
    paragraph = text[start:text.index("was not measured", start)]
    mean = {(name, run): report["summary"][run]["train_seconds_mean"]
            for name, report in (("table", table_run), ("timed", timed), ("usual", usual))
            for run in ("teacher", "student")}
    after_files = paragraph[paragraph.index("1,573"):]
    assert_printed(paragraph[:paragraph.index("within")], timed["wall_seconds"] / 60, where="the heading's minutes")
    assert_printed(after_files[:after_files.index("per seed")], timed["wall_seconds"], *timed["wall_seconds_per_seed"],
                   where="the run's seconds")
    days = after_files[after_files.index("trained in"):after_files.index(": the day's speed")]
    assert_printed(days, mean["timed", "student"], mean["table", "student"], mean["usual", "student"],
                   mean["timed", "teacher"], mean["table", "teacher"], mean["usual", "teacher"],
                   mean["table", "student"] / mean["timed", "student"],
                   mean["table", "teacher"] / mean["timed", "teacher"], where="the days' speeds")
    gain = {run: mean["table", run] / mean["timed", run] for run in ("teacher", "student")}
    extra = gain["teacher"] / gain["student"]
    assert_printed(paragraph[paragraph.index("teacher's extra"):paragraph.index("% is in line")], 100 * (extra - 1),
                   where="the teacher's gain beyond the day's")
    rest = {name: [w - sum(r[run]["train_seconds"] for run in ("teacher", "student", "kd"))
                   for w, r in zip(report["wall_seconds_per_seed"], report["runs"])]
            for name, report in (("table", table_run), ("timed", timed))}
    assert_printed(paragraph[paragraph.index("The rest of each seed"):paragraph.index("in all")],
                   min(rest["timed"]), max(rest["timed"]), min(rest["table"]), max(rest["table"]),
                   sum(rest["table"]) - sum(rest["timed"]), where="the rest of each seed", prefix=True)


def test_the_hinton_same_day_table_is_what_its_two_results_files_give():
    """docs/distillation.md, "The weight constraint": the same-day runs without the constraint
    and with it, one BLAS thread."""
    rows = by_first_cell(table(section("distillation.md", "### The weight constraint"), "run, one BLAS thread"))
    with_c, = load("hinton/results_one_thread.json")
    without = json.loads((DOCS / "hinton/tried/no_max_norm_one_thread_same_day.json").read_text())
    assert all(s["teacher_max_norm"] == 0 for s in without["settings"])
    assert [r["seed"] for r in without["runs"]] == [0, 1, 2]
    titles = {"teacher": "teacher", "student": "student alone (the same run in both)", "kd": "distilled student"}
    assert_seeds_and_means(rows, titles, [([without], 0), ([with_c], 2)])


def test_the_hinton_choice_of_c_is_what_the_tries_file_gives():
    """docs/distillation.md, "The weight constraint": seed 0's teacher, its largest logit and its
    distilled student for each c tried (none: the same-day run without the constraint, whose
    logit is the c = 3.5 run's, which never bound)."""
    text = section("distillation.md", "### The weight constraint")
    rows = by_first_cell(table(text, "teacher's constraint (after every step)"))
    tried = json.loads((DOCS / "hinton/tried/max_norm_teacher_seed0.json").read_text())["runs"]
    without = json.loads((DOCS / "hinton/tried/no_max_norm_one_thread_same_day.json").read_text())["runs"][0]
    by_c = {(r["c"], r["where"]): r for r in tried}
    expected = {"none (`--teacher-max-norm 0`)": (without["teacher"]["test_errors"], by_c[3.5, "hidden"],
                                                  without["kd"]["test_errors"]),
                "c = 3.5, the hidden layers only": (None, by_c[3.5, "hidden"], None),
                "c = 2, every layer": (None, by_c[2.0, "all"], None),
                "c = 1, every layer (now the default)": (None, by_c[1.0, "all"], None),
                "c = 0.5, every layer": (None, by_c[0.5, "all"], None)}
    assert set(rows) == set(expected)
    for title, (teacher, run, kd) in expected.items():
        assert_printed(rows[title][0], teacher if teacher is not None else run["teacher_errors_per_epoch"][-1],
                       where=title)
        assert_printed(rows[title][1], run["max_abs_teacher_logit"], where=title)
        assert_printed(rows[title][2], kd if kd is not None else run["kd_errors_per_epoch"][-1], where=title)
    assert by_c[3.5, "hidden"]["teacher_errors_per_epoch"][-1] == without["teacher"]["test_errors"]


@pytest.mark.parametrize("first_cell, file, columns", [
    ("run | paper | minikd, 3 seeds, one BLAS thread", "hinton/results_no_max_norm_one_thread.json", (2, 3, 5)),
    ("run | minikd, 3 seeds, two threads", "hinton/results_no_max_norm_two_threads.json", (1, 2, 3))])
def test_the_hinton_tables_without_the_constraint_are_what_their_files_give(first_cell, file, columns):
    """docs/distillation.md, "Without the weight constraint": mean ± std, per seed and training time
    of each run, and the ratio of the means, on one and on two BLAS threads."""
    rows = by_first_cell(table(section("distillation.md", "### Without the weight constraint"), first_cell))
    report, = load(file)
    assert report["settings"]["seeds"] == [0, 1, 2] and not report["settings"].get("teacher_max_norm")
    titles = {"teacher": "teacher 1200-1200, dropout + jitter", "student": "student 800-800 alone",
              "kd": "student 800-800, distilled (T = 20, λ = 0.9)"}
    mean_col, seeds_col, time_col = (c - 1 for c in columns)
    for run, title in titles.items():
        cells = rows[title]
        assert_printed(cells[mean_col], *mean_std(errors(report, run)), where=title)
        assert_printed(cells[seeds_col], *errors(report, run), where=title)
        assert_printed(cells[time_col], report["summary"][run]["train_seconds_mean"], where=title)
    kd, alone = errors(report, "kd"), errors(report, "student")
    assert_printed(rows["distilled / alone"][mean_col], np.mean(kd) / np.mean(alone), where="ratio")


def test_the_hinton_five_seed_table_is_what_its_four_results_files_give():
    """docs/distillation.md, "Five seeds on each thread count": each seed's test errors and their
    mean, on one and on two BLAS threads, and the distilled / alone ratios (per seed, and of the
    means)."""
    rows = by_first_cell(table(section("distillation.md", "### Five seeds on each thread count"),
                               "run, test errors"))
    one = load("hinton/results_one_thread.json", "hinton/results_one_thread_seeds_3_4.json")
    two = load("hinton/results.json", "hinton/results_seeds_3_4.json")
    for a, b in (one, two):
        assert a["settings"]["seeds"] + b["settings"]["seeds"] == [0, 1, 2, 3, 4]
        assert a["settings"]["teacher_max_norm"] == b["settings"]["teacher_max_norm"] == 1.0
    assert one[1]["platform"]["OPENBLAS_NUM_THREADS"] == "1" and two[1]["platform"]["OPENBLAS_NUM_THREADS"] != "1"

    titles = {"teacher": "teacher", "student": "student alone", "kd": "distilled student"}
    assert_seeds_and_means(rows, titles, [(one, 0), (two, 2)])
    # the one-thread seeds 3, 4 ran on a later day, beside a rerun of seed 0 that gave the table's errors again
    rerun, = load("hinton/tried/one_thread_seed0_same_day_as_seeds_3_4.json")
    assert [errors(rerun, run) for run in titles] == [errors(one[0], run)[:1] for run in titles]
    assert rerun["platform"] == one[1]["platform"]


def test_the_hinton_validation_tables_are_what_their_file_gives():
    """docs/distillation.md, "Tried on a validation split": the validation errors of each student at
    each learning rate (read from the header), and of the teacher and its distilled student after
    30 and 50 teacher epochs, with the student alone's errors that the ratio's title names."""
    text = section("distillation.md", "### Tried on a validation split")
    runs = json.loads((DOCS / "hinton/tried/validation_split_seeds_0_1.json").read_text())["runs"]
    assert {r["seed"] for r in runs.values()} == {0, 1} and {r["threads"] for r in runs.values()} == {"1"}

    def at(key, lr):
        found = [r["val_errors"] for r in runs[key]["runs"] if r["lr"] == lr]
        return found[0] if found else None

    first = "learning rate (Adam, cosine), validation errors of 10,000"
    header = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    lrs = [float(c) for c in header.strip().strip("|").split("|")[1:]]
    rows = by_first_cell(table(text, first))
    for title, keys in (("student alone, seeds 0, 1", ("alone_seed0", "alone_seed1")),
                        ("distilled student (the 30-epoch teacher), seed 0", ("kd_teacher30_seed0",))):
        assert len(rows[title]) == len(lrs)
        for cell, lr in zip(rows[title], lrs):
            values = [at(k, lr) for k in keys]
            if cell == "":
                assert values == [None] * len(keys), f"{title} at {lr}: run but not printed"
            else:
                assert_printed(cell, *values, where=f"{title} at {lr}")
    assert runs["kd_teacher30_seed0"]["teacher_epochs"] == 30

    epochs = by_first_cell(table(text, "teacher's epochs, validation errors of 10,000 (seeds 0, 1)"))
    ratio_title = next(t for t in epochs if t.startswith("distilled / alone"))
    alone = [at("alone_seed0", 1e-3), at("alone_seed1", 1e-3)]
    assert_printed(ratio_title.split(":")[-1], *alone, where="the student alone in the ratio's title")
    for col, e in enumerate((30, 50)):
        keys = [f"kd_teacher{e}_seed{seed}" for seed in (0, 1)]
        assert [runs[k]["teacher_epochs"] for k in keys] == [e, e]
        kd = [at(k, 1e-3) for k in keys]
        assert_printed(epochs["teacher"][col], *(runs[k]["teacher_val_errors"] for k in keys), where=f"teacher, {e}")
        assert_printed(epochs["distilled student (lr 1e-3)"][col], *kd, where=f"distilled, {e} epochs")
        assert_printed(epochs[ratio_title][col], np.mean(kd) / np.mean(alone), where=f"ratio, {e} epochs")


def test_the_hinton_teacher_recipe_table_is_what_its_files_give():
    """docs/distillation.md, "Tried on a validation split": the validation errors of each teacher
    and of its distilled student, seeds 0 and 1, and the students' mean; each row's change read
    from the runs' recorded settings (the default's row from the first validation file)."""
    text = section("distillation.md", "### Tried on a validation split")
    rows = by_first_cell(table(text, "the teacher (30 epochs), validation errors of 10,000"))
    tried = json.loads((DOCS / "hinton/tried/validation_split_teacher_seeds_0_1.json").read_text())["runs"]
    first = json.loads((DOCS / "hinton/tried/validation_split_seeds_0_1.json").read_text())["runs"]
    default = {"teacher_optimizer": "adam", "teacher_lr": 0.001, "teacher_dropout": 0.2, "teacher_max_norm": 1.0}
    changes = {"the default: Adam lr 1e-3, dropout 0.2, max-norm c = 1": ("kd_teacher30_seed{}", {}),
               "c = 0.75": ("kd_max_norm0.75_seed{}", {"teacher_max_norm": 0.75}),
               "c = 1.5": ("kd_max_norm1.5_seed{}", {"teacher_max_norm": 1.5}),
               "dropout 0.5 (Hinton et al. 2012's, on the hidden units)": ("kd_dropout0.5_seed{}",
                                                                           {"teacher_dropout": 0.5}),
               "SGD + momentum 0.9, lr 0.05, dropout 0.3 (`--teacher-optimizer sgd --teacher-dropout 0.3`)":
                   ("kd_sgd_dropout0.3_seed{}", {"teacher_optimizer": "sgd", "teacher_lr": 0.05,
                                                 "teacher_dropout": 0.3})}
    assert set(rows) == set(changes) and len(tried) == 2 * (len(changes) - 1)
    for title, (key, change) in changes.items():
        runs = [(first if not change else tried)[key.format(seed)] for seed in (0, 1)]
        assert [r["seed"] for r in runs] == [0, 1] and {r["threads"] for r in runs} == {"1"}
        assert {r["teacher_epochs"] for r in runs} == {30}
        if change:
            assert all({k: r[k] for k in default} == {**default, **change} for r in runs), title
        kd = [next(x["val_errors"] for x in r["runs"] if x["lr"] == 1e-3) for r in runs]
        assert_printed(rows[title][0], *(r["teacher_val_errors"] for r in runs), where=f"{title}: teacher")
        assert_printed(rows[title][1], *kd, where=f"{title}: distilled")
        assert_printed(rows[title][2], np.mean(kd), where=f"{title}: distilled mean")


def test_the_hinton_50_epoch_teacher_table_is_what_its_files_give():
    """docs/distillation.md, "Tried on a validation split": five seeds on one BLAS thread with the
    30-epoch teacher (the five-seed table's files) and with the 50-epoch one; the student alone,
    which does not depend on the teacher, made the same errors on both days. Also the run's times
    in the prose, and the example's docstring's means and ratio."""
    text = section("distillation.md", "### Tried on a validation split")
    rows = by_first_cell(table(text, "one BLAS thread, test errors"))
    thirty = load("hinton/results_one_thread.json", "hinton/results_one_thread_seeds_3_4.json")
    fifty = load("hinton/tried/teacher50_one_thread.json", "hinton/tried/teacher50_one_thread_seeds_3_4.json")
    for reports, epochs in ((thirty, 30), (fifty, 50)):
        assert [s for r in reports for s in r["settings"]["seeds"]] == [0, 1, 2, 3, 4]
        assert {r["settings"]["teacher_epochs"] for r in reports} == {epochs}
        assert {r["settings"]["teacher_max_norm"] for r in reports} == {1.0}
    assert {r["platform"]["thread_variables"]["OPENBLAS_NUM_THREADS"] for r in fifty} == {"1"}
    titles = {"teacher": "teacher", "student": "student alone", "kd": "distilled student"}
    assert_seeds_and_means(rows, titles, [(thirty, 0), (fifty, 2)])
    assert [e for r in fifty for e in errors(r, "student")] == [e for r in thirty for e in errors(r, "student")]

    times = " ".join(text.split())
    times = times[times.index("cores (") + 7:times.index("so not the example")]
    walls = [r["wall_seconds"] / 60 for r in fifty]
    seeds = [s for r in fifty for s in r["wall_seconds_per_seed"]]
    teacher = [run["teacher"]["train_seconds"] for r in fifty for run in r["runs"]]
    assert_printed(times, *walls, min(seeds), max(seeds), 50, min(teacher), max(teacher), where="the run's times")

    doc = load_example("hinton_mnist").__doc__
    means = [np.mean([e for r in fifty for e in errors(r, run)]) for run in ("teacher", "student", "kd")]
    sentence = " ".join(doc[doc.index("``--teacher-epochs 50``"):].split())
    sentence = sentence[sentence.index("gave"):]
    assert_printed(sentence, *means, means[2] / means[1], where="the example's docstring", prefix=True)


def test_the_rkd_rerun_after_the_distance_fix_is_what_its_results_file_gives(kd_methods):
    """docs/kd_methods.md, "RKD again, after the distance fix": each seed's teacher, logit KD and RKD + KD,
    their difference, the means ± std and the mean difference ± its standard error, from the one file."""
    text = section("kd_methods.md", "### RKD again, after the distance fix")
    report = load("kd_methods/results_rkd_differences.json")[0]
    t = kd_methods.aggregate(kd_methods.merge_runs([report]))
    rows = table(text, "seed")
    assert [c[0] for c in rows] == ["0", "1", "2", "3", "4", "mean ± std"]
    diffs = []
    for cells in rows[:-1]:
        seed = int(cells[0])
        acc = {name: t[name]["test_acc_runs"][t[name]["seeds"].index(seed)] for name in ("teacher", "kd", "rkd")}
        diffs.append(acc["rkd"] - acc["kd"])
        assert_printed(" ".join(cells[1:4]), acc["teacher"], acc["kd"], acc["rkd"], where=f"seed {seed}")
        assert_printed(cells[4], diffs[-1], where=f"seed {seed}, difference")
    cells = rows[-1]
    for cell, name in zip(cells[1:4], ("teacher", "kd", "rkd"), strict=True):
        assert_printed(cell, t[name]["test_acc_mean"], t[name]["test_acc_std"], where=f"mean, {name}")
    se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs)))
    assert_printed(cells[4], np.mean(diffs), se, where="mean difference", prefix=True)
    target = next(x for x in kd_methods.targets(t) if x["target"].startswith("RKD + KD ≥ KD"))
    assert target["seeds_reached"] == 4 and target["seeds"] == [0, 1, 2, 3, 4]
    assert abs(target["difference"] - np.mean(diffs)) < 1e-9 and abs(target["difference_se"] - se) < 1e-9
    assert "ahead on four seeds of five, by 0.10 ± 0.05 points" in " ".join(text.split())
    assert_printed(text.split("It also verifies better: ")[1].split(".\n")[0].split(" against ")[0],
                   t["rkd"]["verification_mean"], t["rkd"]["verification_std"], where="verification, RKD")
    assert all(r["seed"] == s for r, s in zip(report["runs"], range(5), strict=True))
