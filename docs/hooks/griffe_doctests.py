"""Griffe extension for the API pages: a docstring's doctest becomes a fenced ``pycon`` block.

minikd's docstrings are plain text with doctests (``>>> code`` then its output). Read as Markdown,
a ``>>>`` line is a block quote and an output such as ``[0.659, 0.242, 0.099]`` looks like a
reference link, which mkdocstrings' cross-referencing rejects. Fencing each doctest keeps it
what it is: code and its output, highlighted as a Python console session.
"""

from __future__ import annotations

import re

import griffe

PROMPT = re.compile(r"^(\s*)>>> ")


def fence_doctests(text: str) -> str:
    """``text`` with each run of doctest lines (a ``>>>`` line and the non-blank lines after it,
    at the same indentation) put between ```` ```pycon ```` and ```` ``` ```` fences; a doctest
    indented by four spaces or more is an indented code block already and stays as it is."""
    lines, out, i = text.split("\n"), [], 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = PROMPT.match(line)
        if in_fence or not m or len(m.group(1)) >= 4:  # indented by 4: already a code block
            out.append(line)
            i += 1
            continue
        indent = m.group(1)
        j = i + 1
        while j < len(lines) and lines[j].strip() and lines[j].startswith(indent):
            j += 1
        out += [f"{indent}```pycon", *lines[i:j], f"{indent}```"]
        i = j
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>> " in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
