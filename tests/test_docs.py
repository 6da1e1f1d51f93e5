"""The docs' code blocks run: each ```python block of a page, in order, in one namespace."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# pages with runnable code (performance.md, say, holds measurements only)
DOCS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if BLOCK.search(p.read_text())]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_code_blocks_of_the_page_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text())
    monkeypatch.chdir(tmp_path)  # pages may write files
    namespace = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:  # say which block failed
            raise AssertionError(f"{page.name}, code block {i} failed: {e!r}\n{code}") from e
