"""Capture-format records (doctor.capture.format) to normalised events."""

from __future__ import annotations

from doctor.capture.format import ConnEvent, Frame
from doctor.session.events import META_CLOSE, META_OPEN, AudioInfo, Event, make_event, meta


def from_capture(rec: Frame | ConnEvent, line: int | None = None) -> Event:
    """One capture record as an event; the relay's wall clock is the receive time."""
    if isinstance(rec, ConnEvent):
        kind = META_OPEN if rec.event == "open" else META_CLOSE
        return meta(kind, rec.wall, rec.conn, **rec.details)
    if rec.msg is None:
        payload: dict[str, object] = (
            {"_binary": rec.binary} if rec.binary is not None else {"_text": rec.text or ""}
        )
        return Event("", rec.dir, rec.wall, payload, recv_t=rec.wall, conn=rec.conn, line=line)
    audio = None
    if rec.audio is not None:
        n = rec.audio.get("bytes")
        audio = AudioInfo(
            n if isinstance(n, int) else None, bool(rec.audio.get("valid_base64", True))
        )
    return make_event(rec.msg, rec.dir, rec.wall, conn=rec.conn, audio=audio, line=line)
