"""Real browsers for tests, driven headless from Debian's packages (nothing downloaded).

- Chromium through Playwright with `executable_path=/usr/bin/chromium` (no `playwright install`).
- Firefox ESR through its own WebDriver BiDi (`--remote-debugging-port`; no geckodriver).
- WebKitGTK (MiniBrowser) through `WebKitWebDriver` under a private Xvfb.

Each launcher is a context manager yielding a `Driver`: `goto(url)`, `click(css)`,
`evaluate(js)` and `wait_for(js, timeout_s)`, which waits on a page condition (evaluated in
the page), never on a sleep. Browsers get a fresh profile and the environment given, e.g.
a private PulseAudio's `client_env()`. Without the browser a test skips locally and fails
in CI (tests/realparts.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from realparts import need_tool, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
WEBKIT_MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


class Driver(Protocol):
    def goto(self, url: str) -> None: ...
    def click(self, css: str) -> None: ...
    def evaluate(self, js: str) -> Any: ...
    def wait_for(self, js: str, timeout_s: float) -> Any: ...


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_js(js: str) -> str:
    """A promise, evaluated in the page, that resolves with JSON once `js` is truthy."""
    return (
        "new Promise((resolve) => { const t = setInterval(() => { let v; "
        f"try {{ v = ({js}); }} catch (e) {{ v = undefined; }} "
        "if (v) { clearInterval(t); resolve(JSON.stringify(v)); } }, 100); })"
    )


# --- Chromium ---------------------------------------------------------------------------------


class _PlaywrightDriver:
    def __init__(self, page: Any) -> None:
        self.page = page

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def click(self, css: str) -> None:
        self.page.click(css)

    def evaluate(self, js: str) -> Any:
        return self.page.evaluate(js)

    def wait_for(self, js: str, timeout_s: float) -> Any:
        handle = self.page.wait_for_function(js, timeout=timeout_s * 1000)
        return handle.json_value()


@contextlib.contextmanager
def chromium(
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    permissions: list[str] | None = None,
    init_script: str | None = None,
    audible: bool = False,
) -> Iterator[_PlaywrightDriver]:
    """Debian's Chromium through Playwright; `audible` keeps real output (no --mute-audio)."""
    need_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        import pytest

        pytest.skip("needs the playwright Python package (the test extra)")
    profile = tempfile.mkdtemp(prefix="doctor-chromium-")
    try:
        with sync_playwright() as p:
            options: dict[str, Any] = {
                "executable_path": CHROMIUM,
                "headless": True,
                "args": [*CHROMIUM_FLAGS, *(args or [])],
                "env": env or dict(os.environ),
                "bypass_csp": True,  # the page's CSP forbids eval, which wait_for_function uses
            }
            if audible:
                options["ignore_default_args"] = ["--mute-audio"]
            if permissions is not None:
                options["permissions"] = permissions
            ctx = p.chromium.launch_persistent_context(profile, **options)
            try:
                if init_script:
                    ctx.add_init_script(init_script)
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                yield _PlaywrightDriver(page)
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# --- Firefox ESR through WebDriver BiDi ---------------------------------------------------------

FIREFOX_PREFS = {
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.navigator.streams.fake": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "app.update.disabledForTesting": True,
}


class _BidiDriver:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.context = ""

    def send(self, method: str, params: dict[str, Any], timeout_s: float = 30.0) -> Any:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            msg = json.loads(raw)
            if msg.get("id") != my_id:
                continue  # an event
            if msg.get("type") == "error":
                raise RuntimeError(f"BiDi {method}: {msg.get('error')}: {msg.get('message')}")
            return msg.get("result")

    def goto(self, url: str) -> None:
        self.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    def evaluate(self, js: str, timeout_s: float = 30.0) -> Any:
        res = self.send(
            "script.evaluate",
            {"expression": js, "target": {"context": self.context}, "awaitPromise": True},
            timeout_s,
        )
        if res.get("type") == "exception":
            raise RuntimeError(f"page exception: {res.get('exceptionDetails', {}).get('text')}")
        value = res.get("result", {})
        return value.get("value")

    def click(self, css: str) -> None:
        box = self.evaluate(
            f"JSON.stringify(document.querySelector({json.dumps(css)}).getBoundingClientRect())"
        )
        r = json.loads(box)
        x, y = int(r["x"] + r["width"] / 2), int(r["y"] + r["height"] / 2)
        self.send(
            "input.performActions",
            {
                "context": self.context,
                "actions": [
                    {
                        "type": "pointer",
                        "id": "mouse",
                        "parameters": {"pointerType": "mouse"},
                        "actions": [
                            {"type": "pointerMove", "x": x, "y": y},
                            {"type": "pointerDown", "button": 0},
                            {"type": "pointerUp", "button": 0},
                        ],
                    }
                ],
            },
        )

    def wait_for(self, js: str, timeout_s: float) -> Any:
        return json.loads(self.evaluate(_wait_js(js), timeout_s))


@contextlib.contextmanager
def firefox(
    env: dict[str, str] | None = None, prefs: dict[str, Any] | None = None
) -> Iterator[_BidiDriver]:
    """Firefox ESR headless, driven through its built-in WebDriver BiDi."""
    need_tool("firefox-esr")
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="doctor-firefox-"))
    lines = [
        f"user_pref({json.dumps(k)}, {json.dumps(v)});"
        for k, v in {**FIREFOX_PREFS, **(prefs or {})}.items()
    ]
    (profile / "user.js").write_text("\n".join(lines) + "\n")
    log = profile / "firefox.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                "firefox-esr",
                "--headless",
                "--no-remote",
                "--profile",
                str(profile),
                "--remote-debugging-port=0",  # its own free port, named in its log: no race
                "about:blank",
            ],
            env={**(env or dict(os.environ)), "MOZ_CRASHREPORTER_DISABLE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        url = _wait_for_line(log, r"WebDriver BiDi listening on (ws://\S+)", proc, 60)
        with connect(f"{url}/session", max_size=None, open_timeout=30) as ws:
            driver = _BidiDriver(ws)
            driver.send("session.new", {"capabilities": {}})
            tree = driver.send("browsingContext.getTree", {})
            driver.context = tree["contexts"][0]["context"]
            try:
                yield driver
            except BaseException as exc:
                exc.add_note(f"firefox stderr: {log.read_text(errors='replace')[-3000:]}")
                raise
            finally:
                with contextlib.suppress(Exception):
                    driver.send("session.end", {}, 5)
    finally:
        stop_process(proc)
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for_line(log: Path, pattern: str, proc: subprocess.Popen[Any], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"browser exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"no {pattern!r} within {timeout_s:g} s")


# --- WebKitGTK through WebKitWebDriver -----------------------------------------------------------


class _WebDriver:
    def __init__(self, base: str, session: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=f"{base}/session/{session}", timeout=60)

    def _post(self, path: str, body: dict[str, Any], timeout_s: float = 60) -> Any:
        r = self.http.post(path, json=body, timeout=timeout_s)
        value = r.json().get("value")
        if r.status_code != 200:
            raise RuntimeError(f"WebDriver {path}: {value}")
        return value

    def goto(self, url: str) -> None:
        self._post("/url", {"url": url})

    def evaluate(self, js: str) -> Any:
        return self._post("/execute/sync", {"script": f"return ({js});", "args": []})

    def click(self, css: str) -> None:
        el = self._post("/element", {"using": "css selector", "value": css})
        self._post(f"/element/{next(iter(el.values()))}/click", {})

    def wait_for(self, js: str, timeout_s: float) -> Any:
        script = f"const done = arguments[0]; ({_wait_js(js)}).then(done);"
        self.http.post("/timeouts", json={"script": int(timeout_s * 1000)})
        return json.loads(
            self._post("/execute/async", {"script": script, "args": []}, timeout_s + 10)
        )


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A private X display; yields its DISPLAY value."""
    need_tool("Xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        number = _read_display(read_fd, 30)
        yield f":{number}"
    finally:
        os.close(read_fd)
        stop_process(proc)


def _read_display(fd: int, timeout_s: float) -> str:
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(os.read(fd, 64)), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not got or not got[0].strip():
        raise RuntimeError("Xvfb did not report its display")
    return got[0].decode().strip()


@contextlib.contextmanager
def webkit(env: dict[str, str] | None = None, mock_capture: bool = True) -> Iterator[_WebDriver]:
    """WebKitGTK's MiniBrowser under Xvfb, through WebKitWebDriver."""
    need_tool("WebKitWebDriver")
    import httpx

    with xvfb() as display:
        port = _free_port()
        proc = subprocess.Popen(
            ["WebKitWebDriver", f"--port={port}"],
            env={**(env or dict(os.environ)), "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/status", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("WebKitWebDriver did not start")
                time.sleep(0.05)
            caps = {
                "capabilities": {
                    "alwaysMatch": {
                        "webkitgtk:browserOptions": {
                            "binary": WEBKIT_MINIBROWSER,
                            "args": [
                                "--automation",
                                "--enable-media-stream=true",
                                f"--enable-mock-capture-devices={str(mock_capture).lower()}",
                                "--enable-webaudio=true",
                                "--media-playback-requires-user-gesture=false",
                            ],
                        }
                    }
                }
            }
            r = httpx.post(f"{base}/session", json=caps, timeout=60)
            session = r.json()["value"]["sessionId"]
            driver = _WebDriver(base, session)
            try:
                yield driver
            finally:
                with contextlib.suppress(Exception):
                    driver.http.delete("", timeout=10)
        finally:
            stop_process(proc)
