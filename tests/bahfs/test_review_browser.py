"""The review site in a real browser: headless Chromium (Debian's ``chromium``,
installed by .ci/setup.sh) driven over the DevTools protocol loads the index and a
video's page from disk, offline; no console error or uncaught exception; a real mouse
hover over the tracks shows that frame and the values there; the screenshot shows the
tracks (not a blank page); the index sorts and filters."""

from __future__ import annotations

import base64
import io
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from bahfs.review.site import review_site

pytestmark = pytest.mark.slow


class Browser:
    """One headless Chromium page, over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        exe = shutil.which("chromium")
        if exe is None:
            pytest.fail("chromium is not installed: `apt-get install -y chromium` "
                        "(.ci/setup.sh does it)")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--hide-scrollbars", "--window-size=1400,1300", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)

    def eval(self, expr: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expr, returnByValue=True,
                        awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expr}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url: str, ready: str) -> None:
        """Navigate and wait until ``ready`` (a JS expression) is true."""
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while not self.eval(f"document.readyState === 'complete' && ({ready})"):
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not get ready ({ready})")
            time.sleep(0.2)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries so far."""
        self.eval("0")  # drain the events that arrived
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:500])
            elif e.get("method") == "Runtime.consoleAPICalled" and p["type"] in ("error",
                                                                               "assert"):
                out.append(json.dumps(p["args"])[:500])
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry']['text']} ({p['entry'].get('url')})")
        return out

    def screenshot(self) -> np.ndarray:
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left"
                  if kind != "mouseMoved" else "none", clickCount=1)

    def close(self) -> None:
        if hasattr(self, "ws"):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def coloured(img: np.ndarray) -> float:
    """Fraction of pixels with a clear colour (the tracks; text and grid are grey)."""
    rgb = img.astype(np.int16)
    return float(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).mean())


def test_the_site_in_a_browser(review_store: Path, tmp_path: Path,
                               browser: Browser) -> None:
    report = review_site(review_store, tmp_path / "site")
    vid, page = next(iter(report.pages.items()))
    browser.open(page.as_uri(), "document.querySelectorAll('#fig .scatterlayer .trace')"
                                ".length > 3")
    assert browser.errors() == []
    n_traces = browser.eval("document.getElementById('fig').data.length")
    drawn = browser.eval("document.querySelectorAll('#fig .scatterlayer .trace').length")
    assert drawn == n_traces
    # hover the mouse over the A/H row at 5 s: that frame, its thumbnail, its values
    x, y = browser.eval("""(() => {
        const gd = document.getElementById('fig'), L = gd._fullLayout;
        const box = gd.getBoundingClientRect(), ya = L.yaxis2;
        return [box.left + L.xaxis._offset + L.xaxis.l2p(5.0),
                box.top + ya._offset + ya._length / 2];
    })()""")
    browser.mouse("mouseMoved", x - 2, y)
    browser.mouse("mouseMoved", x, y)
    deadline = time.monotonic() + 10
    while "at 5." not in (caption := browser.eval("document.getElementById('cap')"
                                                   ".textContent")):
        if time.monotonic() > deadline:
            pytest.fail(f"hovering at 5 s did not show that frame: {caption!r}")
        time.sleep(0.2)
    frame = int(caption.split()[1])
    assert 110 <= frame <= 130  # about 5 s at 24 fps
    assert browser.eval("document.getElementById('preview').src").startswith(
        "data:image/jpeg")
    values = browser.eval("document.getElementById('vals').innerText")
    assert "energy_db" in values and "voiced" in values and "frame label" in values
    browser.mouse("mousePressed", x, y)
    browser.mouse("mouseReleased", x, y)
    assert browser.errors() == []
    # the screenshot shows the tracks: the figure's area is far from blank
    shot = browser.screenshot()
    top = int(browser.eval("document.getElementById('fig').getBoundingClientRect().top"))
    Image.fromarray(shot).save(tmp_path / "page.png")
    fig_area = shot[top:]
    assert fig_area.std() > 20 and coloured(fig_area) > 0.01, tmp_path / "page.png"
    x0, y0, w, h = (int(v) for v in browser.eval(
        "(r => [r.left, r.top, r.width, r.height])(document.getElementById('preview')"
        ".getBoundingClientRect())"))
    preview = shot[y0:y0 + h, x0:x0 + w]
    assert w >= 200 and preview.std() > 20  # the frame at the cursor is shown

    browser.open(report.index.as_uri(), "document.getElementById('count').textContent")
    assert browser.errors() == []
    assert browser.eval("document.getElementById('count').textContent") == \
        f"{len(report.pages)} of {len(report.pages)}"
    browser.eval(f"""(() => {{ const f = document.getElementById('filter');
        f.value = {json.dumps(vid)}; f.dispatchEvent(new Event('input')); }})()""")
    assert browser.eval("document.getElementById('count').textContent") == \
        f"1 of {len(report.pages)}"
    browser.eval("""(() => { const f = document.getElementById('filter');
        f.value = ''; f.dispatchEvent(new Event('input'));
        document.querySelectorAll('#videos th')[4].click();
        document.querySelectorAll('#videos th')[4].click(); })()""")
    durations = browser.eval("Array.from(document.querySelectorAll('#videos tbody tr'))"
                             ".map(r => parseFloat(r.cells[4].dataset.v))")
    assert durations == sorted(durations, reverse=True)
    assert browser.eval(f"document.querySelector('a[href=\"videos/{vid}.html\"]') !== null")
    assert browser.errors() == []
