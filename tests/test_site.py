"""The documentation site builds strictly, renders its maths offline, and the check can fail.

``mkdocs build --strict`` (mkdocs.yml, the ``docs`` extra) turns every warning into an error:
a dead link, a missing anchor, an unknown API reference. Skipped where the extra is not installed.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")

ROOT = Path(__file__).resolve().parents[1]
# a <script> or <link> that loads from another host ("https://…" or "//…")
REMOTE_ASSET = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    # no -q: mkdocs counts the warnings that --strict turns into errors only when it logs them
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    run = build(ROOT, out)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


def test_the_site_builds_strictly_with_the_home_page_and_the_chapters(site):
    assert (site / "index.html").is_file()
    assert (site / "distillation" / "index.html").is_file()
    assert (site / "api" / "kd" / "index.html").is_file()
    assert "minikd.kd.kd_loss" in (site / "api" / "kd" / "index.html").read_text()  # from the docstrings


def test_the_maths_is_marked_for_mathjax_not_left_raw(site):
    page = (site / "distillation" / "index.html").read_text()
    assert '<div class="arithmatex">\\[' in page  # the display maths, for MathJax to typeset
    text = re.sub(r"<(pre|code)\b.*?</\1>", "", page, flags=re.S)  # code may hold a $
    assert "$$" not in text


def test_mathjax_ships_inside_the_site_and_nothing_loads_from_a_cdn(site):
    assert (site / "mathjax" / "es5" / "tex-chtml.js").is_file()
    assert list((site / "mathjax" / "es5" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    remote = [f"{p.relative_to(site)}: {m.group(0)}" for p in pages for m in REMOTE_ASSET.finditer(p.read_text())]
    assert remote == []


def test_a_dead_link_fails_the_strict_build(tmp_path):
    """The same build on a copy of the docs with two dead links must fail on them, and on them
    only: a page that is not there, and a source file that is not there (such links to the
    repository's code are made API links by docs/hooks/repository_links.py when the file exists)."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", copy / "docs")
    for folder in ("minikd", "examples"):  # the API pages read the sources; the chapters link both
        (copy / folder).symlink_to(ROOT / folder)
    index = copy / "docs" / "index.md"
    dead = "\nSee [a chapter](no_such_chapter.md) and [its code](../minikd/no_such.py).\n"
    index.write_text(index.read_text() + dead)
    run = build(copy, tmp_path / "site")
    assert run.returncode != 0
    warnings = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, warnings
    assert "no_such_chapter.md" in warnings[0] + warnings[1]
    assert "no_such.py" in warnings[0] + warnings[1]
