"""The web pages in a real browser: Playwright drives the system Chromium (never a download).

The pages are served by real node processes. When ``liquide demo`` exists, its federation
(``liquide demo --keep``: several cities and a small synthetic vote) is the target; otherwise a
``liquide node serve`` subprocess over a city built by :func:`tests.node.test_web.build_city`.
Either way the test finds what to look at through the JSON API (a sealed issue, a delegated
voter and its path), so it does not depend on how the vote was generated. One browser is
launched for the whole module; screenshots go to ``test-artifacts/web/`` (git-ignored).

With ``CI=true`` a missing Chromium or Playwright fails the tests; elsewhere they skip and say
how to install Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.node.test_web import build_city

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
START_TIMEOUT_S = 180


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the browser tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc}); pip install playwright")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _liquide() -> str:
    exe = Path(sys.executable).with_name("liquide")
    return str(exe) if exe.exists() else shutil.which("liquide") or "liquide"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


@dataclass
class Target:
    """What the browser looks at: a node's base URL and ids found through its JSON API."""

    base: str
    sealed: str
    others: list[str]
    voter: str
    path: list[str]
    scope: str


def _find_target(base: str) -> Target:
    """A sealed issue with results, and a voter whose weight travelled along a delegation."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        issues = _get(f"{base}/issues.json")["issues"]
        for iss in issues:
            if iss["state"] != "sealed":
                continue
            data = _get(f"{base}/issues/{iss['id']}.json")
            if data["tally"] is None:
                continue
            voters = _get(f"{base}/v1/issues/{iss['id']}/tally")["result"]["voters"]
            chains = sorted(
                (len(v["path"]), k) for k, v in voters.items() if v["status"] == "delegated"
            )
            if chains:
                key = chains[-1][1]
                v = voters[key]
                return Target(
                    base,
                    iss["id"],
                    [i["id"] for i in issues if i["id"] != iss["id"]],
                    key,
                    v["path"],
                    v["scope"],
                )
        assert time.monotonic() < deadline, f"no sealed issue with results at {base}"
        time.sleep(1)


class _Process:
    """A subprocess whose stdout lines are read by a thread (so reads can time out)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.fullmatch(pattern, line):
                    return line
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.lines}"
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {self.lines}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _has_demo() -> bool:
    from node.cli import main

    return "demo" in main.commands


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The federation of ``liquide demo --keep`` if it exists, else one served city."""
    tmp = tmp_path_factory.mktemp("browser")
    if _has_demo() and os.environ.get("LIQUIDE_WEB_TEST_DEMO", "1") != "0":
        proc = _Process([_liquide(), "demo", "--keep", "--seed", "7"], tmp / "demo.log")
        try:
            proc.wait_line("ready", START_TIMEOUT_S)
            urls = [
                m.group(1) for m in (re.fullmatch(r"\S+ (http://\S+)", x) for x in proc.lines) if m
            ]
            assert urls, proc.lines
            yield _find_target(urls[0].rstrip("/"))
        finally:
            proc.stop()
        return
    city = build_city(tmp / "lyon")
    proc = _Process(
        [_liquide(), "node", "serve", "--data", str(city.path), "--port", "0"], tmp / "serve.log"
    )
    try:
        url = proc.wait_line(r"http://\S+", 60)
        yield _find_target(url.rstrip("/"))
    finally:
        proc.stop()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    locale = getattr(request, "param", "en-GB")
    ctx = browser.new_context(locale=locale, viewport={"width": 1100, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, errors


def _shot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_loads(target: Target, page: Any) -> None:
    paths = {
        "home": "/",
        "assemblies": "/assemblies",
        "areas": "/areas",
        "issues": "/issues",
        "voter": f"/voters/{target.voter}",
        **{f"issue-{i}": f"/issues/{iid}" for i, iid in enumerate(target.others[:2])},
    }
    for name, path in paths.items():
        resp = page.goto(target.base + path)
        assert resp is not None
        assert resp.ok, (path, resp.status)
        assert page.locator("h1").count() == 1
        assert page.locator("html").get_attribute("lang") == "en"
        # The stylesheet applied (the CSP allows it): the header is laid out as a flex row.
        assert page.locator("header.site").evaluate("e => getComputedStyle(e).display") == "flex"
        _shot(page, f"{name}-en")


def test_results_and_svg_render(target: Target, page: Any) -> None:
    page.goto(f"{target.base}/issues/{target.sealed}")
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    for i in range(2):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 60
        assert charts.nth(i).locator("title").first.text_content()
    bars = page.locator("svg.chart").first.locator("rect")
    widths = [float(bars.nth(i).get_attribute("width") or 0) for i in range(bars.count())]
    assert max(widths) > 20
    winner = page.locator("p.winner").inner_text()
    assert winner.startswith(("★ Winner:", "No option won"))
    assert page.locator("table.ranking tbody tr").count() >= 1
    assert "agrees" in page.locator("section[aria-labelledby=att-h]").inner_text()
    _shot(page, "issue-sealed-en")
    # On a phone the page does not scroll sideways: wide tables scroll in their own box.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/issues/{target.sealed}", "/"):
        page.goto(target.base + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, (path, overflow)
    page.goto(f"{target.base}/issues/{target.sealed}")
    _shot(page, "issue-sealed-phone")


def test_explain_box(target: Target, page: Any) -> None:
    page.goto(f"{target.base}/issues/{target.sealed}")
    page.get_by_label("Public key (lqpk1…)").fill(target.voter)
    page.get_by_role("button", name="Explain").click()
    page.wait_for_url("**/explain?voter=*")
    text = page.locator("main").inner_text()
    assert f"Delegated at {target.scope} scope" in text
    steps = page.locator("ol.path li")
    assert steps.count() == 1 + len(target.path)
    _shot(page, "explain-en")
    steps.nth(1).locator("a").click()
    page.wait_for_url(f"**/voters/{target.path[0]}")
    assert page.locator("h1").inner_text().startswith("Voter ")


@pytest.mark.parametrize("page", ["fr-FR"], indirect=True)
def test_french_version(target: Target, page: Any) -> None:
    page.goto(target.base + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("link", name="Accueil").count() == 1
    _shot(page, "home-fr")
    page.goto(f"{target.base}/issues/{target.sealed}")
    assert "Classement de Schulze" in page.locator("main").inner_text()
    assert page.locator("p.winner").inner_text().startswith(("★ Gagnante :", "Aucune option"))
    _shot(page, "issue-sealed-fr")
    page.get_by_role("link", name="Language: English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(target.base + "/assemblies")  # the switch sticks (cookie)
    assert page.locator("html").get_attribute("lang") == "en"


def test_missing_browser_fails_on_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _unavailable("no Chromium at /nowhere: apt-get install chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        _unavailable("no Chromium at /nowhere: apt-get install chromium")
