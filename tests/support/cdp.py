"""A small Chrome DevTools Protocol client: Debian's headless chromium over a websocket.

Why not playwright: its Python package ships its own node driver and wants to download
its own browser builds; the DevTools protocol needs only a websocket (``websocket-client``)
and the few commands below, against the chromium Debian ships.

Chromium starts with a new, empty --user-data-dir, with everything that talks to the
network on its own switched off, and ``--remote-debugging-port=0``: it picks a free port
and writes it to ``DevToolsActivePort`` in the profile dir. The page's websocket comes
from ``/json/list`` on loopback.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


class CdpError(RuntimeError):
    pass


def chromium_path() -> str | None:
    return shutil.which(CHROMIUM)


class Page:
    """One page target: send commands, collect the events that arrive meanwhile."""

    def __init__(self, url: str, timeout: float) -> None:
        self.timeout = timeout
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True, enable_multithread=False)
        self.events: list[dict[str, Any]] = []
        self._next = 0

    def close(self) -> None:
        self.ws.close()

    def _receive(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("chromium did not answer in time")
        self.ws.settimeout(left)
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise TimeoutError("chromium did not answer in time") from None
        return message

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, since: int = 0) -> dict[str, Any]:
        """The first event ``method`` at or after index ``since`` of ``events``."""
        deadline = time.monotonic() + self.timeout
        seen = since
        while True:
            for event in self.events[seen:]:
                if event["method"] == method:
                    return event["params"]
            seen = len(self.events)
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e["method"] == method]

    # -- what the tests do ------------------------------------------------------------------

    def open(self, url: str, *, width: int = 1280, height: int = 900) -> None:
        """Record console, log and network from the start, then load ``url`` to its load event."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        mark = len(self.events)
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired", since=mark)

    def color_scheme(self, scheme: str, media: str = "") -> None:
        self.send(
            "Emulation.setEmulatedMedia", media=media, features=[{"name": "prefers-color-scheme", "value": scheme}]
        )

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"evaluating {expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, *, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        return base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])

    def pdf(self) -> bytes:
        return base64.b64decode(self.send("Page.printToPDF", printBackground=True)["data"])

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations among them)."""
        found = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in e.get("args", []))
            for e in self.of("Runtime.consoleAPICalled")
            if e.get("type") in ("error", "assert")
        ]
        found += [str(e["exceptionDetails"]) for e in self.of("Runtime.exceptionThrown")]
        found += [
            f"{e['entry'].get('source')}: {e['entry'].get('text')}"
            for e in self.of("Log.entryAdded")
            if e["entry"].get("level") == "error"
        ]
        return found

    def requests(self) -> list[str]:
        return [e["request"]["url"] for e in self.of("Network.requestWillBeSent")]


class Chromium:
    """A headless chromium of our own, with its own profile dir; ended by its pid."""

    def __init__(self, profile: Path, *, timeout: float = 60.0) -> None:
        binary = chromium_path()
        if binary is None:
            raise CdpError("chromium is not installed")
        self.profile = profile
        self.timeout = timeout
        profile.mkdir(parents=True, exist_ok=True)
        self.log = (profile.parent / f"{profile.name}.log").open("wb")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        self.port = self._port()

    def _port(self) -> int:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CdpError(f"chromium exited with {self.process.returncode}; see {self.log.name}")
            try:
                first = active.read_text().splitlines()[0]
                return int(first)
            except (OSError, IndexError, ValueError):
                time.sleep(0.1)
        raise CdpError(f"chromium did not open its DevTools port in {self.timeout:.0f}s; see {self.log.name}")

    def new_page(self) -> Page:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=self.timeout) as answer:
            targets = json.load(answer)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise CdpError("chromium has no page target")
        return Page(pages[0]["webSocketDebuggerUrl"], self.timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # its own session: chromium's helpers too
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self.log.close()
