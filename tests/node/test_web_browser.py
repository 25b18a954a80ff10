"""The web pages in a real browser: Playwright drives the system Chromium (never a download).

A real node (``liquide node serve``, a subprocess) serves a city built by
:func:`tests.node.test_web.build_city`: a sealed issue with direct ballots and delegations at
every scope. One browser is launched for the whole module. Screenshots go to
``test-artifacts/web/`` (git-ignored).

With ``CI=true`` a missing Chromium or Playwright fails the tests; elsewhere they skip and say
how to install Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node.test_web import City, build_city

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
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _liquide() -> str:
    exe = Path(sys.executable).with_name("liquide")
    return str(exe) if exe.exists() else shutil.which("liquide") or "liquide"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, City]]:
    """A ``liquide node serve`` process over a built city; yields its base URL and the city."""
    city = build_city(tmp_path_factory.mktemp("browser") / "lyon")
    log = (city.path.parent / "serve.log").open("wb")
    proc = subprocess.Popen(
        [_liquide(), "node", "serve", "--data", str(city.path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    try:
        url = first[0].decode().strip() if first else ""
        assert url.startswith("http://"), (url, (city.path.parent / "serve.log").read_text())
        yield url.rstrip("/"), city
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    locale = getattr(request, "param", "en-GB")
    ctx = browser.new_context(locale=locale, viewport={"width": 1100, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, errors


def _shot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_loads(server: tuple[str, City], page: Any) -> None:
    base, city = server
    paths = {
        "home": "/",
        "assemblies": "/assemblies",
        "areas": "/areas",
        "issues": "/issues",
        "issue-open": f"/issues/{city.open}",
        "voter": f"/voters/{city.pk(city.roles['ranked'][0])}",
    }
    for name, path in paths.items():
        resp = page.goto(base + path)
        assert resp is not None
        assert resp.ok, (path, resp.status)
        assert page.locator("h1").count() == 1
        assert page.locator("html").get_attribute("lang") == "en"
        # The stylesheet applied (the CSP allows it): the header is laid out as a flex row.
        assert page.locator("header.site").evaluate("e => getComputedStyle(e).display") == "flex"
        _shot(page, f"{name}-en")


def test_results_and_svg_render(server: tuple[str, City], page: Any) -> None:
    base, city = server
    page.goto(f"{base}/issues/{city.sealed}")
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
    assert max(widths) > 50
    assert page.locator("p.winner").inner_text().startswith("★ Winner:")
    assert page.locator("table.ranking tbody tr").count() == 3
    assert "agrees" in page.locator("section[aria-labelledby=att-h]").inner_text()
    _shot(page, "issue-sealed-en")


def test_explain_box(server: tuple[str, City], page: Any) -> None:
    base, city = server
    page.goto(f"{base}/issues/{city.sealed}")
    page.get_by_label("Public key (lqpk1…)").fill(city.pk(10))
    page.get_by_role("button", name="Explain").click()
    page.wait_for_url("**/explain?voter=*")
    text = page.locator("main").inner_text()
    assert "Delegated at issue scope" in text
    path = page.locator("ol.path li")
    assert path.count() == 3
    _shot(page, "explain-en")
    path.nth(1).locator("a").click()
    page.wait_for_url(f"**/voters/{city.pk(8)}")
    assert page.locator("h1").inner_text().startswith("Voter ")


@pytest.mark.parametrize("page", ["fr-FR"], indirect=True)
def test_french_version(server: tuple[str, City], page: Any) -> None:
    base, city = server
    page.goto(base + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("link", name="Accueil").count() == 1
    _shot(page, "home-fr")
    page.goto(f"{base}/issues/{city.sealed}")
    assert "Classement de Schulze" in page.locator("main").inner_text()
    assert page.locator("p.winner").inner_text().startswith("★ Gagnante :")
    _shot(page, "issue-sealed-fr")
    page.get_by_role("link", name="Language: English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(base + "/assemblies")  # the switch sticks (cookie)
    assert page.locator("html").get_attribute("lang") == "en"
