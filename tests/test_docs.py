"""The docs' code blocks run: each ```python block of a page, in order, in one namespace.

A page whose code needs an optional extra says so in a comment, ``<!-- needs: onnx torch -->``;
without those modules its blocks are skipped, with the reason, instead of failing. One block that
needs more than the rest of its page says so just above it, ``<!-- block needs: torch -->``:
without those modules that block alone is left out (the later blocks must not depend on it).
"""

import importlib.util
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
BLOCK_WITH_NEEDS = re.compile(r"(?:<!-- block needs: ([\w ]+) -->\s*\n)?```python\n(.*?)```", re.S)
NEEDS = re.compile(r"<!-- needs: ([\w ]+) -->")
# pages with runnable code (performance.md, say, holds measurements only)
DOCS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if BLOCK.search(p.read_text())]


def run_page(page, tmp_path, monkeypatch):
    """Run every ```python block of ``page`` in order, in one namespace; name the block that fails."""
    text = page.read_text()
    needs = NEEDS.search(text)
    missing = [m for m in (needs.group(1).split() if needs else []) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{page.name} needs {', '.join(missing)} (an optional extra)")
    blocks = BLOCK_WITH_NEEDS.findall(text)
    monkeypatch.chdir(tmp_path)  # pages may write files
    namespace = {"__name__": f"docs_{page.stem}"}
    left_out = []
    for i, (block_needs, code) in enumerate(blocks):
        if any(importlib.util.find_spec(m) is None for m in block_needs.split()):
            left_out.append(i)
            continue
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:  # say which block failed
            raise AssertionError(f"{page.name}, code block {i} failed: {e!r}\n{code}") from e
    return left_out


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_code_blocks_of_the_page_run(page, tmp_path, monkeypatch):
    run_page(page, tmp_path, monkeypatch)


def test_a_block_that_needs_a_missing_module_is_left_out_and_the_rest_runs(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n<!-- block needs: no_such_module_here -->\n```python\n"
                    "import no_such_module_here\n```\n\n```python\nassert x == 1\n```\n")
    assert run_page(page, tmp_path, monkeypatch) == [1]


def test_a_broken_block_fails_and_is_named(tmp_path, monkeypatch):
    page = tmp_path / "broken.md"
    page.write_text("# A page\n\n```python\nx = 1\n```\n\ntext\n\n```python\nassert x == 2, 'the docs lie'\n```\n")
    with pytest.raises(AssertionError, match=r"broken.md, code block 1 failed: AssertionError\('the docs lie'\)"):
        run_page(page, tmp_path, monkeypatch)


def test_the_gradcheck_harness_works_outside_pytest_too():
    """docs/adding_an_op.md calls its test directly, as a script from the repository's root: the
    harness registers the stand-in device itself (it once did so only through conftest.py, and the
    page's last block failed with "unknown device 'standin'")."""
    import subprocess
    import sys

    code = ("import numpy as np, minikd as mk\nfrom tests.util import check_grad\n"
            "assert check_grad(mk.functional.relu, np.array([-1.0, 0.5, 2.0]))\nprint('ok')")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MINIKD_TEST_DEVICE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
