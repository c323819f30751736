"""The sandbox's side of a conversation: turns, spoken replies, barge-in and tool calls.

A shell over `audio` (the voice) and `shapes` (event contents): it paces `reply.audio` on
the event loop's clock and writes what happened, with wall-clock times, into the
session's records (`store.ReplyRecord`, `store.ToolCallRecord`) for timelines.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from doctor.sandbox import audio, rules, shapes
from doctor.sandbox.hearing import Ears
from doctor.sandbox.store import ReplyRecord, Session, ToolCallRecord, UserTurnRecord

if TYPE_CHECKING:
    from doctor.sandbox.connection import Connection

AGENT_REPLY = "Hello, this is the agent doctor sandbox. I heard you clearly; the line works."
G711_CHUNK_S = 0.0375  # field-facts §7: μ-law replies come in 37.5 ms / 300-byte chunks


class Reply:
    """One reply being spoken: its chunks, how far it got, and its record."""

    def __init__(self, record: ReplyRecord, lead_chunks: int, voice_chunks: int) -> None:
        self.record = record
        self.lead_chunks = lead_chunks
        self.total_chunks = lead_chunks + voice_chunks
        self.sent_chunks = 0
        self.task: asyncio.Task[None] | None = None
        self.finished = False
        self.closed = asyncio.Event()  # set once its reply.done went out

    @property
    def reply_id(self) -> str:
        return self.record.reply_id

    @property
    def item_id(self) -> str:
        return self.record.item_id

    def spoken_text(self) -> str:
        """The words said before a cut, in proportion to the voiced chunks sent."""
        words = self.record.text.split()
        voiced = self.total_chunks - self.lead_chunks
        said = max(0, self.sent_chunks - self.lead_chunks)
        return " ".join(words[: int(len(words) * said / voiced)] if voiced else [])


class Conversation:
    """Turns and replies on one connection's session."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cfg = conn.cfg
        self.reply: Reply | None = None
        self.turn_task: asyncio.Task[None] | None = None
        self.tool_waits: dict[str, asyncio.Future[str]] = {}
        # calls whose wait is over (answered or timed out): a tool.result is accepted any
        # time after its tool.call (protocol.md §3.5, field-facts §9), a late one quietly
        self.finished_calls: set[str] = set()
        self.utterances = 0
        self.barge_task: asyncio.Task[None] | None = None  # a barge-in being decided
        self.ears = Ears()

    @property
    def session(self) -> Session:
        assert self.conn.session is not None
        return self.conn.session

    @property
    def field(self) -> bool:
        return self.cfg.reply_audio == "field"

    def _ids(self) -> tuple[str, str]:
        if self.cfg.field_shapes:  # field-facts §7: `resp_…` and `msg_…`
            # session-formats.md §3.3: 32 hex digits after the prefix
            return "resp_" + secrets.token_hex(16), "msg_" + secrets.token_hex(16)
        return "reply_" + secrets.token_hex(8), "item_" + secrets.token_hex(8)

    # --- turns --------------------------------------------------------------------------
    async def on_speech_started(self) -> None:
        delay = self.cfg.barge_in_delay_s
        barge = self.reply is not None and rules.turn_setting(
            self.session.config, "interrupt_response", True
        )
        if barge and delay > 0:
            # field-facts §8: over agent speech, input.speech.started comes only once a
            # barge-in is decided, 1.1-2.2 s after the user starts talking
            self.barge_task = self.conn.spawn(self._barge_in_later(delay))
            return
        await self._speech_started(barge)

    async def _speech_started(self, barge: bool) -> None:
        await self.conn.send({"type": "input.speech.started"})
        self.session.user_turns.append(UserTurnRecord(self._user_item(), time.time()))
        if barge and self.reply is not None:
            await self.interrupt_reply()

    async def _barge_in_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.barge_task = None
        await self._speech_started(barge=True)

    async def _speech_started_late(self) -> None:
        """Speech ended before a barge-in was decided: its start goes out now."""
        task, self.barge_task = self.barge_task, None
        if task is not None and not task.done():
            task.cancel()
            await self._speech_started(barge=False)

    async def on_utterance(self, speech_s: float) -> None:
        await self._speech_started_late()
        self.utterances += 1
        text = f"(sandbox heard {speech_s:.1f} s of speech)"
        own = self._own_words(speech_s)
        if own:  # its own voice came back: transcribed, as a recogniser would
            text = own
        turns = self.session.user_turns
        if not turns or turns[-1].ended_at is not None:  # a stop without its start
            turns.append(UserTurnRecord(self._user_item(), None))
        turn = turns[-1]
        item_id = turn.item_id
        await self.conn.send({"type": "transcript.user.delta", "text": text, "item_id": item_id})
        await self.conn.send({"type": "input.speech.stopped"})
        turn.ended_at, turn.transcript = time.time(), text
        await self.conn.send({"type": "transcript.user", "text": text, "item_id": item_id})
        if self.turn_task is not None and not self.turn_task.done():
            return
        self.turn_task = self.conn.spawn(self._turn(turn))

    def _own_words(self, speech_s: float) -> str | None:
        """The words of the agent's latest reply, when the utterance is its voice."""
        if not self.ears.hears_itself(speech_s):
            return None
        for record in reversed(self.session.replies):
            words = record.spoken_text if record.spoken_text is not None else record.text
            if words:
                return words
        return None

    def _user_item(self) -> str:
        return (
            ("msg_" + secrets.token_hex(16))
            if self.cfg.field_shapes
            else ("item_" + secrets.token_hex(8))
        )

    async def _turn(self, user: UserTurnRecord | None = None) -> None:
        tool = self.cfg.tool_call
        if tool and tool in rules.tool_names(self.session.config):
            await self._tool_turn(tool, user)
        else:
            # A turn taken while a reply still plays (one the user could not interrupt)
            # is answered after it, as the tool turns are.
            while self.reply is not None:
                await self.reply.closed.wait()
            reply = self.start_reply(AGENT_REPLY, "user_speech")
            if reply is not None and user is not None:
                user.reply_id = reply.reply_id

    async def _tool_turn(self, name: str, user: UserTurnRecord | None = None) -> None:
        """field-facts §9: a reply carries the `tool.call` and ends with `reply.done`; the
        answer is a new reply once the result is in (sent before or after that done)."""
        declared: dict[str, Any] = next(
            (t for t in self.session.config.get("tools", []) if t.get("name") == name), {}
        )
        timeout = float(declared.get("timeout_seconds", 120))
        # One reply at a time: a reply still playing (a greeting the user could not
        # interrupt) ends with its reply.done before the carrier's reply.started.
        while self.reply is not None:
            await self.reply.closed.wait()
        # field-facts §9: the managed LLM's ids; OpenAI-style `call_` otherwise
        prefix = "chatcmpl-tool-" if self.cfg.field_shapes else "call_"
        # session-formats.md §3.4: `chatcmpl-tool-` + 16 hex
        call_id = prefix + secrets.token_hex(8 if self.cfg.field_shapes else 16)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.tool_waits[call_id] = waiter
        carrier = self._new_reply("", "user_speech", voice_s=0.0)
        if user is not None:
            user.reply_id = carrier.reply_id
        carrier.task = self.conn.spawn(
            self._carry(carrier, call_id, name, shapes.arguments_for(declared.get("parameters")))
        )
        await asyncio.wait({carrier.task})  # a barge-in cuts the carrier, not this turn
        if call_id not in carrier.record.call_ids:
            # Cut between its reply.started and its tool.call: the client never saw the
            # call, so no result can come; the turn ends (the user's new turn goes on).
            self.tool_waits.pop(call_id, None)
            return
        try:
            result = await asyncio.wait_for(waiter, timeout)
            text = f"The tool {name} answered: {result[:200]}"
        except asyncio.TimeoutError:
            text = f"Sorry, the tool {name} did not answer in time."
            record = self.session.tool_call(call_id)
            if record is not None:
                record.timed_out = True
        finally:
            self.tool_waits.pop(call_id, None)
            self.finished_calls.add(call_id)
        self.start_reply(text, "tool_result")

    async def _carry(self, reply: Reply, call_id: str, name: str, args: dict[str, Any]) -> None:
        await self._started(reply)
        # No await between recording the call and writing its frame (websockets writes a
        # text frame before its first await): once `call_ids` names it, the client gets it.
        self.session.tool_calls.append(
            ToolCallRecord(call_id, name, args, reply.reply_id, time.time())
        )
        reply.record.call_ids.append(call_id)
        await self.conn.send(
            {"type": "tool.call", "call_id": call_id, "name": name, "arguments": args}
        )
        # field-facts §7: the pre-amble of a tool reply is silence with no transcript
        await self._play(reply, np.zeros(round(24000 * self.cfg.lead_in_s), np.int16))
        await self._done(reply, "completed", transcript=False)

    async def on_tool_result(self, message: dict[str, Any]) -> None:
        call_id = message.get("call_id")
        known = isinstance(call_id, str) and (
            call_id in self.tool_waits or call_id in self.finished_calls
        )
        if not known:
            await self.conn.error(
                rules.ProtocolError("invalid_value", "unknown call_id", "call_id", True)
            )
            return
        result = message.get("result")
        if not isinstance(result, str):
            await self.conn.error(
                rules.ProtocolError(
                    "invalid_value", "result must be a string (JSON-encoded)", "result", True
                )
            )
            return
        record = self.session.tool_call(str(call_id))
        if record is not None and record.result_at is None:
            record.result, record.result_at = result, time.time()
            record.is_error = bool(message.get("is_error", False))
        waiter = self.tool_waits.get(str(call_id))
        if waiter is None:  # after the tool timeout, or a second answer: no error, no reply
            self.conn.record("server", "tool.result_late", call_id=call_id)
        elif not waiter.done():
            waiter.set_result(result)

    async def on_reply_create(self, message: dict[str, Any]) -> None:
        instructions = message.get("instructions")
        if self.reply is None:
            self.start_reply(
                instructions if isinstance(instructions, str) and instructions else AGENT_REPLY,
                "reply_create",
            )

    # --- replies ------------------------------------------------------------------------
    def chunk_s(self) -> float:
        if self.field and rules.output_encoding(self.session.config) != "audio/pcm":
            return G711_CHUNK_S
        return float(self.cfg.reply_chunk_ms or 50) / 1000

    def _new_reply(self, text: str, trigger: str, voice_s: float) -> Reply:
        chunk_s = self.chunk_s()
        reply_id, item_id = self._ids()
        record = ReplyRecord(reply_id, item_id, trigger, text, created_at=time.time())
        self.session.replies.append(record)
        lead = math.ceil(round(self.cfg.lead_in_s / chunk_s, 6))
        reply = Reply(record, lead, math.ceil(round(voice_s / chunk_s, 6)) if voice_s else 0)
        self.reply = reply
        return reply

    def start_reply(self, text: str, trigger: str) -> Reply | None:
        if self.reply is not None:
            return None
        reply = self._new_reply(text, trigger, self.cfg.reply_s)
        reply.task = self.conn.spawn(self._speak(reply))
        return reply

    async def _started(self, reply: Reply) -> None:
        await self.conn.send(
            {"type": "reply.started", "reply_id": reply.reply_id, "item_id": reply.item_id}
        )

    async def _speak(self, reply: Reply) -> None:
        chunk_s = self.chunk_s()
        voiced = audio.synth_voice(
            (reply.total_chunks - reply.lead_chunks) * chunk_s, seed=self.utterances
        )
        volume = float(self.session.config.get("output", {}).get("volume", 100)) / 100
        if volume != 1.0:
            voiced = (voiced.astype(float) * volume).astype(voiced.dtype)
        lead = np.zeros(round(reply.lead_chunks * chunk_s * 24000), np.int16)
        await self._started(reply)
        if self.field:
            await self._deltas(reply, len(lead) / 24, len(voiced) / 24)
        await self._play(reply, np.concatenate([lead, voiced]))
        await self._done(reply, "completed", transcript=True)

    async def _deltas(self, reply: Reply, start_ms: float, span_ms: float) -> None:
        """field-facts §7: every word of the reply in one burst, well before playback;
        greeting words carry no trailing space, LLM words do."""
        space = "" if reply.record.trigger == "greeting" else " "
        for word, start, end in shapes.word_timings(reply.record.text, start_ms, span_ms):
            await self.conn.send(
                {
                    "type": "transcript.agent.delta",
                    "reply_id": reply.reply_id,
                    "item_id": reply.item_id,
                    "delta": word + space,
                    "start_ms": start,
                    "end_ms": end,
                }
            )

    async def _play(self, reply: Reply, samples: audio.Int16) -> None:
        """`reply.audio` chunk by chunk at real time (unless switched off)."""
        encoding = rules.output_encoding(self.session.config)
        chunk_s = self.chunk_s()
        per_chunk = round(24000 * chunk_s)
        count = math.ceil(len(samples) / per_chunk) if len(samples) else 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(count):
            if self.cfg.reply_realtime:
                await asyncio.sleep(max(0.0, t0 + i * chunk_s - loop.time()))
            piece = samples[i * per_chunk : (i + 1) * per_chunk]
            if len(piece) < per_chunk:
                piece = np.concatenate([piece, np.zeros(per_chunk - len(piece), np.int16)])
            data = audio.encode(piece, encoding)
            await self.conn.send(
                {
                    "type": "reply.audio",
                    "reply_id": reply.reply_id,
                    "data": base64.b64encode(data).decode("ascii"),
                }
            )
            if i == 0:
                # paced from when the first chunk went out (and was logged), not from
                # before it was encoded: a late first chunk cannot bring chunk 1 early
                t0 = loop.time()
            reply.sent_chunks += 1
            self.ears.speak(piece)
            if self.session.recorder is not None:
                self.session.recorder.agent(piece, time.time())
            if reply.record.audible_start_at is None and reply.sent_chunks > reply.lead_chunks:
                reply.record.audible_start_at = time.time()
        if self.cfg.reply_realtime:
            await asyncio.sleep(max(0.0, t0 + count * chunk_s - loop.time()))
        if reply.record.audible_start_at is not None:
            reply.record.audible_end_at = time.time()

    async def _done(self, reply: Reply, status: str, transcript: bool) -> None:
        reply.finished = True
        if self.reply is reply:
            self.reply = None
        try:
            await self._send_done(reply, status, transcript)
        finally:
            reply.closed.set()

    async def _send_done(self, reply: Reply, status: str, transcript: bool) -> None:
        interrupted = status == "interrupted"
        if transcript:
            text = reply.spoken_text() if interrupted else reply.record.text
            reply.record.spoken_text = text
            await self.conn.send(
                {
                    "type": "transcript.agent",
                    "text": text,
                    "reply_id": reply.reply_id,
                    "item_id": reply.item_id,
                    "interrupted": interrupted,
                }
            )
        done: dict[str, Any] = {"type": "reply.done", "reply_id": reply.reply_id}
        if interrupted or self.cfg.reply_done_status == "completed":
            done["status"] = status
        reply.record.status, reply.record.done_at = status, time.time()
        await self.conn.send(done)

    def cancel_reply(self) -> Reply | None:
        reply, self.reply = self.reply, None
        if reply is None or reply.finished:
            return None
        if reply.task is not None:
            reply.task.cancel()
        return reply

    async def interrupt_reply(self) -> None:
        """Barge-in: the reply stops; transcript.agent says how far it got
        (field-facts §8: these events come together with input.speech.started)."""
        reply = self.cancel_reply()
        if reply is None:
            return
        if reply.record.audible_start_at is not None:
            reply.record.audible_end_at = time.time()
        await self._done(reply, "interrupted", transcript=not reply.record.call_ids)
