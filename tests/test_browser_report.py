"""report.html in real headless Chromium: no console errors, every chart visible, prints to PDF.

Chromium is driven through its command line (``--screenshot``, ``--print-to-pdf``) and, for
console errors and element geometry, through the Chrome DevTools Protocol over a tiny websocket
client written here (no extra package). The screenshot and the PDF are kept in
``test-artifacts/`` (git-ignored). The test is skipped, with the reason, only when no Chromium
binary is installed (``.ci/run`` installs Debian's ``chromium`` package).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from report_fixtures import complete_results, hostile_results

from rce.report import write_report
from rce.report.manifest import build_manifest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
#: Charts in the complete fixture: trend, distribution, dose-response, 3 forest plots
#: (race/ethnicity, EL status, school), probability bars, love plot.
EXPECTED_CHARTS = 8

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)


def _chromium(args: list[str], user_dir: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report"
    write_report(complete_results(), out, manifest=build_manifest(inputs=[], timestamp=False))
    return out


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser-hostile") / "report"
    write_report(hostile_results(), out, manifest=build_manifest(inputs=[], timestamp=False))
    return out


# --- a minimal websocket client, enough for the DevTools protocol -----------------------------


class _WebSocket:
    def __init__(self, url: str, timeout: float = 30.0):
        parts = urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake closed")
            head += chunk
        assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
        self.next_id = 0

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("websocket closed")
            data += chunk
        return data

    def send(self, payload: dict[str, Any]) -> int:
        self.next_id += 1
        body = json.dumps({"id": self.next_id, **payload}).encode()
        header = bytearray([0x81])
        if len(body) < 126:
            header.append(0x80 | len(body))
        elif len(body) < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack(">H", len(body))
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", len(body))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        self.sock.sendall(bytes(header) + mask + masked)
        return self.next_id

    def recv(self) -> dict[str, Any]:
        message = b""
        while True:
            b0, b1 = self._exact(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._exact(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(length)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0x9, 0xA):  # ping / pong: not used by DevTools
                continue
            message += data
            if b0 & 0x80:
                return json.loads(message)

    def close(self) -> None:
        self.sock.close()


class _DevTools:
    """One page of a headless Chromium, with every console/log event recorded."""

    def __init__(self, user_dir: Path):
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", "--remote-debugging-port=0",
             "--window-size=1200,900", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own process group, so closing ends the renderer and helper processes too.
            start_new_session=True,
        )
        port_file = user_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets: list[dict[str, Any]] = []
        while not any(t.get("type") == "page" for t in targets):
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium opened no page")
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                targets = json.load(resp)
            time.sleep(0.05)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = _WebSocket(page["webSocketDebuggerUrl"])
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = self.ws.send({"method": method, "params": params})
        while True:
            msg = self.ws.recv()
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(self.ws.recv())

    def drain(self, seconds: float) -> None:
        self.ws.sock.settimeout(seconds)
        try:
            while True:
                self.events.append(self.ws.recv())
        except (TimeoutError, socket.timeout):
            pass
        finally:
            self.ws.sock.settimeout(30)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _console_errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args", []))[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", "")[:300])
    return errors


_GEOMETRY = """
JSON.stringify({
  charts: [...document.querySelectorAll('svg.chart')].map(svg => {
    const r = svg.getBoundingClientRect();
    const cs = getComputedStyle(svg);
    const label = (svg.getAttribute('aria-labelledby') || '').split(' ')
      .map(id => document.getElementById(id)).filter(Boolean).map(e => e.textContent);
    return {w: r.width, h: r.height, visible: cs.visibility, display: cs.display,
            opacity: cs.opacity, texts: svg.querySelectorAll('text').length, label: label};
  }),
  takeaways: document.querySelectorAll('figure .takeaway').length,
  scripts: document.scripts.length,
  iframes: document.querySelectorAll('iframe, img, object, embed').length,
  summary: document.querySelectorAll('#summary li').length,
  title: document.title,
  bodyText: document.body.innerText.length
})
"""


def _inspect(html: Path, user_dir: Path) -> tuple[dict[str, Any], list[str]]:
    tools = _DevTools(user_dir)
    try:
        tools.call("Runtime.enable")
        tools.call("Log.enable")
        tools.call("Page.enable")
        tools.call("Page.navigate", url=html.as_uri())
        tools.wait_for("Page.loadEventFired")
        tools.drain(0.5)
        info = json.loads(tools.evaluate(_GEOMETRY))
        return info, _console_errors(tools.events)
    finally:
        tools.close()


@needs_chromium
def test_report_renders_without_console_errors_and_every_chart_is_visible(report_dir):
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:
        info, errors = _inspect(report_dir / "report.html", Path(user_dir))
    assert errors == []
    assert info["scripts"] == 0 and info["iframes"] == 0
    assert 1 <= info["summary"] <= 5
    assert len(info["charts"]) == EXPECTED_CHARTS
    for chart in info["charts"]:
        assert chart["w"] > 200 and chart["h"] > 100, chart
        assert chart["visible"] == "visible" and chart["display"] != "none"
        assert float(chart["opacity"]) > 0
        assert chart["texts"] > 3  # axis labels and direct labels are real text
        assert len(chart["label"]) == 2 and all(chart["label"]), chart  # title + alt text
    assert info["takeaways"] == EXPECTED_CHARTS


@needs_chromium
def test_hostile_names_do_not_execute_in_the_browser(hostile_dir):
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:
        info, errors = _inspect(hostile_dir / "report.html", Path(user_dir))
    assert errors == []
    assert info["scripts"] == 0 and info["iframes"] == 0
    assert "<script>" in info["title"]  # shown as text


@needs_chromium
def test_screenshot_artifact(report_dir):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:
        proc = _chromium([f"--screenshot={shot}", "--window-size=1200,3000",
                          (report_dir / "report.html").as_uri()], Path(user_dir))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


@needs_chromium
def test_print_to_pdf_has_several_readable_pages(report_dir):
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "report.pdf"
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:
        proc = _chromium([f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                          (report_dir / "report.html").as_uri()], Path(user_dir))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    assert pages > 1
    # Text is embedded as fonts (not rasterised): the PDF carries font objects.
    assert b"/FontFile" in data or b"/Font" in data
