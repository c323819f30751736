"""A browser app (real headless Chromium, Debian's, through Playwright) goes through the relay
with nothing changed but its URL: a token in `?token=`, JSON text frames, audio paced by a
timer; the relay watches it like any app and writes nothing secret."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from browsers import chromium
from watchparts import chunked, mint, pcm16, problems, run, speech, start_watch

from doctor.sandbox.threaded import ThreadedSandbox

PAGE = """<!doctype html><meta charset="utf-8"><title>voice app</title><script>
const q = new URLSearchParams(location.search);
const seen = [];
let chunks = [];
fetch("audio.json").then((r) => r.json()).then((c) => { chunks = c; start(); });
function start() {
const ws = new WebSocket(q.get("url") + "?token=" + encodeURIComponent(q.get("token")));
ws.onopen = () => ws.send(JSON.stringify({type: "session.update", session: {}}));
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  seen.push(msg.type);
  if (msg.type === "session.ready") {
    let i = 0;
    const timer = setInterval(() => {  // a microphone's pace: 50 ms of audio every 50 ms
      if (i >= chunks.length) { clearInterval(timer); return; }
      ws.send(JSON.stringify({type: "input.audio", audio: chunks[i++]}));
    }, 50);
  }
  if (msg.type === "reply.done") ws.send(JSON.stringify({type: "session.end"}));
  if (msg.type === "session.ended") ws.close(1000, "bye");
};
ws.onclose = (e) => { window.__result = {seen, code: e.code}; };
}
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_page(folder: Path, audio: list[str]) -> Iterator[str]:
    (folder / "app.html").write_text(PAGE, encoding="utf-8")
    (folder / "audio.json").write_text(json.dumps(audio), encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/app.html"
    finally:
        server.shutdown()
        server.server_close()


def test_a_browser_app_through_the_relay(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    wp = start_watch(sandbox, "--sessions", "1", "--json", "--capture", str(capture))
    token = run(mint(wp, sandbox.api_key))  # the app's backend mints it (here, through the relay)
    audio = [base64.b64encode(c).decode() for c in chunked(pcm16(speech(0.8, 1.3)), 2400)]
    params = {"url": wp.url, "token": token}
    with serve_page(tmp_path, audio) as page, chromium() as browser:
        browser.goto(page + "?" + urllib.parse.urlencode(params))
        result = browser.wait_for("window.__result", 60)
    assert result["code"] == 1000
    assert "session.ready" in result["seen"] and "reply.audio" in result["seen"]
    assert result["seen"][-1] == "session.ended"
    rc, out = wp.finish()
    report = json.loads(out)
    assert rc == 0, wp.stderr_text
    assert problems(report) == [], [(c["id"], c["cause"]) for c in problems(report)]
    opens = [
        json.loads(x)
        for x in capture.read_text(encoding="utf-8").splitlines()
        if '"event":"open"' in x
    ]
    assert [(o["auth"], o["token_seq"]) for o in opens] == [("query", 1)]
    for text in (out, wp.stderr_text, capture.read_text(encoding="utf-8")):
        assert token not in text and sandbox.api_key not in text
