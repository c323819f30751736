"""One WebSocket of the sandbox: the session lifecycle, validation, conversation and faults.

The shell around the pure rules (`rules`, `audio`, `store`); `server.Sandbox` accepts the
connection and hands it here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from doctor.sandbox import audio, rules
from doctor.sandbox.eventlog import mask_query, utc_stamp
from doctor.sandbox.store import Session, TokenGrant

if TYPE_CHECKING:
    from doctor.sandbox.server import Sandbox

AGENT_REPLY = "Hello, this is the agent doctor sandbox. I heard you clearly; the line works."


@dataclass
class Auth:
    """Who opened a connection, or why they may not."""

    kind: str  # "api_key" | "token" | "none"
    owner_key: str | None = None
    grant: TokenGrant | None = None
    failure: rules.ProtocolError | None = None
    failure_mode: str = "close"  # "close" (frame + 1008) or "frame" (same, lowercase code)


class _Reply:
    def __init__(self, reply_id: str, item_id: str, text: str, total_chunks: int) -> None:
        self.reply_id = reply_id
        self.item_id = item_id
        self.text = text
        self.total_chunks = total_chunks
        self.sent_chunks = 0
        self.task: asyncio.Task[None] | None = None
        self.finished = False


class Connection:
    """One WebSocket: the session lifecycle, validation, conversation and faults."""

    def __init__(self, sandbox: Sandbox, ws: ServerConnection, conn_id: int, auth: Auth) -> None:
        self.sb = sandbox
        self.cfg = sandbox.config
        self.ws = ws
        self.id = conn_id
        self.auth = auth
        self.session: Session | None = None
        self.starting = False
        self.ended = False
        self.detector: audio.TurnDetector | None = None
        self.reply: _Reply | None = None
        self.turn_task: asyncio.Task[None] | None = None
        self.ready_task: asyncio.Task[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.tool_waits: dict[str, asyncio.Future[str]] = {}
        # calls whose wait is over (answered or timed out): protocol.md §3.5 accepts a
        # tool.result any time after its tool.call, so a late one is taken quietly
        self.finished_calls: set[str] = set()
        self.utterances = 0

    # --- plumbing -----------------------------------------------------------------------
    @property
    def sid(self) -> str | None:
        return self.session.id if self.session else None

    def record(self, direction: str, type_: str, **detail: Any) -> None:
        self.sb.log.record(
            direction, type_, conn=self.id, session_id=self.sid, auth=self.auth.kind, **detail
        )

    async def send(self, event: dict[str, Any]) -> None:
        detail = {
            k: v for k, v in event.items() if k not in ("type", "data", "timestamp", "session_id")
        }
        if "data" in event:
            detail["data_bytes"] = len(base64.b64decode(event["data"]))
        self.record("out", event["type"], **detail)
        await self.ws.send(json.dumps(event))

    async def error(self, err: rules.ProtocolError) -> None:
        await self.send(err.payload(utc_stamp()))

    async def close(self, code: int, reason: str) -> None:
        self.record("out", "ws.close", code=code, reason=reason)
        await self.ws.close(code, reason)

    async def fatal(self, err: rules.ProtocolError, code: int) -> None:
        await self.error(err)
        await self.close(code, err.code)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ConnectionClosed):
                self.record("server", "server.task_failed", error=f"{type(exc).__name__}: {exc}")

    # --- main loop ----------------------------------------------------------------------
    async def run(self) -> None:
        self.record(
            "server", "ws.open", path=mask_query(self.ws.request.path if self.ws.request else "")
        )
        try:
            if await self._refuse():
                return
            async for message in self.ws:
                self.record_in(message)
                if self.cfg.fault("close-without-frame"):
                    # Read first, so the 101 has surely reached the client; then vanish.
                    self.abort("abrupt TCP close after the upgrade (fault close-without-frame)")
                    return
                await self.on_message(message)
        except ConnectionClosed:
            pass
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.session is not None and not self.ended and self.session.attached == self.id:
                self.sb.detach(self.session.id)
                self.record("server", "session.detached", grace_s=self.cfg.grace_s)
            if self.ws.close_code is None:
                with contextlib.suppress(Exception):
                    await self.ws.close(1000)
            self.record(
                "server",
                "ws.closed",
                code=self.ws.close_code,
                reason=self.ws.close_reason or "",
                close_frame_received=self.ws.protocol.close_rcvd is not None,
            )

    def record_in(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.record("in", "(binary)", size_bytes=len(message))
            return
        try:
            data = json.loads(message)
        except ValueError:
            self.record("in", "(invalid json)", size_bytes=len(message))
            return
        if not isinstance(data, dict):
            self.record("in", "(not an object)")
            return
        detail: dict[str, Any] = {}
        if isinstance(data.get("audio"), str):
            detail["audio_chars"] = len(data["audio"])
        if data.get("type") == "session.resume":
            detail["resume_id"] = data.get("session_id")
        if data.get("type") == "session.update" and isinstance(data.get("session"), dict):
            detail["fields"] = sorted(data["session"])
        if data.get("type") == "tool.result":
            detail["call_id"] = data.get("call_id")
        self.record("in", str(data.get("type")), **detail)

    async def _refuse(self) -> bool:
        """Failures decided at connect time (auth, injected faults); True when refused."""
        if self.auth.failure is not None:
            await self.fatal(self.auth.failure, 1008)
            return True
        for fault, err, code in (
            (
                "internal-error",
                rules.ProtocolError(
                    "INTERNAL_ERROR", "Internal error while setting up the connection"
                ),
                1011,
            ),
            (
                "at-capacity",
                rules.ProtocolError("server_error", "Server at capacity, retry later"),
                1008,
            ),
            (
                "unauthorized-after-upgrade",
                rules.ProtocolError("UNAUTHORIZED", "Unauthorized"),
                1008,
            ),
            ("forbidden-after-upgrade", rules.ProtocolError("FORBIDDEN", "Forbidden"), 1008),
            (
                "token-expired-frame",
                rules.ProtocolError(
                    "unauthorized", "Token expired: the redemption window has passed"
                ),
                1008,
            ),
        ):
            if self.cfg.fault(fault):
                await self.fatal(err, code)
                return True
        return False

    async def on_message(self, raw: str | bytes) -> None:
        message = rules.parse_client_message(raw)
        if isinstance(message, rules.ProtocolError):
            await self.error(message)
            return
        kind = message["type"]
        if self.session is None or not self.session.ready:
            await self.before_ready(kind, message)
            return
        handler = {
            "session.update": self.on_update,
            "session.resume": self.on_late_resume,
            "input.audio": self.on_audio,
            "tool.result": self.on_tool_result,
            "reply.create": self.on_reply_create,
            "session.end": self.on_end,
        }[kind]
        await handler(message)

    # --- before ready -------------------------------------------------------------------
    async def before_ready(self, kind: str, message: dict[str, Any]) -> None:
        if self.starting:
            if kind == "session.end" and self.ready_task is not None:
                # Messages are handled in order: the update was accepted, so the session
                # comes up first and then ends cleanly (session.ended, 1000).
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.ready_task)
                if self.session is not None and self.session.ready:
                    await self.on_end(message)
                return
            await self.error(
                rules.ProtocolError(
                    "invalid_format", f"{kind} before session.ready: wait for session.ready", "type"
                )
            )
            return
        if kind == "session.update":
            await self.on_first_update(message)
        elif kind == "session.resume":
            await self.on_resume(message)
        else:
            await self.error(
                rules.ProtocolError(
                    "invalid_format",
                    f"{kind} before session.ready: send session.update (or session.resume) first",
                    "type",
                )
            )

    async def on_first_update(self, message: dict[str, Any]) -> None:
        outcome = rules.apply_update(
            message,
            {},
            ready=False,
            voices=self.cfg.voices,
            strict_rate=self.cfg.strict_sample_rate,
        )
        if not outcome.applied:
            for err in outcome.errors:
                await self.error(err)
            return
        if self.cfg.fault("agent-init-failed"):
            await self.fatal(
                rules.ProtocolError("agent_init_failed", "The agent failed to start"), 1011
            )
            return
        assert self.auth.owner_key is not None
        cap_s = self.cfg.max_session_s
        if self.auth.grant is not None:
            cap_s = min(cap_s, float(self.auth.grant.max_session_s))
        self.starting = True
        self.ready_task = self.spawn(self._become_ready(outcome.config, cap_s))

    async def _become_ready(self, config: dict[str, Any], cap_s: float) -> None:
        delay = 0.0
        if self.cfg.fault("slow-ready"):
            delay = self.cfg.fault_s("slow-ready")
        if self.cfg.fault("agent-timeout"):
            delay = float("inf")
        limit = (
            self.cfg.fault_s("agent-timeout")
            if self.cfg.fault("agent-timeout")
            else self.cfg.agent_ready_limit_s
        )
        if delay >= limit:
            await asyncio.sleep(limit)
            await self.fatal(
                rules.ProtocolError("agent_timeout", f"The agent was not ready within {limit:g} s"),
                1011,
            )
            return
        if delay:
            await asyncio.sleep(delay)
        assert self.auth.owner_key is not None
        session = self.sb.store.create(
            self.auth.owner_key, self.sb.now(), cap_s * self.cfg.duration_scale, self.id
        )
        session.config = config
        session.ready = True
        self.session = session
        self.starting = False
        self.record("server", "session.created", cap_s=cap_s)
        await self.send({"type": "session.ready", "session_id": session.id})
        if self.cfg.updated_after_first_update:
            await self.send({"type": "session.updated", "config": config})
        self._after_ready(first=True)
        greeting = config.get("greeting")
        if isinstance(greeting, str) and greeting:
            self.start_reply(greeting)

    def _after_ready(self, first: bool) -> None:
        assert self.session is not None
        config = self.session.config
        encoding = rules.input_encoding(config)
        rate = rules.ENCODING_RATES.get(encoding, 24000)
        self.detector = audio.TurnDetector(
            rate,
            self.cfg.speech_threshold_dbfs,
            min_silence_ms=float(rules.turn_setting(config, "min_silence", 1000)),
        )
        self.spawn(self._cap_timer())
        if first and self.cfg.fault("drop-after-ready"):
            self.spawn(self._drop_later(self.cfg.fault_s("drop-after-ready")))

    async def _cap_timer(self) -> None:
        assert self.session is not None
        await asyncio.sleep(max(0.0, self.session.cap_deadline - self.sb.now()))
        self.cancel_reply(send=False)
        await self.error(rules.ProtocolError("session_expired", "Maximum session duration reached"))
        if self.cfg.ended_on_expiry:
            await self.send(self.ended_event())
        self.end_session()
        await self.close(1008, "session_expired")

    def abort(self, detail: str) -> None:
        """Drop the TCP connection: no close frame, no event (clients see 1006)."""
        self.record("server", "ws.drop", detail=detail)
        self.ws.transport.abort()

    async def _drop_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.abort("abrupt TCP close (fault drop-after-ready)")

    async def on_resume(self, message: dict[str, Any]) -> None:
        sid = message.get("session_id")
        if self.cfg.fault("resume-rejected"):
            outcome: Session | str = "session_not_found"
        elif not isinstance(sid, str) or not sid:
            outcome = "session_not_found"
        else:
            assert self.auth.owner_key is not None
            previous = self.sb.store.sessions.get(sid)
            holder = previous.attached if previous is not None else None
            outcome = self.sb.store.resume(sid, self.auth.owner_key, self.sb.now(), self.id)
            if isinstance(outcome, Session) and holder is not None and holder != self.id:
                old = self.sb.connection(holder)
                if old is not None:
                    old.session = None
                    self.spawn(old.close(1008, "session resumed on another connection"))
        if isinstance(outcome, str):
            text = {
                "session_not_found": "Session not found or grace window has expired",
                "session_forbidden": "Session belongs to another account",
            }[outcome]
            await self.fatal(rules.ProtocolError(outcome, text), 1008)
            return
        old_id = outcome.id
        if self.cfg.fault("resume-new-id"):
            # protocol.md §3.6 leaves the id after a resume open: here the context goes
            # on under a new id and the old one is forgotten.
            outcome = self.sb.store.reissue(old_id)
        self.session = outcome
        if outcome.id != old_id:
            self.record("server", "session.reissued", old_session_id=old_id)
        await self.send({"type": "session.ready", "session_id": outcome.id})
        self._after_ready(first=False)

    # --- after ready --------------------------------------------------------------------
    async def on_update(self, message: dict[str, Any]) -> None:
        assert self.session is not None
        outcome = rules.apply_update(
            message,
            self.session.config,
            ready=True,
            voices=self.cfg.voices,
            strict_rate=self.cfg.strict_sample_rate,
        )
        for err in outcome.errors:
            await self.error(err)
        if not outcome.applied:
            return
        self.session.config = outcome.config
        if self.detector is not None:
            rate = rules.ENCODING_RATES.get(rules.input_encoding(outcome.config), 24000)
            self.detector.set_rate(rate)
            self.detector.set_min_silence(
                float(rules.turn_setting(outcome.config, "min_silence", 1000))
            )
        if outcome.changed_fields or not outcome.errors:
            await self.send({"type": "session.updated", "config": outcome.config})

    async def on_late_resume(self, message: dict[str, Any]) -> None:
        await self.error(
            rules.ProtocolError(
                "invalid_format",
                "session.resume must be the first message of a new connection",
                "type",
            )
        )

    async def on_audio(self, message: dict[str, Any]) -> None:
        assert self.session is not None and self.detector is not None
        encoding = rules.input_encoding(self.session.config)
        data = rules.decode_audio(message, encoding)
        if isinstance(data, rules.ProtocolError):
            await self.error(data)
            return
        samples, rate = audio.decode(data, encoding)
        self.session.audio_received = True
        self.session.audio_s += samples.size / rate
        for event in self.detector.feed(samples):
            if event.kind == "speech_started":
                await self.send({"type": "input.speech.started"})
                if self.reply is not None and rules.turn_setting(
                    self.session.config, "interrupt_response", True
                ):
                    await self.interrupt_reply()
            else:
                await self.on_utterance(event.speech_s)

    async def on_utterance(self, speech_s: float) -> None:
        self.utterances += 1
        text = f"(sandbox heard {speech_s:.1f} s of speech)"
        item_id = "item_" + secrets.token_hex(8)
        await self.send({"type": "transcript.user.delta", "text": text, "item_id": item_id})
        await self.send({"type": "input.speech.stopped"})
        await self.send({"type": "transcript.user", "text": text, "item_id": item_id})
        if self.turn_task is not None and not self.turn_task.done():
            return
        self.turn_task = self.spawn(self._turn())

    async def _turn(self) -> None:
        assert self.session is not None
        tool = self.cfg.tool_call
        if tool and tool in rules.tool_names(self.session.config):
            call_id = "call_" + secrets.token_hex(8)
            waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self.tool_waits[call_id] = waiter
            await self.send(
                {
                    "type": "tool.call",
                    "call_id": call_id,
                    "name": tool,
                    "arguments": {"utterance": self.utterances},
                }
            )
            timeout = next(
                (
                    float(t.get("timeout_seconds", 120))
                    for t in self.session.config.get("tools", [])
                    if t.get("name") == tool
                ),
                120.0,
            )
            try:
                result = await asyncio.wait_for(waiter, timeout)
                text = f"The tool {tool} answered: {result[:200]}"
            except asyncio.TimeoutError:
                text = f"Sorry, the tool {tool} did not answer in time."
            finally:
                self.tool_waits.pop(call_id, None)
                self.finished_calls.add(call_id)
            self.start_reply(text)
        else:
            self.start_reply(AGENT_REPLY)

    async def on_tool_result(self, message: dict[str, Any]) -> None:
        call_id = message.get("call_id")
        known = isinstance(call_id, str) and (
            call_id in self.tool_waits or call_id in self.finished_calls
        )
        if not known:
            await self.error(rules.ProtocolError("invalid_value", "unknown call_id", "call_id"))
            return
        result = message.get("result")
        if not isinstance(result, str):
            await self.error(
                rules.ProtocolError(
                    "invalid_value", "result must be a string (JSON-encoded)", "result"
                )
            )
            return
        waiter = self.tool_waits.get(str(call_id))
        if waiter is None:  # after the tool timeout, or a second answer: no error, no reply
            self.record("server", "tool.result_late", call_id=call_id)
        elif not waiter.done():
            waiter.set_result(result)

    async def on_reply_create(self, message: dict[str, Any]) -> None:
        instructions = message.get("instructions")
        if self.reply is None:
            self.start_reply(
                instructions if isinstance(instructions, str) and instructions else AGENT_REPLY
            )

    # --- replies ------------------------------------------------------------------------
    def start_reply(self, text: str) -> None:
        if self.reply is not None:
            return
        chunk_s = self.cfg.reply_chunk_ms / 1000
        total = max(1, round(self.cfg.reply_s / chunk_s))
        reply = _Reply("reply_" + secrets.token_hex(8), "item_" + secrets.token_hex(8), text, total)
        self.reply = reply
        reply.task = self.spawn(self._speak(reply))

    async def _speak(self, reply: _Reply) -> None:
        assert self.session is not None
        config = self.session.config
        encoding = rules.output_encoding(config)
        volume = float(config.get("output", {}).get("volume", 100)) / 100
        chunk_s = self.cfg.reply_chunk_ms / 1000
        samples = audio.synth_voice(reply.total_chunks * chunk_s, seed=self.utterances)
        if volume != 1.0:
            samples = (samples.astype(float) * volume).astype(samples.dtype)
        per_chunk = round(24000 * chunk_s)
        await self.send(
            {"type": "reply.started", "reply_id": reply.reply_id, "item_id": reply.item_id}
        )
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(reply.total_chunks):
            if self.cfg.reply_realtime:
                await asyncio.sleep(max(0.0, t0 + i * chunk_s - loop.time()))
            chunk = audio.encode(samples[i * per_chunk : (i + 1) * per_chunk], encoding)
            await self.send(
                {
                    "type": "reply.audio",
                    "reply_id": reply.reply_id,
                    "data": base64.b64encode(chunk).decode("ascii"),
                }
            )
            reply.sent_chunks = i + 1
        if self.cfg.reply_realtime:
            await asyncio.sleep(max(0.0, t0 + reply.total_chunks * chunk_s - loop.time()))
        reply.finished = True
        self.reply = None
        await self.send(
            {
                "type": "transcript.agent",
                "text": reply.text,
                "reply_id": reply.reply_id,
                "item_id": reply.item_id,
                "interrupted": False,
            }
        )
        done: dict[str, Any] = {"type": "reply.done", "reply_id": reply.reply_id}
        if self.cfg.reply_done_status == "completed":
            done["status"] = "completed"
        await self.send(done)

    def cancel_reply(self, send: bool) -> _Reply | None:
        reply, self.reply = self.reply, None
        if reply is None or reply.finished:
            return None
        if reply.task is not None:
            reply.task.cancel()
        return reply

    async def interrupt_reply(self) -> None:
        reply = self.cancel_reply(send=True)
        if reply is None:
            return
        words = reply.text.split()
        spoken = words[: int(len(words) * reply.sent_chunks / reply.total_chunks)]
        await self.send(
            {
                "type": "transcript.agent",
                "text": " ".join(spoken),
                "reply_id": reply.reply_id,
                "item_id": reply.item_id,
                "interrupted": True,
            }
        )
        await self.send({"type": "reply.done", "reply_id": reply.reply_id, "status": "interrupted"})

    # --- ending -------------------------------------------------------------------------
    def ended_event(self) -> dict[str, Any]:
        assert self.session is not None
        return {
            "type": "session.ended",
            "session_duration_seconds": round(self.sb.now() - self.session.created_at, 3),
            "audio_duration_seconds": round(self.session.audio_s, 3)
            if self.session.audio_received
            else None,
            "timestamp": utc_stamp(),
        }

    def end_session(self) -> None:
        if self.session is not None:
            self.sb.store.end(self.session.id)
        self.ended = True

    async def on_end(self, message: dict[str, Any]) -> None:
        self.cancel_reply(send=False)
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if self.cfg.fault("no-session-ended"):
            self.end_session()
            await self.close(1000, "")
            return
        event = self.ended_event()
        self.end_session()
        await self.send(event)
        await self.close(1000, "session ended")
