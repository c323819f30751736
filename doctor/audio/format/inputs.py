"""Input kinds and the layers around the samples: base64 text, JSON messages, JSON lines,
containers. Each layer turns a stream of chunks into the stream of audio bytes beneath it
and records what is wrong with the layer itself (pure: chunks in, chunks and findings out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from doctor.audio.format.base64text import Base64Decoder, Base64Issues, base64_share
from doctor.audio.format.containers import Container, sniff_container
from doctor.audio.format.findings import ERROR, WARNING, Validation
from doctor.audio.format.messages import Checked, Problem, base64_problems, check_message
from doctor.audio.format.wav import WavError, WavHeader, parse_wav_header

KINDS = ("raw", "container", "base64", "json", "jsonl")
SNIFF_BYTES = 1 << 16
HEADER_BYTES = 1 << 20  # WAV chunks before `data` (LIST, bext...) fit in this
JSON_MAX_BYTES = 256 << 20  # one JSON message is parsed whole
MAX_LISTED_LINES = 20
API_BYTES_PER_S = 48000  # PCM16 mono 24 kHz
CHUNK_MS_LOW, CHUNK_MS_HIGH = 20.0, 200.0


@dataclass
class Declared:
    """A format the bytes declare themselves (a WAV header), as opposed to one we infer."""

    encoding: str
    channels: int
    sample_rate_hz: int
    source: str = "WAV header"


@dataclass
class Layered:
    """What the layers found; `declared` is set when a header told us the sample format."""

    declared: Declared | None = None
    payload_bytes: int = 0
    undecodable: bool = False  # a container/codec we do not decode: no PCM analysis
    extra: dict[str, Any] = field(default_factory=dict)


def _printable_share(b: bytes) -> float:
    if not b:
        return 0.0
    text = bytes(range(0x20, 0x7F)) + b"\t\r\n"
    return 1.0 - len(b.translate(None, text)) / len(b)


def sniff_kind(head: bytes) -> str:
    """raw, container, base64, json, jsonl, text (not base64) or empty."""
    if not head:
        return "empty"
    if sniff_container(head) is not None:
        return "container"
    text = head[3:] if head[:3] == b"\xef\xbb\xbf" else head
    stripped = text.lstrip()
    if _printable_share(text[:4096]) < 0.98:
        return "raw"
    if stripped[:1] in (b"{", b"["):
        lines = [ln.strip() for ln in stripped.splitlines() if ln.strip()]
        if len(lines) >= 2 and lines[0][:1] == b"{" and lines[1][:1] == b"{":
            return "jsonl"
        return "json"
    if stripped[:5].lower() == b"data:":
        return "base64"
    if not stripped:
        return "text"
    spaces = stripped.count(b" ") / len(stripped)
    if base64_share(stripped) >= 0.97 and spaces < 0.02:
        return "base64"
    return "text"


class _Peek:
    """An iterator of chunks with a look at its first bytes."""

    def __init__(self, chunks: Iterable[bytes], want: int) -> None:
        self._it = iter(chunks)
        buf = bytearray()
        self._done = False
        while len(buf) < want:
            try:
                c = next(self._it)
            except StopIteration:
                self._done = True
                break
            buf += c
        self.head = bytes(buf)

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            yield self.head
        if not self._done:
            yield from self._it


# -- text layers ----------------------------------------------------------------------------


def _add_b64_findings(v: Validation, iss: Base64Issues, where: str = "") -> None:
    for p in base64_problems(iss):
        sev = ERROR if p.service_error else WARNING
        v.add(p.code, sev, where + p.message, detail=p.message, **_b64_evidence(iss))


def _b64_evidence(iss: Base64Issues) -> dict[str, Any]:
    return {
        "data_url": iss.data_url,
        "urlsafe_chars": iss.urlsafe_chars,
        "line_breaks": iss.line_breaks,
        "spaces": iss.spaces,
        "invalid_chars": iss.invalid_chars,
        "first_invalid_offset": iss.first_invalid_offset,
        "inner_padding": iss.inner_padding,
        "missing_padding": iss.missing_padding,
    }


def base64_layer(chunks: Iterable[bytes], v: Validation) -> Iterator[bytes]:
    dec = Base64Decoder()
    for c in chunks:
        out = dec.feed(c)
        if out:
            yield out
    out = dec.finish()
    if out:
        yield out
    _add_b64_findings(v, dec.issues)


def json_layer(chunks: Iterable[bytes], v: Validation) -> Iterator[bytes]:
    buf = bytearray()
    for c in chunks:
        buf += c
        if len(buf) > JSON_MAX_BYTES:
            v.add(
                "json_invalid",
                ERROR,
                f"one JSON message of more than {JSON_MAX_BYTES >> 20} "
                "MiB: far too large for a WebSocket message (send ~50 ms per message)",
                size_bytes_min=len(buf),
            )
            return
    text = bytes(buf)
    if text[:3] == b"\xef\xbb\xbf":
        text = text[3:]
    checked = check_message(text)
    for p in checked.problems:
        v.add(
            p.code,
            ERROR if p.service_error else WARNING,
            _service_says(p),
            detail=p.message,
            service_error=p.service_error,
        )
    data = _decoded(checked, text)
    if data:
        yield data


def _service_says(p: Problem) -> str:
    return (
        f"{p.message} (the service answers `{p.service_error}`)" if p.service_error else p.message
    )


def _decoded(checked: Checked, text: bytes) -> bytes | None:
    """The audio of a message, even if the service would refuse it, for further analysis."""
    if checked.audio is not None:
        return checked.audio
    if checked.kind != "audio" or checked.b64 is None:
        return None
    import json

    from doctor.audio.format.base64text import decode_all

    try:
        obj = json.loads(text)
        audio = obj.get("audio") if isinstance(obj, dict) else None
    except ValueError:
        return None
    if not isinstance(audio, str):
        return None
    data, _ = decode_all(audio.encode("utf-8", "surrogatepass"))
    return data[: len(data) - len(data) % 2] or None


@dataclass
class CaptureStats:
    lines: int = 0
    audio_messages: int = 0
    other_client: int = 0
    server_events: int = 0
    rejected: int = 0
    blank: int = 0
    chunk_ms: list[float] = field(default_factory=list)  # bounded: see _note_chunk
    chunk_ms_sum: float = 0.0
    chunk_count: int = 0
    off_size: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    audio_s_at_last_ts: float = 0.0
    audio_s: float = 0.0
    timestamped: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    by_code: dict[str, list[int]] = field(default_factory=dict)
    by_code_count: dict[str, int] = field(default_factory=dict)
    by_code_example: dict[str, Problem] = field(default_factory=dict)
    containers: int = 0
    max_burst_ratio: float = 0.0

    def note_problem(self, line: int, p: Problem) -> None:
        self.by_code_count[p.code] = self.by_code_count.get(p.code, 0) + 1
        lines = self.by_code.setdefault(p.code, [])
        if len(lines) < MAX_LISTED_LINES:
            lines.append(line)
        self.by_code_example.setdefault(p.code, p)
        if len(self.problems) < 200:
            self.problems.append(
                {
                    "line": line,
                    "code": p.code,
                    "message": p.message,
                    "service_error": p.service_error,
                }
            )


def jsonl_layer(chunks: Iterable[bytes], v: Validation) -> Iterator[bytes]:
    st = CaptureStats()
    carry = b""
    line_no = 0
    for c in chunks:
        data = carry + c
        lines = data.split(b"\n")
        carry = lines.pop()
        for raw in lines:
            line_no += 1
            out = _capture_line(raw, line_no, st)
            if out:
                yield out
        if len(carry) > JSON_MAX_BYTES:
            line_no += 1
            st.note_problem(
                line_no,
                Problem(
                    "json_invalid",
                    f"a line of more than {JSON_MAX_BYTES >> 20} MiB",
                    "invalid_format",
                ),
            )
            carry = b""
    if carry.strip():
        line_no += 1
        out = _capture_line(carry, line_no, st)
        if out:
            yield out
    _capture_findings(st, v)


def _capture_line(raw: bytes, line_no: int, st: CaptureStats) -> bytes | None:
    raw = raw.strip()
    if line_no == 1 and raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    if not raw:
        st.blank += 1
        return None
    st.lines += 1
    ck = check_message(raw, line_no, capture=True)
    for p in ck.problems:
        st.note_problem(line_no, p)
    if any(p.service_error for p in ck.problems):
        st.rejected += 1
    if ck.kind == "client":
        st.other_client += 1
    elif ck.kind == "server":
        st.server_events += 1
    if ck.kind != "audio":
        return None
    st.audio_messages += 1
    data = ck.audio
    if data is None:
        return None
    ms = len(data) / API_BYTES_PER_S * 1000.0
    head = sniff_container(data[:64])
    if head is not None:
        st.containers += 1
        st.note_problem(
            line_no,
            Problem(
                "container_wav" if head.kind == "wav" else "container_other",
                f"this message's audio is a {head.name} file, not raw samples",
                "invalid_audio",
            ),
        )
        if head.kind == "wav":
            try:
                hdr = parse_wav_header(data[:HEADER_BYTES], len(data))
                data = data[hdr.data_offset :]
            except WavError:
                return None
        else:
            return None
    st.chunk_count += 1
    st.chunk_ms_sum += ms
    if len(st.chunk_ms) < 100_000:
        st.chunk_ms.append(ms)
    if not CHUNK_MS_LOW / 2 <= ms <= CHUNK_MS_HIGH * 5:
        st.off_size += 1
    st.audio_s += ms / 1000.0
    if ck.timestamp_s is not None:
        st.timestamped += 1
        if st.first_ts is None:
            st.first_ts = ck.timestamp_s
            st.audio_s_at_last_ts = 0.0
        st.last_ts = ck.timestamp_s
        st.audio_s_at_last_ts = st.audio_s - ms / 1000.0
    return data


def _capture_findings(st: CaptureStats, v: Validation) -> None:
    for code, count in st.by_code_count.items():
        ex = st.by_code_example[code]
        lines = st.by_code[code]
        shown = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
        sev = ERROR if ex.service_error else WARNING
        v.add(
            code,
            sev,
            f"{count} message(s) on line(s) {shown}: {ex.message}"
            + (f" (the service answers `{ex.service_error}`)" if ex.service_error else ""),
            detail=ex.message,
            messages=count,
            lines=lines,
            service_error=ex.service_error,
        )
    chunk: dict[str, Any] | None = None
    if st.chunk_ms:
        s = sorted(st.chunk_ms)
        median = s[len(s) // 2]
        chunk = {
            "min_ms": round(s[0], 2),
            "median_ms": round(median, 2),
            "max_ms": round(s[-1], 2),
            "count": st.chunk_count,
        }
        if not CHUNK_MS_LOW <= median <= CHUNK_MS_HIGH or st.off_size > 0.1 * st.chunk_count:
            v.add(
                "chunk_size",
                WARNING,
                f"audio chunks are {median:.1f} ms (median; {s[0]:.1f}–{s[-1]:.1f} ms), far "
                "from about 50 ms per message",
                detail=f"median chunk {median:.1f} ms",
                median_chunk_ms=round(median, 2),
                min_chunk_ms=round(s[0], 2),
                max_chunk_ms=round(s[-1], 2),
                chunks=st.chunk_count,
                off_size_chunks=st.off_size,
            )
    pacing: dict[str, Any] | None = None
    if st.first_ts is not None and st.last_ts is not None and st.timestamped >= 2:
        wall = st.last_ts - st.first_ts
        audio = st.audio_s_at_last_ts
        ratio = audio / wall if wall > 0 else float("inf")
        pacing = {
            "wall_s": round(wall, 3),
            "audio_s": round(audio, 3),
            "realtime_ratio": round(ratio, 3) if wall > 0 else None,
        }
        if audio > 0.5 and (wall <= 0 or ratio > 1.15):
            shown = f"{ratio:.1f}×" if wall > 0 else "all at once"
            v.add(
                "chunk_pacing",
                ERROR if (wall <= 0 or ratio >= 2.0) else WARNING,
                f"{audio:.2f} s of audio sent in {max(wall, 0):.2f} s ({shown} real time): "
                "the service drops audio sent faster than real time",
                detail=f"sent at {shown} real time",
                audio_s=round(audio, 3),
                wall_s=round(max(wall, 0.0), 3),
                realtime_ratio=round(ratio, 3) if wall > 0 else None,
            )
    v.messages = {
        "lines": st.lines,
        "audio_messages": st.audio_messages,
        "other_client_messages": st.other_client,
        "server_events": st.server_events,
        "rejected_messages": st.rejected,
        "audio_s": round(st.audio_s, 3),
        "chunks": chunk,
        "pacing": pacing,
        "problems": st.problems,
    }
    if st.audio_messages == 0 and st.lines:
        v.add(
            "message_missing_audio",
            ERROR,
            f"none of the {st.lines} lines is an `input.audio` message",
            lines_total=st.lines,
        )


# -- binary layer ---------------------------------------------------------------------------


def container_layer(chunks: Iterable[bytes], v: Validation, lay: Layered) -> Iterator[bytes]:
    """Strip a WAV header (declaring its format) or stop at a container we do not decode."""
    peek = _Peek(chunks, HEADER_BYTES)
    box = sniff_container(peek.head[:4096])
    if box is None:
        yield from peek
        return
    v.detected.container = box.kind
    if box.kind != "wav":
        _other_container(v, box, lay)
        return
    try:
        hdr = parse_wav_header(peek.head)
    except WavError as exc:
        v.add("container_wav", ERROR, f"a broken RIFF/WAVE header: {exc}", detail=str(exc))
        lay.undecodable = True
        return
    _wav_findings(v, hdr, lay)
    skip = hdr.data_offset
    left = hdr.data_bytes if hdr.data_bytes not in (None, 0) else None
    for c in peek:
        if skip:
            if len(c) <= skip:
                skip -= len(c)
                continue
            c, skip = c[skip:], 0
        if left is not None:
            if left <= 0:
                lay.extra["trailing_bytes"] = lay.extra.get("trailing_bytes", 0) + len(c)
                continue
            c, rest = c[:left], c[left:]
            left -= len(c)
            if rest:
                lay.extra["trailing_bytes"] = lay.extra.get("trailing_bytes", 0) + len(rest)
        yield c
    if left:
        lay.extra["missing_bytes"] = left


def _other_container(v: Validation, box: Container, lay: Layered) -> None:
    lay.undecodable = True
    if not box.audio:
        v.add(
            "container_other",
            ERROR,
            f"a {box.name}, not audio: the file's first bytes are its signature. "
            "Send the raw PCM16 samples your app records",
            detail=f"the input is a {box.name}, not audio",
            container=box.kind,
            codec=None,
            not_audio=True,
        )
        v.detected.confidence = 1.0
        v.refuse_reason = f"the input is a {box.name}, not audio"
        return
    mr = (
        " Browsers' MediaRecorder writes these; capture PCM with an AudioWorklet instead."
        if box.kind in ("webm", "ogg")
        else ""
    )
    v.add(
        "container_other",
        ERROR,
        f"a {box.name} file, not raw PCM16 samples: the service cannot decode it.{mr}",
        detail=f"the input is {box.name}",
        container=box.kind,
        codec=box.codec,
    )
    v.detected.encoding = box.codec
    v.detected.confidence = 1.0  # the file's own magic bytes name it
    v.refuse_reason = (
        f"{box.name} holds compressed or unsupported audio; convert it with "
        "ffmpeg or sox first (see the fix)"
    )


def _wav_findings(v: Validation, hdr: WavHeader, lay: Layered) -> None:
    wrong: list[str] = []
    if hdr.format_name not in ("pcm",):
        wrong.append(f"{hdr.format_name} samples, not integer PCM")
    if hdr.bits_per_sample != 16:
        wrong.append(f"{hdr.bits_per_sample}-bit, not 16-bit")
    if hdr.channels != 1:
        wrong.append(f"{hdr.channels} channels, not mono")
    if hdr.sample_rate_hz != 24000:
        wrong.append(f"{hdr.sample_rate_hz} Hz, not 24000 Hz")
    what = "; ".join(wrong) if wrong else "the samples themselves are in the right format"
    v.add(
        "container_wav",
        ERROR,
        f"a RIFF/WAVE file ({hdr.sample_rate_hz} Hz, {hdr.channels} ch, "
        f"{hdr.bits_per_sample}-bit {hdr.format_name}): send the samples without the "
        f"{hdr.data_offset}-byte header; {what}",
        detail=f"WAV header: {hdr.sample_rate_hz} Hz, {hdr.channels} channel(s), "
        f"{hdr.bits_per_sample}-bit {hdr.format_name}",
        declared_rate_hz=hdr.sample_rate_hz,
        declared_channels=hdr.channels,
        declared_bits=hdr.bits_per_sample,
        declared_format=hdr.format_name,
        header_bytes=hdr.data_offset,
        data_bytes=hdr.data_bytes,
        problems=wrong,
    )
    from doctor.audio.format.pcm import BYTES_PER_SAMPLE

    if hdr.encoding in BYTES_PER_SAMPLE:
        lay.declared = Declared(hdr.encoding, hdr.channels, hdr.sample_rate_hz)
    else:
        lay.undecodable = True
        v.refuse_reason = (
            f"WAV sample format {hdr.format_name}/{hdr.bits_per_sample} is not supported"
        )


def utf16_encoding(head: bytes) -> str | None:
    """`utf-16-le`/`-be` when the head is UTF-16 text (what PowerShell 5's `>` writes), else
    None. Judged over the whole sniffed head (64 KiB), never its first 4 KiB: PCM16 that
    starts quiet with a positive offset has zero high bytes for a while, and its low bytes
    can spell base64 (a reviewer's file was then read as 24-bit audio). With a BOM the text
    must read as base64, JSON or text; without one nearly every other byte must be zero
    and the text base64 or JSON."""
    bom = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}.get(head[:2])
    if bom is None:
        sample = head[:SNIFF_BYTES]
        if len(sample) < 64:
            return None
        # ASCII text has every high byte zero; allow 1 % for a few characters past U+00FF
        # (an em dash in a note line); PCM with any sound has far more
        high_le = len(sample[1::2]) - sample[1::2].count(0)
        high_be = len(sample[0::2]) - sample[0::2].count(0)
        if high_le <= len(sample) // 200:
            enc = "utf-16-le"
        elif high_be <= len(sample) // 200:
            enc = "utf-16-be"
        else:
            return None
        text = sample[: len(sample) // 2 * 2].decode(enc, "replace").encode()
        return enc if sniff_kind(text) in ("base64", "json", "jsonl") else None
    body = head[2:SNIFF_BYTES]
    text = body[: len(body) // 2 * 2].decode(bom, "replace").encode()
    return bom if text and sniff_kind(text) in ("base64", "json", "jsonl", "text") else None


def _from_utf16(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """UTF-16 text as UTF-8 bytes, streamed (a BOM is dropped)."""
    import codecs

    dec = codecs.getincrementaldecoder(encoding)("replace")
    first = True
    for c in chunks:
        text = dec.decode(c)
        if first and text[:1] == "\ufeff":
            text = text[1:]
        first = first and not text
        if text:
            yield text.encode()
    tail = dec.decode(b"", final=True)
    if tail:
        yield tail.encode()


def layers(
    chunks: Iterable[bytes], kind: str | None, v: Validation, lay: Layered
) -> Iterator[bytes]:
    """The audio bytes beneath every layer; `kind` None means auto-detect."""
    peek = _Peek(chunks, SNIFF_BYTES)
    utf16 = None if kind == "raw" else utf16_encoding(peek.head)  # --input-kind raw: as is
    if utf16 is not None:
        lay.extra["text_encoding"] = utf16
        peek = _Peek(_from_utf16(peek, utf16), SNIFF_BYTES)
    sniffed = sniff_kind(peek.head)
    if sniffed == "empty":
        v.detected.input_kind = kind or "raw"
        return
    if kind is None:
        kind = "raw" if sniffed == "text" else sniffed
        if sniffed == "text":
            v.add(
                "not_base64",
                ERROR,
                "a text file that is not base64 (nor JSON): the API "
                "expects base64 of raw PCM16 bytes",
                detail="the input is plain text",
            )
            lay.undecodable = True
            v.detected.input_kind = "text"
            v.refuse_reason = "the input is text, not audio"
            return
    v.detected.input_kind = kind
    stream: Iterable[bytes] = peek
    if kind == "raw" and sniffed in ("base64",):
        v.add(
            "base64_text",
            ERROR,
            "base64 text where raw PCM was expected: decode it first "
            "(or validate it as what goes into `input.audio`)",
            detail="the file holds base64 text",
        )
    if kind == "base64":
        if sniffed in ("raw", "container"):
            v.add(
                "not_base64",
                ERROR,
                "raw binary where base64 was expected: encode the bytes "
                "with base64 before putting them in `input.audio`",
                detail="the input is binary, not base64 text",
            )
            lay.undecodable = True
            v.refuse_reason = "the input is binary, not base64"
            return
        stream = base64_layer(peek, v)
    elif kind == "json":
        stream = json_layer(peek, v)
    elif kind == "jsonl":
        stream = jsonl_layer(peek, v)
    if kind == "jsonl":
        for c in stream:
            lay.payload_bytes += len(c)
            yield c
        return
    for c in container_layer(stream, v, lay):
        lay.payload_bytes += len(c)
        yield c
