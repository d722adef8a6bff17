"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages ended by a NUL byte, read by the browser from fd 3 and written to fd 4), so a
test can tap a button the way a phone does without a websocket client or a driver binary.

    with Browser(chromium(), (390, 844)) as browser:
        page = browser.open(url)                 # a tab, loaded
        x, y = page.evaluate("...")              # e.g. a button's centre
        page.tap(x, y)                           # a touch, as a finger makes it
        page.wait("Page.loadEventFired")         # the page the tap led to
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from typing import Any

TIMEOUT = 30.0  # seconds for any one answer or event: a hung browser fails the test


class Browser:
    def __init__(self, executable: str, window: tuple[int, int]) -> None:
        self.window = window
        read, self._out = os.pipe()
        self._in, write = os.pipe()
        # The browser's ends moved above 3 and 4 first, then bash puts them on 3 and 4 and
        # closes the moved ones (dash takes one-digit fds only; no preexec_fn: it is not
        # safe beside the test server's threads).
        to_browser, from_browser = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
                                    for fd in (read, write))
        os.close(read)
        os.close(write)
        ends = f"3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-"
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$@" {ends}', "bash", executable, "--headless",
             "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--remote-debugging-pipe",
             "--disable-background-networking", "--no-first-run", "--disable-component-update",
             "--disable-sync", "--disable-default-apps",
             f"--window-size={window[0]},{window[1]}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_browser, from_browser))
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.call("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._out)
        os.close(self._in)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._next

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send a command and wait for its answer; events that arrive meanwhile are kept."""
        wanted = self.send(method, params, session)
        while True:
            message = self._receive()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def wait(self, event: str, session: str | None = None) -> dict[str, Any]:
        """The first event `event` (of the session) not yet waited for."""
        while True:
            for i, message in enumerate(self.events):
                if message["method"] == event and message.get("sessionId") == session:
                    del self.events[: i + 1]
                    return message
            message = self._receive()
            if "method" in message:
                self.events.append(message)

    def open(self, url: str) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", {
            "width": self.window[0], "height": self.window[1], "deviceScaleFactor": 1,
            "mobile": True})
        page.call("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
        page.call("Page.navigate", {"url": url})
        page.wait("Page.loadEventFired")
        return page

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(text)
        return message


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def wait(self, event: str) -> dict[str, Any]:
        return self.browser.wait(event, self.session)

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in found:
            raise RuntimeError(f"{expression}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def tap(self, x: float, y: float) -> None:
        """A finger down and up at (x, y), in CSS pixels of the viewport."""
        point = [{"x": x, "y": y}]
        self.call("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
        self.call("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
