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
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from doctor.sandbox import audio, rules, shapes
from doctor.sandbox.conversation import Conversation
from doctor.sandbox.eventlog import mask_query, utc_stamp
from doctor.sandbox.store import ClientMessage, Session, TokenGrant, new_session_id

if TYPE_CHECKING:
    from doctor.sandbox.server import Sandbox


@dataclass
class Auth:
    """Who opened a connection, or why they may not."""

    kind: str  # "api_key" | "token" | "none"
    owner_key: str | None = None
    grant: TokenGrant | None = None
    failure: rules.ProtocolError | None = None
    failure_mode: str = "close"  # "close" (frame + 1008) or "frame" (same, lowercase code)


class Connection:
    """One WebSocket: the session lifecycle, validation and faults (the conversation
    itself is `Conversation`'s)."""

    def __init__(self, sandbox: Sandbox, ws: ServerConnection, conn_id: int, auth: Auth) -> None:
        self.sb = sandbox
        self.cfg = sandbox.config
        self.ws = ws
        self.id = conn_id
        self.auth = auth
        self.session: Session | None = None
        self.pending_id: str | None = None  # the id a session being set up will get
        self.early: list[ClientMessage] = []  # what came before the session existed
        self.starting = False
        self.ended = False
        self.detector: audio.TurnDetector | None = None
        self.talk = Conversation(self)
        self.ready_task: asyncio.Task[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- plumbing -----------------------------------------------------------------------
    @property
    def sid(self) -> str | None:
        return self.session.id if self.session else None

    def record(self, direction: str, type_: str, **detail: Any) -> None:
        self.sb.log.record(
            direction, type_, conn=self.id, session_id=self.sid, auth=self.auth.kind, **detail
        )

    async def send(self, event: dict[str, Any]) -> None:
        if self.cfg.field_shapes and "timestamp" not in event:
            # field-facts §3: every server event carries a float epoch `timestamp`
            event = {**event, "timestamp": time.time()}
        detail = {
            k: v for k, v in event.items() if k not in ("type", "data", "timestamp", "session_id")
        }
        if "data" in event:
            detail["data_bytes"] = len(base64.b64decode(event["data"]))
        self.record("out", event["type"], **detail)
        await self.ws.send(json.dumps(event))

    async def error(self, err: rules.ProtocolError) -> None:
        if self.cfg.field_errors:
            await self.send(err.field_payload(time.time(), self.sid or self.pending_id))
        else:
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
            self._keep("(binary)", {"size_bytes": len(message)})
            return
        try:
            data = json.loads(message)
        except ValueError:
            self._keep("(invalid json)", {"size_bytes": len(message)})
            return
        if not isinstance(data, dict):
            self._keep("(not an object)", {})
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
        if data.get("type") == "conversation.message":
            detail["role"] = data.get("role")
        self._keep(str(data.get("type")), detail)

    def _keep(self, kind: str, detail: dict[str, Any]) -> None:
        """The log line, and the session's record of what the client sent."""
        self.record("in", kind, **detail)
        entry = ClientMessage(time.time(), kind, detail)
        if self.session is not None:
            self.session.client_messages.append(entry)
        else:
            self.early.append(entry)

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
        message = rules.parse_client_message(raw, self.cfg.mode("errors"))
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
            "tool.result": self.talk.on_tool_result,
            "reply.create": self.talk.on_reply_create,
            "conversation.message": self.on_conversation_message,
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
        self.pending_id = self.pending_id or new_session_id()
        outcome = rules.apply_update(
            message,
            {},
            ready=False,
            voices=self.cfg.voice_names,
            strict_rate=self.cfg.strict_sample_rate,
            style=self.cfg.mode("errors"),
            agents=self.cfg.agent_ids,
        )
        if not outcome.applied:
            for err in outcome.errors:
                if self.cfg.field_errors and err.config:
                    # field-facts §4: a config error in the first update closes 1008
                    await self.fatal(err, 1008)
                    return
                await self.error(err)
            return
        if self.cfg.fault("agent-init-failed"):
            await self.fatal(
                rules.ProtocolError("agent_init_failed", "The agent failed to start"), 1011
            )
            return
        if self.cfg.fault("at-capacity-after") and self.sb.sessions_admitted >= int(
            self.cfg.fault_s("at-capacity-after")
        ):
            await self.fatal(
                rules.ProtocolError("server_error", "Server at capacity, retry later"), 1008
            )
            return
        self.sb.sessions_admitted += 1
        assert self.auth.owner_key is not None
        cap_s = self.cfg.max_session_s
        if self.auth.grant is not None and self.cfg.token_cap_enforced:
            # field-facts §5: the field does not enforce the token's cap; documented does
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
            self.auth.owner_key,
            self.sb.now(),
            cap_s * self.cfg.duration_scale,
            self.id,
            self.pending_id,
        )
        session.config = config
        session.started_at = time.time()
        session.first_update = config
        session.first_update_at = session.started_at + 0.017
        self.sb.start_recording(session)
        session.client_messages.extend(self.early)
        self.early.clear()
        self.session = session
        self.record("server", "session.created", cap_s=cap_s)
        if self.cfg.field_shapes:
            # field-facts §3: session.updated, then ~17 ms later session.ready with the
            # resolved config, expires_at (now + 1 h) and an (unusable) resume_token
            resolved = shapes.resolved_config(config)
            await self.send({"type": "session.updated", "config": resolved})
            await asyncio.sleep(0.017)
            session.ready = True
            self.starting = False
            now = time.time()
            await self.send(
                {
                    "type": "session.ready",
                    "session_id": session.id,
                    "config": resolved,
                    "expires_at": now + 3600,
                    "resume_token": secrets.token_urlsafe(24),
                    "timestamp": now,
                }
            )
        else:
            session.ready = True
            self.starting = False
            await self.send({"type": "session.ready", "session_id": session.id})
            if self.cfg.updated_after_first_update:
                await self.send({"type": "session.updated", "config": config})
        self._after_ready(first=True)
        greeting = config.get("greeting")
        if isinstance(greeting, str) and greeting:
            self.talk.start_reply(greeting, "greeting")

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
        self.talk.cancel_reply()
        await self.error(rules.ProtocolError("session_expired", "Maximum session duration reached"))
        if self.cfg.ended_on_expiry:
            await self.send(self.ended_event())
        self.end_session("session_expired")
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
        if self.cfg.fault("resume-silent"):  # a resume that hangs: the app's `fail`
            self.record("server", "session.resume_unanswered", resume_id=sid)
            return
        if self.cfg.fault("resume-rejected") or self.cfg.resume == "field":
            # field-facts §6: every live resume was refused this way
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
            voices=self.cfg.voice_names,
            strict_rate=self.cfg.strict_sample_rate,
            style=self.cfg.mode("errors"),
            agents=self.cfg.agent_ids,
        )
        for err in outcome.errors:
            await self.error(err)
        if not outcome.applied:
            return
        self.session.config = outcome.config
        if outcome.changed_fields:
            self.session.config_changes.append((time.time(), outcome.changed_fields))
        if self.detector is not None:
            rate = rules.ENCODING_RATES.get(rules.input_encoding(outcome.config), 24000)
            self.detector.set_rate(rate)
            self.detector.set_min_silence(
                float(rules.turn_setting(outcome.config, "min_silence", 1000))
            )
        if outcome.changed_fields or not outcome.errors:
            config = (
                shapes.resolved_config(outcome.config) if self.cfg.field_shapes else outcome.config
            )
            await self.send({"type": "session.updated", "config": config})

    async def on_late_resume(self, message: dict[str, Any]) -> None:
        await self.error(
            rules.ProtocolError(
                "invalid_format",
                "session.resume must be the first message of a new connection",
                "type",
            )
        )

    async def on_conversation_message(self, message: dict[str, Any]) -> None:
        """field-facts §11: accepted when well formed, and its content never used."""
        err = rules.conversation_message_error(message)
        if err is not None:
            await self.error(err)
        else:
            self.record("server", "conversation.message_ignored", role=message.get("role"))

    async def on_audio(self, message: dict[str, Any]) -> None:
        assert self.session is not None and self.detector is not None
        encoding = rules.input_encoding(self.session.config)
        data = rules.decode_audio(message, encoding, self.cfg.mode("errors"))
        if isinstance(data, rules.ProtocolError):
            await self.error(data)
            return
        samples, rate = audio.decode(data, encoding)
        if self.session.recorder is not None:
            self.session.recorder.user(samples, rate, time.time())
        if rate == 24000:
            self.talk.ears.listen(samples)
        self.session.audio_received = True
        self.session.audio_s += samples.size / rate
        for event in self.detector.feed(samples):
            if event.kind == "speech_started":
                await self.talk.on_speech_started()
            else:
                await self.talk.on_utterance(event.speech_s)

    # --- ending -------------------------------------------------------------------------
    def ended_event(self) -> dict[str, Any]:
        assert self.session is not None
        duration = round(self.sb.now() - self.session.created_at, 3)
        if self.cfg.field_shapes:
            # field-facts §12: audio_duration_seconds is always null live
            return {
                "session_duration_seconds": duration,
                "audio_duration_seconds": None,
                "type": "session.ended",
                "timestamp": time.time(),
            }
        return {
            "type": "session.ended",
            "session_duration_seconds": duration,
            "audio_duration_seconds": round(self.session.audio_s, 3)
            if self.session.audio_received
            else None,
            "timestamp": utc_stamp(),
        }

    def end_session(self, reason: str) -> None:
        if self.session is not None:
            self.session.ended_at = time.time()
            self.session.end_reason = reason
            self.sb.store.end(self.session.id)
            self.sb.session_finished(self.session)
        self.ended = True

    async def on_end(self, message: dict[str, Any]) -> None:
        self.talk.cancel_reply()
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if self.cfg.fault("no-session-ended"):
            self.end_session("session.end")
            await self.close(1000, "")
            return
        if self.cfg.fault("slow-first-ended") and self.sb.take_first_end():
            # field-facts §12: once in many runs, session.ended came more than 4 s late.
            # A client that gives up and cuts the socket ends the wait here.
            delay = self.cfg.fault_s("slow-first-ended")
            self.record("server", "session.ended_delayed", delay_s=delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.ws.wait_closed(), delay)
            if self.ws.close_code is not None:
                self.end_session("session.end")
                return
        event = self.ended_event()
        self.end_session("session.end")
        await self.send(event)
        await self.close(1000, "session ended")
