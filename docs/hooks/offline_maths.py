"""MkDocs hook: ship MathJax inside the built site, so the maths renders with no network.

The pages write maths as ``$...$`` and ``$$...$$``; ``pymdownx.arithmatex`` (generic mode) wraps
them in ``<span class="arithmatex">\\(...\\)</span>`` and MathJax typesets them in the browser.
MathJax itself (3.2.2, Apache-2.0) comes from the PyPI package ``django-static-mathjax``, which
holds nothing but MathJax's files (it needs no Django to install or to read from): this hook
adds the few files the site loads to the build, under ``site/mathjax/``. Nothing is fetched
from a CDN and nothing is vendored into the repository.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

# what tex-chtml.js loads: itself, its woff fonts, the TeX extensions it autoloads (\boldsymbol,
# \color, ...) and the right-click menu; not the 4 MB speech rule engine (sre) of the a11y explorer
WANTED = (
    "es5/tex-chtml.js",
    "es5/output/chtml/fonts/woff-v2/*.woff",
    "es5/input/tex/extensions/*.js",
    "es5/ui/*.js",
    "es5/a11y/assistive-mml.js",
    "LICENSE",
)


def mathjax_root() -> Path:
    """The folder ``mathjax/static/`` of the installed django-static-mathjax package."""
    spec = importlib.util.find_spec("mathjax")
    root = Path(spec.origin).parent / "static" if spec and spec.origin else None
    if root is None or not (root / "mathjax" / "es5" / "tex-chtml.js").is_file():
        raise PluginError("the site's maths needs MathJax from the package django-static-mathjax: "
                          'pip install -e ".[docs]"')
    return root


def on_files(files: Files, config) -> Files:
    root = mathjax_root()
    for pattern in WANTED:
        for path in sorted((root / "mathjax").glob(pattern)):
            files.append(File(path.relative_to(root).as_posix(), src_dir=str(root),
                              dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files
