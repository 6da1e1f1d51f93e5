"""README.md and every docs/*.md read as Markdown: whole tables and no dead links.

The pages are parsed by markdown-it-py, a CommonMark parser, with its GitHub-style table
extension — the way a reader's viewer will show them — not matched with regular expressions:

- **tables**: every block of lines that start with ``|`` must be one table to the parser,
  every row with as many cells as the header. A line that is not a row, dropped between two
  rows, ends the table there and turns the rows after it into a paragraph of pipes;
- **links and images**: every relative target must be a file or folder, relative to the
  page; a ``#anchor`` (alone, or after a ``.md`` page) must be one of that page's headings,
  spelt as GitHub spells them. ``http(s)://`` and ``mailto:`` targets are not fetched.

Code blocks are left alone: a ``|`` at the start of a line of code is not a table.
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = ("fence", "code_block", "html_block")  # block tokens whose lines are not Markdown text


def parse(text: str):
    """The block tokens of ``text``: CommonMark with the table extension."""
    return MarkdownIt("commonmark").enable("table").parse(text)


def count_cells(row: str) -> int:
    """The number of cells in a table row, counted as the parser splits them: at every ``|``
    that is not escaped as ``\\|``, after the outer pipes are dropped."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    cells, escaped = 1, False
    for ch in row:
        if ch == "|" and not escaped:
            cells += 1
        escaped = ch == "\\"
    return cells


# --------------------------------------------------------------------------- tables


def table_problems(text: str, name: str) -> list[str]:
    """What is wrong with the tables of a page: one line per problem, empty when all is well."""
    lines = text.splitlines()
    tokens = parse(text)
    in_code = set()
    for tok in tokens:
        if tok.type in CODE and tok.map:
            in_code.update(range(*tok.map))

    # blocks of consecutive lines that start with "|", outside code: (first line, line after the last)
    blocks, start = [], None
    for i in range(len(lines) + 1):
        is_row = i < len(lines) and i not in in_code and lines[i].lstrip().startswith("|")
        if is_row and start is None:
            start = i
        elif not is_row and start is not None:
            blocks.append((start, i))
            start = None

    tables = [tuple(tok.map) for tok in tokens if tok.type == "table_open"]
    problems = []
    for a, b in blocks:
        if (a, b) in tables:
            continue
        made = next((tok for tok in tokens if tok.map and tok.type.endswith("_open") and tok.map[0] <= a < tok.map[1]),
                    None)
        what = f"part of a {made.type.removesuffix('_open')} (lines {made.map[0] + 1}-{made.map[1]})" if made else "?"
        problems.append(f"{name}:{a + 1}-{b}: {b - a} line(s) start with '|' but the parser made them {what}, "
                        "not one table")
    for a, b in tables:
        if (a, b) not in blocks:
            problems.append(f"{name}:{a + 1}-{b}: a table whose lines do not all start with '|'")
        header = count_cells(lines[a])
        for i in range(a + 2, b):  # a: the header, a + 1: the |---| line
            if count_cells(lines[i]) != header:
                problems.append(f"{name}:{i + 1}: a row of {count_cells(lines[i])} cells in a table of {header} "
                                f"columns: {lines[i][:60]!r}")
    return problems


# --------------------------------------------------------------------------- links and images


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: the heading's text in lower case, without
    punctuation, spaces as '-'; a repeated one gets -1, -2, ..."""
    tokens = parse(text)
    anchors, seen = set(), {}
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        words = "".join(child.content for child in tokens[i + 1].children
                        if child.type in ("text", "code_inline"))
        slug = "".join(ch for ch in words.strip().lower() if ch.isalnum() or ch in " -_").replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def targets(text: str):
    """(line, href) of every link and image of a page."""
    for tok in parse(text):
        for child in tok.children or ():
            if child.type == "link_open":
                yield tok.map[0] + 1, child.attrs["href"]
            elif child.type == "image":
                yield tok.map[0] + 1, child.attrs["src"]


def link_problems(text: str, page: Path) -> list[str]:
    """Dead relative links and images of a page, and anchors that name no heading."""
    problems = []
    for line, href in targets(text):
        url = urlsplit(href)
        if url.scheme in ("http", "https", "mailto"):
            continue
        where = f"{page.name}:{line}: {href!r}"
        if url.scheme or url.netloc:
            problems.append(f"{where}: an unexpected kind of link")
            continue
        if not url.path:  # "#anchor": a heading of this page
            target, target_text = page, text
        else:
            target = (page.parent / unquote(url.path)).resolve()
            if not target.exists():
                shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
                problems.append(f"{where}: {shown} does not exist")
                continue
            target_text = target.read_text() if target.suffix == ".md" else ""
        if url.fragment and target.suffix == ".md" and url.fragment not in heading_anchors(target_text):
            problems.append(f"{where}: {target.name} has no heading with the anchor #{url.fragment}")
    return problems


# --------------------------------------------------------------------------- the pages


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_table_is_one_table_with_full_rows(page):
    problems = table_problems(page.read_text(), page.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_image_exists(page):
    problems = link_problems(page.read_text(), page)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the checks can fail


def test_a_paragraph_dropped_into_a_table_is_caught():
    """The mistake README.md once had: a paragraph between two rows cuts the table, and the
    row after it becomes a line of that paragraph."""
    table = "| file | what |\n|---|---|\n| `a.py` | A |\n"
    text = table + "\nA sentence that belongs after the table.\n| `b.py` | B |\n"
    assert table_problems(text, "page.md") == [
        "page.md:6-6: 1 line(s) start with '|' but the parser made them part of a paragraph (lines 5-6), "
        "not one table"]
    # without the blank line the sentence becomes a row of the table, of one cell
    problems = table_problems(table + "A sentence that belongs after the table.\n| `b.py` | B |\n", "page.md")
    assert "page.md:1-5: a table whose lines do not all start with '|'" in problems, problems
    assert "page.md:4: a row of 1 cells in a table of 2 columns: 'A sentence that belongs after the table.'" in problems
    # the sentence after the table: all is well
    assert table_problems(table + "| `b.py` | B |\n\nA sentence that belongs after the table.\n", "page.md") == []


def test_a_row_with_too_many_or_too_few_cells_is_caught():
    text = "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n| 4 |\n| 5 \\| 6 | 7 |\n"
    assert table_problems(text, "t.md") == [
        "t.md:3: a row of 3 cells in a table of 2 columns: '| 1 | 2 | 3 |'",
        "t.md:4: a row of 1 cells in a table of 2 columns: '| 4 |'",
    ]  # an escaped \| is not a cell boundary


def test_a_pipe_in_a_code_block_is_not_a_table():
    assert table_problems("```text\n| not | a table |\n```\n\n    | nor | this |\n", "c.md") == []


def test_dead_links_images_and_anchors_are_caught(tmp_path):
    (tmp_path / "there.md").write_text("# Here we are\n\n## Two `words`, once\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    text = ("# Title\n\n[ok](there.md) [ok](there.md#here-we-are) [ok](there.md#two-words-once) [ok](#title)\n"
            "![ok](pic.png) [web](https://example.org/x) [mail](mailto:a@b.c)\n\n"
            "[dead](gone.md) ![dead](missing.png) [no heading](there.md#nowhere) [no heading](#elsewhere)\n")
    problems = link_problems(text, page)
    assert [p.split(": ")[1] for p in problems] == ["'gone.md'", "'missing.png'", "'there.md#nowhere'",
                                                     "'#elsewhere'"], problems
