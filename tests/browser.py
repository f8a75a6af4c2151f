"""Open a report in real headless Chromium (Debian's ``chromium``), the way a reader would.

A missing browser fails the test with a clear message instead of skipping it: CI installs
chromium (``.ci/run``), and a silently skipped escaping check is worse than none.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60
WINDOW = (1280, 2000)
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def dump_dom(page: Path, *, binary: Path = CHROMIUM) -> str:
    """The page's DOM as Chromium serialises it after parsing (and after any script ran)."""
    out = _run(binary, ["--dump-dom", Path(page).resolve().as_uri()])
    if "<html" not in out.lower():
        pytest.fail(f"chromium --dump-dom returned no document for {page}: {out[:200]!r}",
                    pytrace=False)
    return out


def screenshot(page: Path, png: Path, *, size: tuple[int, int] = WINDOW,
               binary: Path = CHROMIUM) -> Path:
    """Render ``page`` to ``png`` at ``size`` (CSS pixels) and return the PNG's path."""
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    _run(binary, [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                  "--hide-scrollbars", Path(page).resolve().as_uri()])
    if not png.is_file():
        pytest.fail(f"chromium did not write the screenshot {png}", pytrace=False)
    return png


def print_pdf(page: Path, pdf: Path, *, binary: Path = CHROMIUM) -> Path:
    """Print ``page`` to ``pdf`` the way a lab files it (the page's print stylesheet, A4)."""
    pdf = Path(pdf).resolve()
    pdf.unlink(missing_ok=True)
    _run(binary, [f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                  Path(page).resolve().as_uri()])
    if not pdf.is_file():
        pytest.fail(f"chromium did not write the PDF {pdf}", pytrace=False)
    return pdf


def pdf_pages(pdf: Path) -> int:
    """Page objects in a PDF Chromium wrote (its page dictionaries are not compressed)."""
    return len(re.findall(rb"/Type\s*/Page\b", Path(pdf).read_bytes()))


def elements(dom: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag in ``dom`` as (tag, attributes): what the browser actually built."""
    parser = _Collector()
    parser.feed(dom)
    parser.close()
    return parser.found


def _run(binary: Path, args: list[str]) -> str:
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary} not found: the HTML report tests need Debian's chromium "
                    "(apt-get install -y chromium); they never skip", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="kidaudit-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        cmd = [str(binary), *_FLAGS, f"--user-data-dir={profile}", *args]
        # Own process group: on timeout the renderer and zygote children go too.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(cmd)}",
                        pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"chromium exited {proc.returncode}: {err.strip()[-800:]}", pytrace=False)
    return out


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))
