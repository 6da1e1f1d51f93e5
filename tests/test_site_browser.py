"""The documentation site, looked at in a real browser: headless Chromium renders its maths, code
and figures.

The site is built (``mkdocs build --strict``) into a temporary folder, served on 127.0.0.1 by
Python's http.server, and opened by headless Chromium (scripts/screenshot_site.py) three times:
the home page and the top of the distillation chapter in a 1280×2400 window, and the whole
chapter (its figure is far down). Each gives a screenshot and the DOM the browser left once
MathJax had run. The screenshots are kept in ``$MINIKD_SCREENSHOTS`` when set (for a person to
look at), in a temporary folder otherwise; ``$MINIKD_SITE`` tests an already built site instead.

Skipped with the reason where no Chromium is installed (Debian: ``apt install chromium``) or the
``docs`` extra is not. About 20 s.
"""

import html
import importlib.util
import os
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("screenshot_site", ROOT / "scripts" / "screenshot_site.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)

BROWSER = shots.find_chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium (chromium, chromium-browser, google-chrome or $MINIKD_CHROMIUM) "
                            "to look at the site with: apt install chromium")

# an element pymdownx.arithmatex made for MathJax: <span|div class="arithmatex">…</span|div>
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"', re.I)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """{page name: {"url", "png", "dom", "requests"}} for shots.PAGES."""
    out = Path(os.environ["MINIKD_SCREENSHOTS"]) if os.environ.get("MINIKD_SCREENSHOTS") else \
        tmp_path_factory.mktemp("screenshots")
    if os.environ.get("MINIKD_SITE"):
        site = Path(os.environ["MINIKD_SITE"])
    else:
        site = tmp_path_factory.mktemp("browser") / "site"
        shots.build_site(site)
    return shots.shoot(site, out, shots.PAGES, BROWSER)


def not_blank(png: Path) -> float:
    """The share of the screenshot's pixels that differ from its most common colour (the page's
    background), after checking it has some contrast at all."""
    grey = np.asarray(Image.open(png).convert("L"), dtype=np.int16)
    assert grey.std() > 10, f"{png.name}: a blank or nearly blank screenshot (pixel std {grey.std():.1f})"
    background = np.bincount(grey.ravel()).argmax()
    return float((np.abs(grey - background) > 24).mean())


@pytest.mark.parametrize("name", list(shots.PAGES))
def test_each_screenshot_is_a_rendered_page_not_a_blank_one(rendered, name):
    png = rendered[name]["png"]
    assert png.is_file()
    width, height = Image.open(png).size
    assert width == shots.WIDTH and height >= 2000
    assert not_blank(png) > 0.03  # text, code boxes, tables: measured 0.056–0.070 on the three


@pytest.mark.parametrize("name", list(shots.PAGES))
def test_everything_the_browser_asked_for_was_served(rendered, name):
    """The page, its CSS and scripts, MathJax and its fonts, its images: no 404 anywhere."""
    requests = rendered[name]["requests"]
    assert requests, "the browser asked the server for nothing"
    assert [r for r in requests if r[1] != 200] == []


def test_the_maths_of_the_distillation_chapter_was_typeset_by_mathjax(rendered):
    for name in ("distillation", "distillation_full"):
        page = rendered[name]
        dom = page["dom"]
        maths = ARITHMATEX.findall(dom)
        assert len(maths) >= 5, f"{name}: {len(maths)} maths elements"  # the chapter has 8 display formulas
        for _, inner in maths:
            assert inner.lstrip().startswith("<mjx-container"), f"{name}: maths left as TeX: {inner[:120]!r}"
            assert "\\[" not in inner and "\\(" not in inner and "$$" not in inner
        assert dom.count("<mjx-container") >= len(maths)
        assert "<mjx-merror" not in dom and "data-mjx-error" not in dom  # a TeX error, typeset in red
        served = {path for path, status in page["requests"] if status == 200}
        assert "/mathjax/es5/tex-chtml.js" in served  # from the site itself
        assert any(p.startswith("/mathjax/es5/output/chtml/fonts/woff-v2/") and p.endswith(".woff") for p in served)


def test_the_distillation_chapter_shows_its_code_highlighted(rendered):
    dom = rendered["distillation"]["dom"]
    blocks = re.findall(r'<div class="highlight"><pre\b.*?</pre>', dom, re.S)
    assert len(blocks) >= 5
    text = [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in blocks]
    assert any("p2 = kd.softmax_with_temperature(z, T=2)" in t for t in text)
    assert all("<code" in block for block in blocks)
    assert '<span class="kn">import</span>' in blocks[0]  # Pygments' spans: highlighted, not plain text
    assert 'class="md-code__button"' in blocks[0]  # the theme's script ran: its copy button


def test_the_distillation_chapter_shows_its_figure_and_the_browser_loaded_it(rendered):
    page = rendered["distillation_full"]
    sources = IMG_SRC.findall(page["dom"])
    assert any(src.endswith("hinton_mnist.png") for src in sources), sources
    served = {path for path, status in page["requests"] if status == 200}
    for src in sources:
        path = urlsplit(urljoin(page["url"], html.unescape(src))).path
        assert path in served, f"{src}: not loaded by the browser (served: {sorted(served)})"
    # the tall screenshot holds the whole chapter, the figure included
    assert Image.open(page["png"]).size[1] > Image.open(rendered["distillation"]["png"]).size[1]


def test_the_home_page_is_the_map_with_links_to_the_chapters_and_code(rendered):
    dom = rendered["home"]["dom"]
    assert "minikd: the map" in dom
    for chapter in ("distillation/", "pruning/", "quantization/", "model_complexity/"):
        assert f'href="{chapter}' in dom, chapter
    assert "<code" in dom and "<pre" in dom
    assert "python examples/mnist_teacher_student.py" in html.unescape(re.sub(r"<[^>]+>", "", dom))
