"""`agent-doctor session ID ID`: an id given twice is fetched and analysed once, in the
order first given."""

from __future__ import annotations

from collections.abc import Callable

from session_clients import ended, session_cli

from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


def test_a_repeated_id_is_fetched_once_and_the_order_kept(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    a, b = ended(sb), ended(sb)
    code, report, _, err = session_cli(sb, b, a, f" {b}", a)
    assert code == 0, err
    fetched = [c["evidence"]["session_id"] for c in report["checks"] if c["id"] == "session-fetch"]
    assert fetched == [b, a]
    assert [s["session_id"] for s in report["sessions"]] == [b, a]
    for sid in (a, b):
        gets = [e for e in sb.events if e["type"] == "http.request" and e["path"].endswith(sid)]
        assert len(gets) == 1, (sid, gets)
