"""The docs' code blocks run: each ```python block of a page, in order, in one namespace."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_code_blocks_of_the_page_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text())
    if not blocks:
        pytest.skip(f"{page.name} has no python code blocks")
    monkeypatch.chdir(tmp_path)  # pages may write files
    namespace = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:  # say which block failed
            raise AssertionError(f"{page.name}, code block {i} failed: {e!r}\n{code}") from e
