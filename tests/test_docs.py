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


# ------------------------------------------------------- API references, on the repository and on the site

API_REFERENCE = re.compile(r"\]\[(minikd(?:\.\w+)+)\]")
API_DEFINITION = re.compile(r"^\[(minikd(?:\.\w+)+)\]:[ \t]+(\S+)[ \t]*$", re.M)


def _source_of(name: str) -> Path:
    """The file that defines the object ``minikd.a.b`` (its module imported, then attributes)."""
    import importlib
    import inspect

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve()
    raise AssertionError(name)


def test_every_api_reference_is_a_link_to_its_code_on_the_repository_too():
    """A new user's trial: the pages' mkdocstrings references, [`minikd.Tensor`][minikd.Tensor], were
    links on the site only; on GitHub they showed as bracketed text. Each page now defines every
    reference it uses, as a link to the file that defines the object (the site's hook drops these
    definitions: test_the_site_hook_drops_the_definitions_so_references_reach_the_api_pages)."""
    pages = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if API_REFERENCE.search(
        p.read_text())]
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text()
        used, defined = set(API_REFERENCE.findall(text)), dict(API_DEFINITION.findall(text))
        assert used == set(defined), f"{page.name}: used but not defined {used - set(defined)}, defined but " \
                                     f"not used {set(defined) - used}"
        for name, target in defined.items():
            assert (page.parent / target).resolve() == _source_of(name), f"{page.name}: {name} → {target}"


def test_the_site_hook_drops_the_definitions_so_references_reach_the_api_pages(tmp_path):
    spec = importlib.util.spec_from_file_location("repository_links", ROOT / "docs/hooks/repository_links.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = ("See [`kd_loss`][minikd.kd.kd_loss] and [the code](../minikd/kd/logits.py).\n\n"
            "```text\n[minikd.kd.kd_loss]: ../minikd/kd/logits.py\n```\n"
            "[minikd.kd.kd_loss]: ../minikd/kd/logits.py\n")
    out = hook.rewrite(page, "index.md", ROOT / "docs")
    assert out == ("See [`kd_loss`][minikd.kd.kd_loss] and [the code](api/kd.md).\n\n"
                   "```text\n[minikd.kd.kd_loss]: ../minikd/kd/logits.py\n```\n")  # a code block keeps its text
