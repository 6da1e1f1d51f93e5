"""Look at the documentation site in a real browser: headless Chromium screenshots of its pages.

    python scripts/screenshot_site.py --out shots/            # builds the site, then shoots it
    python scripts/screenshot_site.py --out shots/ --site site/ --page pruning/

builds the site (``mkdocs build --strict``, the ``docs`` extra) into a temporary folder unless
``--site`` names a built one, serves it on 127.0.0.1 with Python's http.server (MathJax's fonts
and scripts load as they would from any web server; nothing leaves the machine), and writes one
PNG per page: the home page and the distillation chapter by default. It also writes each page's
DOM as the browser left it (after MathJax ran), which ``tests/test_site_browser.py`` reads to
check that the maths was typeset, not left as TeX.

Chromium is looked up as ``$MINIKD_CHROMIUM``, ``chromium``, ``chromium-browser``,
``google-chrome`` or ``google-chrome-stable`` (Debian's ``apt install chromium`` works).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# name: (the page's path in the site, the window's height). The home page and the top of the
# distillation chapter (its maths and code) at 1280×2400; the whole chapter (its figure is far
# down) in one tall window, whose empty band above the footer is cut out afterwards. (A URL with a
# #fragment would scroll to the figure, but headless Chromium then paints a blank screenshot.)
PAGES = {"home": ("", 2400), "distillation": ("distillation/", 2400), "distillation_full": ("distillation/", 24000)}
WIDTH = 1280
# long enough for MathJax to load and typeset a chapter (it takes well under a second here); the
# clock is virtual: Chromium fast-forwards it when the page is idle, so a short page costs little
VIRTUAL_TIME_MS = 10_000


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary, or None."""
    named = os.environ.get("MINIKD_CHROMIUM")
    if named:
        return shutil.which(named)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def build_site(site: Path) -> None:
    """``mkdocs build --strict`` of the repository's site into ``site``; raises on failure."""
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if run.returncode != 0:
        raise RuntimeError(f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}")


class _Handler(SimpleHTTPRequestHandler):
    """Serves the site's folder quietly and records each request's path and status."""

    def __init__(self, *args, requests: list, **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def log_request(self, code="-", size="-"):
        self._requests.append((self.path.split("?")[0], int(code) if str(code).isdigit() else code))

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(site: Path):
    """Serve ``site`` on a free port of 127.0.0.1 in a thread; yields (base URL, requests), where
    ``requests`` fills with (path, HTTP status) as the browser asks for pages, scripts, images."""
    requests: list[tuple[str, int]] = []
    handler = functools.partial(_Handler, directory=str(site), requests=requests)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium(browser: str, url: str, *args: str, size: tuple[int, int] = (1280, 2400),
             timeout: float = 120) -> subprocess.CompletedProcess:
    """One headless Chromium run on ``url`` (after ``VIRTUAL_TIME_MS`` of page time), with a
    throw-away profile, so that parallel runs and a user's own browser do not meet."""
    with tempfile.TemporaryDirectory(prefix="minikd-chromium-") as profile:
        command = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                   f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                   *args, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def screenshot(browser: str, url: str, png: Path, size: tuple[int, int] = (1280, 2400)) -> Path:
    """A PNG of the first ``size`` pixels of the page at ``url``; raises if none was written."""
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    run = chromium(browser, url, f"--screenshot={png}", size=size)
    if not png.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot of {url} (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return png


def dump_dom(browser: str, url: str, size: tuple[int, int] = (1280, 2400)) -> str:
    """The page's DOM as the browser left it, after its scripts (MathJax) ran."""
    run = chromium(browser, url, "--dump-dom", size=size)
    if run.returncode != 0 or "<html" not in run.stdout:
        raise RuntimeError(f"{browser} --dump-dom {url} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return run.stdout


def cut_empty_band(png: Path, least: int = 200, keep: int = 48) -> None:
    """Cut out of ``png`` its longest run of rows that are one plain colour (the empty window below
    a page's end and above its footer, in a window taller than the page), if ``least`` rows or
    more, keeping ``keep`` of them."""
    import numpy as np
    from PIL import Image

    image = Image.open(png).convert("RGB")
    pixels = np.asarray(image)
    plain = (pixels == pixels[:, :1]).all(axis=(1, 2))
    best, run_start = (0, 0), None
    for y, flat in enumerate([*plain, False]):
        if flat and run_start is None:
            run_start = y
        elif not flat and run_start is not None:
            if y - run_start > best[1] - best[0]:
                best = (run_start, y)
            run_start = None
    start, stop = best
    if stop - start >= least:
        rows = np.concatenate([pixels[: start + keep], pixels[stop:]])
        Image.fromarray(rows).save(png)


def shoot(site: Path, out: Path, pages: dict[str, tuple[str, int]], browser: str) -> dict[str, dict]:
    """Serve ``site`` and, for each ``name: (path, height)`` of ``pages``, write ``out/NAME.png``
    (the page in a ``WIDTH`` × height window) and ``out/NAME.html`` (its DOM after the scripts
    ran). Returns, per page, the URL, the PNG, the DOM, and the requests the browser made while
    rendering the screenshot: (path, HTTP status), the page's scripts, fonts and images included."""
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with serve(site) as (base, requests):
        for name, (path, height) in pages.items():
            url = base + path
            del requests[:]
            png = screenshot(browser, url, out / f"{name}.png", size=(WIDTH, height))
            loaded = list(requests)
            if height > 4000:
                cut_empty_band(png)
            dom = dump_dom(browser, url, size=(WIDTH, height))
            (out / f"{name}.html").write_text(dom)
            results[name] = {"url": url, "png": png, "dom": dom, "requests": loaded}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (and the DOMs)")
    parser.add_argument("--site", type=Path, help="a built site (default: build one into a temporary folder)")
    parser.add_argument("--page", action="append", metavar="PATH",
                        help="a page's path in the site, e.g. pruning/ (repeatable; default: the home page "
                             "and the distillation chapter, its top and all of it)")
    parser.add_argument("--height", type=int, default=2400, help="the window's height for --page (default 2400)")
    args = parser.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        parser.error("no Chromium found: install it (Debian: apt install chromium) or set MINIKD_CHROMIUM")
    pages = PAGES
    if args.page:
        pages = {p.strip("/").replace("/", "_") or "home": (p.lstrip("/"), args.height) for p in args.page}
    with tempfile.TemporaryDirectory(prefix="minikd-site-") as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            build_site(site)
        results = shoot(site, args.out, pages, browser)
    for name, r in results.items():
        failed = [f"{path} ({status})" for path, status in r["requests"] if status != 200]
        print(f"{name}: {r['png']}" + (f"  (not served: {', '.join(failed)})" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
