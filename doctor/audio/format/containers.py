"""Container and codec sniffing from the first bytes of a file (pure).

Headerless PCM has no magic number, so a false positive here would call good audio a
file; MPEG and ADTS sync words are therefore only accepted as a chain of valid frames.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Container:
    kind: str  # stable id: wav, flac, ogg, mp3, aac, webm, matroska, mp4, aiff, au, caf, amr, riff
    name: (
        str  # what a user recognises, e.g. "WebM (Opus/Vorbis, as browsers' MediaRecorder writes)"
    )
    codec: str | None = None
    audio: bool = True  # False: a well-known file that is not audio at all (an image, an archive)


# Signatures of files that are not audio. Each is 4+ bytes (or 3 with a checked 4th), so a
# headerless PCM start matches one about once in 2^32 files; JPEG and gzip are the shortest.
_NOT_AUDIO: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "PNG image"),
    (b"GIF87a", "gif", "GIF image"),
    (b"GIF89a", "gif", "GIF image"),
    (b"%PDF-", "pdf", "PDF document"),
    (b"PK\x03\x04", "zip", "ZIP archive (or a .docx/.jar/.apk built on ZIP)"),
    (b"PK\x05\x06", "zip", "ZIP archive (empty)"),
    (b"\x1f\x8b\x08", "gzip", "gzip-compressed file"),
    (b"\xfd7zXZ\x00", "xz", "xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "7-Zip archive"),
    (b"Rar!\x1a\x07", "rar", "RAR archive"),
    (b"\x28\xb5\x2f\xfd", "zstd", "Zstandard-compressed file"),
    (b"\x7fELF", "elf", "ELF executable"),
    (b"SQLite format 3\x00", "sqlite", "SQLite database"),
)


def _not_audio(h: bytes) -> Container | None:
    for magic, kind, name in _NOT_AUDIO:
        if h.startswith(magic):
            return Container(kind, name, None, audio=False)
    if h[:3] == b"BZh" and h[4:10] == b"1AY&SY":
        return Container("bzip2", "bzip2-compressed file", None, audio=False)
    if h[:3] == b"\xff\xd8\xff" and len(h) > 3 and (0xE0 <= h[3] <= 0xEF or h[3] == 0xDB):
        return Container("jpeg", "JPEG image", None, audio=False)
    return None


_MP3_BITRATES = {
    # (version_is_1, layer) -> kbit/s by index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_len(b: bytes, i: int) -> int | None:
    if i + 4 > len(b) or b[i] != 0xFF or (b[i + 1] & 0xE0) != 0xE0:
        return None
    version = (b[i + 1] >> 3) & 3
    layer_bits = (b[i + 1] >> 1) & 3
    bitrate_idx = b[i + 2] >> 4
    rate_idx = (b[i + 2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_idx in (0, 15) or rate_idx == 3:
        return None
    layer = 4 - layer_bits
    v1 = version == 3
    kbps = _MP3_BITRATES[(v1, layer)][bitrate_idx]
    rate = _MP3_RATES[version][rate_idx]
    pad = (b[i + 2] >> 1) & 1
    if layer == 1:
        return (12 * kbps * 1000 // rate + pad) * 4
    mult = 144 if (layer == 3 and v1) or layer == 2 else 72
    return mult * kbps * 1000 // rate + pad


def _adts_frame_len(b: bytes, i: int) -> int | None:
    if i + 7 > len(b) or b[i] != 0xFF or (b[i + 1] & 0xF6) != 0xF0:
        return None
    if ((b[i + 2] >> 2) & 0xF) > 12:
        return None
    length = ((b[i + 3] & 3) << 11) | (b[i + 4] << 3) | (b[i + 5] >> 5)
    return length if length >= 7 else None


def _frame_chain(head: bytes, frame_len: object, need: int = 3) -> bool:
    """`need` consecutive valid frame headers from offset 0 (or as many as the head holds)."""
    pos, seen = 0, 0
    while seen < need:
        n = frame_len(head, pos)  # type: ignore[operator]
        if n is None:
            return False
        seen += 1
        pos += n
        if pos + 4 > len(head):
            return seen >= 2 or (seen == 1 and pos == len(head))
    return True


def sniff_container(head: bytes) -> Container | None:
    """The container or codec the bytes start with, or None for headerless data."""
    h = head
    if len(h) >= 12 and h[:4] in (b"RIFF", b"RIFX", b"RF64"):
        if h[8:12] == b"WAVE":
            return Container("wav", "RIFF/WAVE")
        return Container("riff", f"a RIFF {h[8:12].decode('latin-1')!r} file")
    if h[:4] == b"fLaC":
        return Container("flac", "FLAC", "flac")
    if h[:4] == b"OggS":
        codec = (
            "opus"
            if b"OpusHead" in h[:128]
            else "vorbis"
            if b"vorbis" in h[:128]
            else "flac"
            if b"FLAC" in h[:128]
            else "speex"
            if b"Speex" in h[:128]
            else None
        )
        label = f"Ogg ({codec.capitalize()})" if codec else "Ogg"
        return Container("ogg", label, codec)
    if h[:4] == b"\x1a\x45\xdf\xa3":
        if b"webm" in h[:64]:
            return Container("webm", "WebM (as a browser's MediaRecorder writes it)", None)
        return Container("matroska", "Matroska (MKV/MKA)")
    if len(h) >= 12 and h[4:8] == b"ftyp":
        brand = h[8:12].decode("latin-1", "replace").strip()
        return Container("mp4", f"MP4/M4A (brand {brand!r})", "aac")
    if len(h) >= 12 and h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return Container("aiff", "AIFF" if h[8:12] == b"AIFF" else "AIFF-C")
    if h[:4] == b".snd":
        return Container("au", "Sun AU (.snd)")
    if h[:4] == b"caff":
        return Container("caf", "Apple CAF")
    if h[:5] == b"#!AMR":
        return Container("amr", "AMR", "amr")
    if h[:3] == b"ID3":
        return Container("mp3", "MP3 (ID3 tag)", "mp3")
    other = _not_audio(h)
    if other is not None:
        return other
    if _frame_chain(h, _mpeg_frame_len):
        return Container("mp3", "MPEG audio (MP3) frames", "mp3")
    if _frame_chain(h, _adts_frame_len):
        return Container("aac", "AAC (ADTS) frames", "aac")
    return None
