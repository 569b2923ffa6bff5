"""The documentation site: built by MkDocs with --strict (as `make docs` does), served on 127.0.0.1 and opened in
headless Chromium (Debian's package; `.ci/run` installs it, and the browser tests are skipped where it is absent):
pages render, every navigation link answers with its page, and the client-side search finds a term in the browser.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
no_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run installs it)")
HAS_MKDOCS = subprocess.run([sys.executable, "-c", "import mkdocs, material, mkdocstrings"], capture_output=True,
                            check=False).returncode == 0
pytestmark = pytest.mark.skipif(not HAS_MKDOCS, reason="mkdocs, mkdocs-material or mkdocstrings is not installed "
                                                      "(they come with requirements.lock: make install)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `make docs` builds it (strict: any warning fails the build), in a folder of its own."""
    out = tmp_path_factory.mktemp("site") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]
    return out


def _nav_pages() -> list[tuple[str, str]]:
    """(label, page) of every entry of mkdocs.yml's nav, in order."""
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.SafeLoader)
    out: list[tuple[str, str]] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            for label, value in item.items():
                if isinstance(value, list):
                    walk(value)
                else:
                    out.append((label, value))
    walk(config["nav"])
    return out


def test_the_site_builds_strictly_with_every_page_and_the_generated_cli_reference(site: Path) -> None:
    pages = _nav_pages()
    assert len(pages) == 23
    for _, page in pages:
        assert (site / page.replace(".md", ".html")).is_file(), page
    # every page of docs/ is in the navigation (an orphan page would be unreachable)
    sources = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sources == sorted(p for _, p in pages if p != "reference/cli.md")
    # the CLI reference is generated from the parser: every command and every option of every command is on it
    sys.path.insert(0, str(ROOT))
    from nas.cli import build_parser

    text = html.unescape(re.sub(r"<[^>]+>", "", (site / "reference" / "cli.html").read_text()))
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == ["search", "resume", "status", "front", "export", "worker", "summary",
                                        "baselines", "cleanup"]
    for name, parser in subparsers.choices.items():
        assert f"nas {name}" in text
        for action in parser._actions:
            for option in action.option_strings:
                assert option in text, f"nas {name} {option} is missing from the CLI reference"


def test_the_search_index_holds_every_page_and_finds_a_term(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text())
    locations = {d["location"].split("#")[0] for d in index["docs"]}
    assert {page.replace(".md", ".html") for _, page in _nav_pages() if page != "index.md"} <= locations
    hits = {d["location"].split("#")[0] for d in index["docs"] if "place_workers" in d["text"]}
    assert {"guides/distributed.html", "reference/backends.html"} <= hits


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on a local HTTP server (127.0.0.1 only), as a reader would serve it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                               str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/index.html", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _dom(url: str) -> str:
    assert CHROMIUM is not None
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--virtual-time-budget=10000", "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=False)
    return out.stdout


def _between(dom: str, start: str, end: str) -> str:
    """The part of a page from the element whose class starts with ``start`` to the one of ``end``."""
    a = dom.find(f'class="{start}')
    b = dom.find(f'class="{end}', a)
    assert a != -1 and b != -1, (start, end)
    return dom[a:b]


def _text(dom: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


@pytest.mark.slow
@no_chromium
def test_home_a_guide_and_the_api_page_render_in_chromium(served: str) -> None:
    home = _dom(f"{served}/index.html")
    assert "<title>nas</title>" in home
    # the theme's navigation, rendered around the page: every section and page label of mkdocs.yml
    nav = _text(_between(home, "md-sidebar md-sidebar--primary", "md-sidebar md-sidebar--secondary"))
    for label, _ in _nav_pages():
        assert label in nav, label
    assert 'class="highlight"' in home and "Where to start" in _text(home)

    guide = _dom(f"{served}/guides/distributed.html")
    assert "<title>Distributed runs: workers, GPUs, Ray, TPUs - nas</title>" in guide
    # the table of contents the theme builds from the page's headings
    toc = _text(_between(guide, "md-sidebar md-sidebar--secondary", "md-content"))
    assert "Table of contents" in toc and "Local workers and GPUs" in toc and "Many machines without Ray" in toc

    api = _dom(f"{served}/reference/api.html")
    text = _text(api)
    # mkdocstrings rendered the docstrings and signatures (none of this text is in docs/reference/api.md)
    assert 'class="doc doc-heading"' in api
    assert "Run a multi-objective architecture search and return the Study" in text
    assert re.search(r"search\s*\(\s*space", text) and "progress_bar" in text
    assert "Run trials until n_trials are finished" in text  # Study.resume's docstring
    assert ":class:" not in text and ":meth:" not in text  # Sphinx roles dropped by docs/hooks.py


@pytest.mark.slow
@no_chromium
def test_every_navigation_link_opens_its_page(served: str) -> None:
    home = _dom(f"{served}/index.html")
    primary = _between(home, "md-sidebar md-sidebar--primary", "md-sidebar md-sidebar--secondary")
    links = re.findall(r'<a href="([^"#]+)" class="md-nav__link[^"]*"[^>]*>(.*?)</a>', primary, re.DOTALL)
    labels = {label: page.replace(".md", ".html") for label, page in _nav_pages()}
    found = {}
    for href, inner in links:
        label = _text(inner).strip()
        if label in labels:
            found[label] = href
    assert set(found) == set(labels), sorted(set(labels) - set(found))
    for label, href in found.items():
        target = urllib.parse.urljoin(f"{served}/index.html", href)
        assert target == f"{served}/{labels[label]}", (label, target)
        with urllib.request.urlopen(target, timeout=10) as response:
            assert response.status == 200
            page = response.read().decode()
        title = re.search(r"<title>(.*?)</title>", page).group(1)  # type: ignore[union-attr]
        assert html.unescape(title) in (f"{label} - nas", "nas"), (label, title)


class _Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
    ended by NUL on fds 3 and 4), so that a test can type into a page as a reader does."""

    def __init__(self) -> None:
        assert CHROMIUM is not None
        commands_r, self._commands = os.pipe()
        self._events, events_w = os.pipe()

        def fds() -> None:  # in the child, before exec: the pipe ends as fds 3 and 4, inherited
            os.dup2(commands_r, 3)
            os.dup2(events_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(command, preexec_fn=fds, close_fds=False,  # noqa: PLW1509 - only dup2 in it
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_r)
        os.close(events_w)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return dict(answer["result"])
            if select.select([self._events], [], [], 0.5)[0]:
                chunk = os.read(self._events, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its DevTools pipe")
                self._buffer += chunk
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.wait_for("document.readyState === 'complete' && document.title !== ''")

    def value(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = self.value(expression)
            if result:
                return result
            time.sleep(0.2)
        raise TimeoutError(expression)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        os.close(self._commands)
        os.close(self._events)


@pytest.mark.slow
@no_chromium
def test_the_search_box_finds_a_term_in_the_browser(served: str) -> None:
    browser = _Chromium()
    try:
        browser.open(f"{served}/index.html")
        browser.value("document.querySelector('input[data-md-component=search-query]').focus()")
        browser.send("Input.insertText", {"text": "place_workers"})
        for kind in ("keyDown", "keyUp"):  # the theme searches on key events, as when a reader types
            browser.send("Input.dispatchKeyEvent", {"type": kind, "key": "End", "code": "End",
                                                    "windowsVirtualKeyCode": 35})
        results = browser.wait_for("Array.from(document.querySelectorAll('.md-search-result__item'))"
                                   ".map(e => e.querySelector('h1, h2') ? e.querySelector('h1, h2').innerText : '')")
        assert "Distributed runs: workers, GPUs, Ray, many machines, TPUs" in results
        assert "Python API: backends and devices" in results
        assert browser.value("document.querySelector('.md-search-result__meta').innerText") == (
            f"{len([r for r in results if r])} matching documents")
    finally:
        browser.close()
