"""The report in a real headless Chromium at 1400 px: what a reader sees first, what is laid out,
what is loaded.

Checks, each with Chromium's own machinery:

- the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, so no
  websocket package is needed) sets a 1400 × 900 viewport, takes screenshots of the first screen
  and of the top of the page (kept in ``test-artifacts/``, git-ignored, for a human to look at)
  and measures the laid-out page: the first screen shows the answers with their units, every
  table shows all its columns, and no figure's axis mixes units (each figure's ``data-axes``);
- the same protocol records every network request, failed load, console message, uncaught
  exception and browser log entry while the page loads: only the page's own ``file://`` URL may
  be requested, and nothing may be logged at warning level or above;
- ``--dump-dom`` gives the DOM after parsing: every section is there and no ``<script>`` element
  exists (a study named ``<script>…`` must stay text).

Without Chromium the tests skip, except under CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.report_fixture import built_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
SECTIONS = (
    "answers",
    "analyses",
    "forest",
    "posterior",
    "metaregression",
    "diagnostics",
    "summary",
    "claims",
)
WIDTH, FIRST_SCREEN = 1400, 900  # CSS pixels: a laptop browser window
TOP_OF_PAGE = 4000  # height of the second screenshot
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOAD_TIMEOUT = 60.0  # seconds; a cold Chromium start in a container takes a few
SETTLE = 1.0  # seconds to keep listening after the load event, for late requests or errors


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    message = (
        "headless Chromium not found; install it (Debian: apt-get install -y chromium, "
        "or run ./test.sh as root, which does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def page() -> Path:
    results, _, _ = built_report()
    return results / "report.html"


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT,
        check=False,
    )


class DevTools:
    """A minimal CDP client over Chromium's debugging pipe (NUL-delimited JSON)."""

    def __init__(self, chromium: str, profile: Path, log: Path):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire():  # runs in the child: Chromium reads commands on fd 3 and writes replies on fd 4
            command_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)  # copies above 4 first, in case
            reply_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)  # a pipe end already is 3 or 4
            os.dup2(command_in, 3)
            os.dup2(reply_out, 4)

        self._log = open(log, "w")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            pass_fds=(3, 4),
            preexec_fn=wire,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(LOAD_TIMEOUT)
            if reply is None:
                raise TimeoutError(f"no reply to {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                return None
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    def wait_for(self, method: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if any(e["method"] == method for e in self.events):
            return True
        while (left := deadline - time.monotonic()) > 0:
            message = self._read(left)
            if message is not None and message.get("method") == method:
                return True
        return False

    def open(self, url: str, width: int, height: int) -> str:
        """Open ``url`` in a new tab with a ``width`` x ``height`` viewport; return the session."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.send("Page.navigate", {"url": url}, session=session)
        assert self.wait_for("Page.loadEventFired", LOAD_TIMEOUT), "page never finished loading"
        return session

    def evaluate(self, session: str, expression: str):
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=session,
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def screenshot(self, session: str, path: Path, height: int | None = None) -> None:
        """A PNG of the viewport, or of the top ``height`` pixels of the page."""
        params = {"format": "png"}
        if height is not None:
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
            }
        data = self.send("Page.captureScreenshot", params, session=session)["data"]
        path.write_bytes(base64.b64decode(data))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read(left)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        self._log.close()


def load_and_listen(chromium: str, url: str, workdir: Path) -> tuple[list[str], list[str]]:
    """Load ``url``; return (every requested URL, every problem logged) as the browser saw them."""
    tools = DevTools(chromium, workdir / "profile-cdp", workdir / "chromium-cdp.log")
    try:
        tools.open(url, WIDTH, FIRST_SCREEN)
        tools.drain(SETTLE)
    finally:
        tools.close()
    requests, problems = [], []
    for event in tools.events:
        params, method = event.get("params", {}), event["method"]
        if method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            problems.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "warning",
            "assert",
        ):
            problems.append(
                f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}"
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            problems.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
    return requests, problems


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def laid_out(chromium, page, tmp_path_factory):
    """The page in a 1400 x 900 viewport: screenshots written, measurements taken."""
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("chromium")
    tools = DevTools(chromium, work / "profile", work / "chromium.log")
    try:
        session = tools.open(page.as_uri(), WIDTH, FIRST_SCREEN)
        for name, height in (("report-first-screen.png", None), ("report.png", TOP_OF_PAGE)):
            (ARTIFACTS / name).unlink(missing_ok=True)
            tools.screenshot(session, ARTIFACTS / name, height)
        measured = tools.evaluate(session, MEASURE)
    finally:
        tools.close()
    return measured


# What the tests read off the laid-out page (plain DOM measurements).
MEASURE = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom,
    left: r.left, right: r.right}; };
  return {
    viewport: {width: window.innerWidth, height: window.innerHeight},
    sections: [...document.querySelectorAll('main > section')].map(s => ({id: s.id, ...box(s)})),
    answers: [...document.querySelectorAll('#answers article.answer')].map(a => ({
      unit: a.dataset.unit, text: a.innerText, ...box(a)})),
    tables: [...document.querySelectorAll('.table-wrap')].map(w => ({
      section: w.closest('section').id, scroll: w.scrollWidth, client: w.clientWidth,
      lastHeader: box(w.querySelector('thead th:last-child')), wrap: box(w)})),
    figures: [...document.querySelectorAll('figure[data-axes]')].map(f => ({
      id: f.id, axes: JSON.parse(f.dataset.axes)})),
  };
})()"""


def test_screenshots(laid_out):
    assert _png_size(ARTIFACTS / "report-first-screen.png") == (WIDTH, FIRST_SCREEN)
    assert _png_size(ARTIFACTS / "report.png") == (WIDTH, TOP_OF_PAGE)
    assert laid_out["viewport"] == {"width": WIDTH, "height": FIRST_SCREEN}


def test_first_screen_shows_the_answers_with_units(laid_out):
    """The answers are the first section, start on the first screen, and each answer that is on
    it (at least the first) is whole and states its number in its unit."""
    sections = laid_out["sections"]
    assert sections[0]["id"] == "answers" and sections[0]["top"] < FIRST_SCREEN / 3
    shown = [a for a in laid_out["answers"] if a["bottom"] <= FIRST_SCREEN]
    assert shown, "no whole answer on the first screen"
    for answer in shown:
        assert answer["unit"] and f" {answer['unit']} (95% credible interval" in answer["text"]


def test_every_table_shows_all_its_columns(laid_out):
    """At 1400 px no table scrolls sideways: the summary table's last column (ESS tail) is
    inside its box."""
    tables = laid_out["tables"]
    assert any(t["section"] == "summary" for t in tables)
    for table in tables:
        assert table["scroll"] <= table["client"], table
        assert table["lastHeader"]["right"] <= table["wrap"]["right"] + 0.5, table


def test_no_figure_on_the_page_mixes_units(laid_out):
    figures = laid_out["figures"]
    assert figures
    for figure in figures:
        for axis in figure["axes"]:
            assert len(axis["units"]) <= 1 and len(axis["outcomes"]) <= 1, figure


def test_dom_has_every_section_and_no_script(chromium, page, tmp_path):
    result = _run(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = result.stdout
    assert "</html>" in dom, f"no DOM dumped; chromium said: {result.stderr[-2000:]}"
    for section_id in SECTIONS:
        assert re.search(rf'<section id="{section_id}">\s*<h2>', dom), (
            f"section {section_id} not rendered"
        )
    assert "<script" not in dom.lower(), "a <script> element exists in the rendered page"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom, (
        "the script-named study is not shown as text"
    )
    assert dom.count("<svg") >= 10
    assert 'class="banner"' in dom


def test_page_loads_nothing_external_and_logs_no_errors(chromium, page, tmp_path):
    requests, problems = load_and_listen(chromium, page.as_uri(), tmp_path)
    assert requests, "the harness saw no request at all (the page's own load should be one)"
    assert all(url == page.as_uri() for url in requests), f"unexpected loads: {requests}"
    assert problems == []


def test_harness_catches_external_loads_and_errors(chromium, tmp_path):
    """The checks above are not vacuous: a page that breaks both rules is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
        '<script>console.error("boom")</script></body></html>',
        encoding="utf-8",
    )
    requests, problems = load_and_listen(chromium, bad.as_uri(), tmp_path)
    assert "http://127.0.0.1:9/x.png" in requests
    assert any("boom" in p for p in problems)
    assert any("load failed" in p for p in problems)
