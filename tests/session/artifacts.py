"""Vendor artifacts written the way the service writes them (session-formats §3-§4).

timeline.json: compact one line, raw UTF-8, no trailing newline, key order of §3.3;
metadata.json: 2-space indent, no newline; recording: stereo Ogg/Opus through libsndfile,
left = user, right = agent, at `<session_id>/recording/audio.ogg`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SID = "sess_5d1c0a9e7b3f42c68e0f1a2b3c4d5e6f"
START_MS = 1_800_000_000_000


def turn(
    tid: str,
    *,
    status: str = "completed",
    trigger: str = "user_speech",
    user: str | None = None,
    us: int | None = None,
    ue: int | None = None,
    text: str | None = None,
    audible: int | None = None,
    end: int | None = None,
    ttfa: int | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "turn_id": tid,
        "item_id": "" if tid.startswith("user_speech") else "msg_" + tid[5:],
        "status": status,
        "trigger": trigger,
        "requested_instructions": None,
        "user_transcript": user,
        "user_speech_started_at_ms": None if us is None else START_MS + us,
        "user_speech_ended_at_ms": None if ue is None else START_MS + ue,
        "user_confidence": 1.0 if user else None,
        "agent_text": text,
        "agent_reply_started_at_ms": None if audible is None else START_MS + audible,
        "agent_reply_ended_at_ms": None if end is None else START_MS + end,
        "interrupted_at_ms": START_MS + end if status == "interrupted" and end else None,
        "time_to_first_audio_ms": ttfa,
    }
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def rid(n: int) -> str:
    return f"resp_{n:032x}"


def normal_timeline(reason: str = "participant_disconnected") -> dict[str, Any]:
    """A normal session with the field's quirks: TTFA from reply creation, a user_speech_1 +
    mislabelled greeting shape, participant_disconnected with public reason client_end."""
    call = {
        "call_id": "chatcmpl-tool-0123456789abcdef",
        "name": "lookup",
        "arguments": {"day": "sunday"},
        "result": '{"open": "10:00"}',
        "dispatched_at_ms": START_MS + 16100,
        "result_received_at_ms": START_MS + 16900,
        "duration_ms": 800,
        "is_error": False,
        "timed_out": False,
        "parallel_call_id": "item_0123456789ab",
    }
    turns = [
        turn(
            rid(1),
            trigger="greeting",
            text="Hello! How can I help?",
            audible=390,
            end=2105,
            ttfa=366,
        ),
        turn(
            rid(2),
            user="When do you open tomorrow?",
            us=4200,
            ue=6100,
            text="We open at nine and close at six.",
            audible=7280,
            end=10050,
            ttfa=1182,
        ),
        turn(
            rid(3),
            status="interrupted",
            user="And what about",
            us=11000,
            ue=12500,
            text="On weekdays we",
            audible=13400,
            end=14900,
            ttfa=900,
        ),
        turn(
            rid(4), user="on Sunday?", us=14903, ue=15900, text=None, tool_calls=[call], end=16050
        ),
        turn(
            rid(5),
            trigger="tool_result",
            text="On Sunday we open at ten.",
            audible=18000,
            end=20100,
            ttfa=1100,
        ),
        turn("user_speech_1", user="Thanks, bye.", us=21000),
        turn(rid(6), trigger="greeting", text="Goodbye!", end=23500),
    ]
    return {
        "session_id": SID,
        "started_at_unix_ms": START_MS,
        "turns": turns,
        "config_changes": [
            {
                "received_at_ms": START_MS + 21,
                "during_turn_id": None,
                "update": {
                    "system_prompt": "You are a shop assistant.",
                    "greeting": "Hello! How can I help?",
                    "input": {
                        "type": "audio",
                        "format": {"encoding": "audio/pcm", "sample_rate": 24000},
                        "turn_detection": None,
                    },
                    "output": {
                        "type": "audio",
                        "voice": "jane",
                        "format": {"encoding": "audio/pcm", "sample_rate": 24000},
                        "volume": 100,
                    },
                    "tools": [
                        {
                            "type": "function",
                            "name": "lookup",
                            "description": "",
                            "parameters": {},
                            "timeout_seconds": 30.0,
                            "execution_mode": "interactive",
                            "http": None,
                        }
                    ],
                },
            }
        ],
        "ended": {
            "reason": reason,
            "public_reason": "client_end",
            "duration_seconds": 26.6192998046875,
        },
    }


def metadata() -> dict[str, Any]:
    return {
        "session_id": SID,
        "started_at": "2027-01-15T08:00:00.021874+00:00",
        "ended_at": "2027-01-15T08:00:26.481000+00:00",
        "format": "ogg/opus",
        "channels": 2,
        "channel_layout": "stereo (left=user, right=agent)",
        "sample_rate": 24000,
        "file": f"{SID}/recording/audio.ogg",
        "uploaded_chunks": 3,
        "dropped_chunks": 0,
    }


def speechlike(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Band-limited noise under a syllable envelope: what the echo core sees in speech."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    noise = rng.standard_normal(n)
    sos = signal.butter(4, (200, 3400), btype="bandpass", fs=rate, output="sos")
    x = signal.sosfilt(sos, noise)
    env = np.clip(np.sin(np.arange(n) / rate * 2 * np.pi * 3.0 + rng.uniform(0, 6)), 0, None)
    env *= rng.uniform(0.5, 1.0, size=n // rate + 1).repeat(rate)[:n]
    return np.asarray(0.2 * x * env / (np.std(x) + 1e-9))


def recording(
    seconds: float,
    agent_spans: list[tuple[float, float]],
    user_spans: list[tuple[float, float]],
    *,
    echo_db: float | None = None,
    delay_s: float = 0.15,
    rate: int = 48000,
) -> np.ndarray:
    """Stereo float32: right = agent speech in its spans; left = user speech (+ echo)."""
    n = int(seconds * rate)
    left, right = np.zeros(n), np.zeros(n)
    for i, (s, e) in enumerate(agent_spans):
        a, b = int(s * rate), min(n, int(e * rate))
        right[a:b] = speechlike((b - a) / rate, rate, 100 + i)
    for i, (s, e) in enumerate(user_spans):
        a, b = int(s * rate), min(n, int(e * rate))
        left[a:b] += speechlike((b - a) / rate, rate, 200 + i)
    if echo_db is not None:
        d = int(delay_s * rate)
        left[d:] += right[: n - d] * 10 ** (echo_db / 20)
    left += np.random.default_rng(7).standard_normal(n) * 1e-4
    return np.stack([left, right], axis=1).astype(np.float32)


def write_folder(
    folder: Path,
    timeline: dict[str, Any] | None = None,
    audio: np.ndarray | None = None,
    meta: bool = True,
) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    if timeline is not None:
        (folder / "timeline.json").write_text(
            json.dumps(timeline, separators=(",", ":"), ensure_ascii=False), encoding="utf-8"
        )
    if meta:
        (folder / "metadata.json").write_text(json.dumps(metadata(), indent=2), encoding="utf-8")
    if audio is not None:
        rec = folder / SID / "recording"
        rec.mkdir(parents=True, exist_ok=True)
        sf.write(rec / "audio.ogg", audio, 48000, format="OGG", subtype="OPUS")
    return folder
