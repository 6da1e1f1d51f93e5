"""MkDocs hook: the chapters' links to the repository's code, made right for the site.

A chapter read on the repository links its code where it lies, ``[`minikd/kd/margin.py`](../minikd/kd/margin.py)``,
and that link works there. The site serves only docs/, so the same link would be dead on it (and
``mkdocs build --strict`` rejects it). This hook rewrites, on the site only, each link whose
target is a file or folder of the repository outside what the site serves:

- into a link to the module's API page when the file belongs to a module with one
  (``minikd/kd/*.py`` → ``api/kd.md``);
- into its text alone otherwise (``examples/data_free_kd.py`` stays as code, not a link).

A link whose target does not exist is left alone, so the strict build still fails on it.

API references, ``[`minikd.kd.kd_loss`][minikd.kd.kd_loss]``, are mkdocstrings' cross-references
on the site. The repository shows them as links only when the page defines the reference,
``[minikd.kd.kd_loss]: ../minikd/kd/logits.py`` (to the code, as above); on the site this hook
drops those definitions, so that the reference goes to the object on its API page instead.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

# (link text)(target): inline links and images, targets without spaces or parentheses
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
# a reference definition of an API object, "[minikd.kd.kd_loss]: ../minikd/kd/logits.py", on a line of its own
API_DEFINITION = re.compile(r"^\[minikd(?:\.\w+)+\]:[ \t]+\S+[ \t]*\n?", re.M)

# the module → its API page, for the modules that have one (the longest prefix wins)
API_PAGES = {
    "minikd/kd": "api/kd.md",
    "minikd/nn": "api/nn.md",
    "minikd/prune": "api/prune.md",
    "minikd/quant": "api/quant.md",
    "minikd/profile.py": "api/profile.md",
    "minikd/functional.py": "api/functional.md",
    "minikd/export.py": "api/export.md",
    "minikd/__init__.py": "api/minikd.md",
}


def served(target: Path, docs: Path) -> bool:
    """Whether the site serves ``target``: a file inside docs/ (a folder has no page there)."""
    return target.is_file() and target.is_relative_to(docs)


def rewrite(markdown: str, page_src: str, docs: Path) -> str:
    root = docs.parent
    page_dir = (docs / page_src).parent

    def one(m: re.Match) -> str:
        bang, text, href = m.groups()
        if bang or "://" in href or href.startswith(("#", "mailto:")):
            return m.group(0)
        path = href.split("#")[0]
        target = Path(os.path.normpath(page_dir / path))  # not resolve(): a symlinked folder stays inside
        if not path or not target.exists() or served(target, docs) or not target.is_relative_to(root):
            return m.group(0)
        rel = target.relative_to(root).as_posix()
        page = next((p for k, p in sorted(API_PAGES.items(), key=lambda kv: -len(kv[0]))
                     if rel == k or rel.startswith(k + "/")), None)
        if page is None:
            return text
        return f"[{text}]({posixpath.relpath(page, posixpath.dirname(page_src) or '.')})"

    def prose(text: str) -> str:
        return LINK.sub(one, API_DEFINITION.sub("", text))

    # leave code blocks as they are: a pattern in a code block is not a link
    out, last = [], 0
    for f in FENCE.finditer(markdown):
        out += [prose(markdown[last:f.start()]), f.group(0)]
        last = f.end()
    out.append(prose(markdown[last:]))
    return "".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return rewrite(markdown, page.file.src_uri, Path(os.path.abspath(config["docs_dir"])))
