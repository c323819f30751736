"""The validate-audio finding model: what is wrong, how sure we are, and which guide entry fixes it.

Codes are the public contract (`report-contract.md`, "validate-audio finding codes").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# code -> guide entry that holds its fix
GUIDE_FOR: dict[str, str] = {
    "empty": "audio_empty",
    "container_wav": "audio_container",
    "container_other": "audio_container",
    "not_base64": "audio_base64",
    "base64_invalid": "audio_base64",
    "base64_data_url": "audio_base64",
    "base64_urlsafe": "audio_base64",
    "base64_whitespace": "audio_base64",
    "binary_not_base64": "audio_base64",
    "base64_not_raw": "audio_base64",
    "json_invalid": "malformed_audio",
    "message_missing_type": "malformed_audio",
    "message_wrong_type": "malformed_audio",
    "message_missing_audio": "malformed_audio",
    "odd_byte_length": "audio_encoding",
    "float32_samples": "audio_encoding",
    "int32_samples": "audio_encoding",
    "int24_samples": "audio_encoding",
    "uint8_samples": "audio_encoding",
    "mulaw_samples": "audio_encoding",
    "alaw_samples": "audio_encoding",
    "big_endian": "audio_encoding",
    "stereo_interleaved": "audio_encoding",
    "sample_rate_mismatch": "sample_rate",
    "silence": "audio_level",
    "clipping": "audio_gain",
    "dc_offset": "audio_gain",
    "low_level": "audio_level",
    "noise": "audio_encoding",
    "chunk_size": "audio_chunking",
    "chunk_pacing": "audio_chunking",
    "truncated": "audio_container",
    "too_little_signal": "audio_sample_length",
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # fills the guide entry's {detail}

    @property
    def guide(self) -> str:
        return GUIDE_FOR.get(self.code, "malformed_audio")

    def to_dict(self) -> dict[str, Any]:
        from doctor import guide

        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "fix": guide.fix(self.guide, detail=self.detail or None).to_dict(),
        }


@dataclass
class Detected:
    """What we believe the bytes are (after any base64/JSON/container layer)."""

    container: str | None = None  # None: headerless
    encoding: str | None = None  # s16le, s16be, f32le, s32le, s24le, u8, mulaw, alaw, or a codec
    sample_rate_hz: int | None = None
    channels: int | None = None
    byte_order: str | None = None  # little, big, or None for 8-bit / codecs
    confidence: float = 0.0
    input_kind: str = "raw"  # raw, container, base64, json, jsonl

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "encoding": self.encoding,
            "sample_rate_hz": self.sample_rate_hz,
            "channels": self.channels,
            "byte_order": self.byte_order,
            "confidence": round(self.confidence, 3),
            "input_kind": self.input_kind,
        }


@dataclass
class Validation:
    """The whole answer of validate-audio; `verdict` is valid only without error findings."""

    detected: Detected = field(default_factory=Detected)
    findings: list[Finding] = field(default_factory=list)
    messages: dict[str, Any] | None = None  # JSON lines: per-message statistics and problems
    stats: dict[str, Any] = field(default_factory=dict)  # levels, duration, rate estimate
    convertible: bool = False  # --fix may convert (the source format is known with confidence)
    refuse_reason: str | None = None

    @property
    def verdict(self) -> str:
        return "invalid" if any(f.severity == ERROR for f in self.findings) else "valid"

    def add(
        self, code: str, severity: str, message: str, detail: str = "", **evidence: Any
    ) -> Finding:
        f = Finding(code, severity, message, evidence, detail)
        self.findings.append(f)
        return f

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "detected": self.detected.to_dict(),
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "messages": self.messages,
            "stats": self.stats,
        }
