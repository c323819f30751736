"""What a PortAudio failure means for the user: pure classification, no PortAudio import.

PortAudio reports a generic code (`PaErrorCode`) and, for `paUnanticipatedHostError`, the
host API's own code and text (ALSA returns negative errno values, CoreAudio four-char codes,
Windows HRESULT/MMRESULT values). The cause codes are the report contract's.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

PA_ERROR_NAMES: dict[int, str] = {
    -10000: "paNotInitialized",
    -9999: "paUnanticipatedHostError",
    -9998: "paInvalidChannelCount",
    -9997: "paInvalidSampleRate",
    -9996: "paInvalidDevice",
    -9995: "paInvalidFlag",
    -9994: "paSampleFormatNotSupported",
    -9993: "paBadIODeviceCombination",
    -9992: "paInsufficientMemory",
    -9991: "paBufferTooBig",
    -9990: "paBufferTooSmall",
    -9989: "paNullCallback",
    -9988: "paBadStreamPtr",
    -9987: "paTimedOut",
    -9986: "paInternalError",
    -9985: "paDeviceUnavailable",
    -9984: "paIncompatibleHostApiSpecificStreamInfo",
    -9983: "paStreamIsStopped",
    -9982: "paStreamIsNotStopped",
    -9981: "paInputOverflowed",
    -9980: "paOutputUnderflowed",
    -9979: "paHostApiNotFound",
    -9978: "paInvalidHostApi",
}
PA_UNANTICIPATED_HOST_ERROR = -9999
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_SAMPLE_FORMAT_NOT_SUPPORTED = -9994
PA_INVALID_CHANNEL_COUNT = -9998
PA_DEVICE_UNAVAILABLE = -9985
PA_TIMED_OUT = -9987


def _fourcc(text: str) -> int:
    return int.from_bytes(text.encode("latin-1"), "big")


# Host error codes, per host API family.
_ALSA_BUSY = {-errno.EBUSY, -errno.EAGAIN}
_ALSA_DENIED = {-errno.EACCES, -errno.EPERM}
# kAudioDevicePermissionsError: another process holds the device in hog (exclusive) mode.
# A denied macOS microphone permission raises nothing: it delivers zeros (silent_input).
_COREAUDIO_BUSY = {_fourcc("!hog")}
_WIN_MMSYSERR_ALLOCATED = 4
_WIN_BUSY = {0x8889000A - (1 << 32), 0x8889000A}  # AUDCLNT_E_DEVICE_IN_USE
_WIN_DENIED = {0x80070005 - (1 << 32), 0x80070005}  # E_ACCESSDENIED

_BUSY_WORDS = (
    "busy",
    "in use",
    "already allocated",
    "device_in_use",
    "exclusive",
    "device unavailable",
)
_DENIED_WORDS = (
    "permission denied",
    "access denied",
    "not permitted",
    "access is denied",
    "e_accessdenied",
    "unauthorized",
    "privacy",
)
_RATE_WORDS = ("invalid sample rate", "sample rate not supported", "samplerate")


@dataclass(frozen=True)
class PortAudioFailure:
    """A PortAudio error as plain data (from `sounddevice.PortAudioError.args` or a message)."""

    message: str
    code: int | None = None
    host_api: str | None = None
    host_code: int | None = None
    host_text: str = ""

    @property
    def code_name(self) -> str | None:
        return PA_ERROR_NAMES.get(self.code) if self.code is not None else None

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "portaudio_error": self.message,
            "portaudio_error_code": self.code,
            "portaudio_error_name": self.code_name,
        }
        if self.host_code is not None or self.host_text:
            out.update(
                host_api_error_code=self.host_code,
                host_api_error_text=self.host_text,
                host_api_error_source=self.host_api,
            )
        return out


@dataclass(frozen=True)
class Classification:
    cause: str  # permission_denied, device_busy, rate_unsupported, no_device, open_failed
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def from_args(args: tuple[Any, ...], host_api_names: list[str] | None = None) -> PortAudioFailure:
    """`sounddevice.PortAudioError.args`: (message, PaErrorCode, (host api index, code, text))."""
    message = str(args[0]) if args else "unknown PortAudio error"
    code = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    host_api = host_code = None
    host_text = ""
    if len(args) > 2 and isinstance(args[2], tuple) and len(args[2]) == 3:
        index, raw_code, raw_text = args[2]
        names = host_api_names or []
        if isinstance(index, int) and 0 <= index < len(names):
            host_api = names[index]
        host_code = raw_code if isinstance(raw_code, int) else None
        host_text = str(raw_text or "")
    return PortAudioFailure(message, code, host_api, host_code, host_text)


def _host_family(name: str | None) -> str:
    low = (name or "").lower()
    if "alsa" in low or "oss" in low or "jack" in low:
        return "posix"
    if "core audio" in low:
        return "coreaudio"
    if any(w in low for w in ("mme", "wasapi", "directsound", "wdm", "asio", "windows")):
        return "windows"
    return "unknown"


def _by_host_code(failure: PortAudioFailure) -> str | None:
    code = failure.host_code
    if code is None or code == 0:
        return None
    family = _host_family(failure.host_api)
    if family in ("posix", "unknown"):
        if code in _ALSA_BUSY:
            return "device_busy"
        if code in _ALSA_DENIED:
            return "permission_denied"
    if family in ("coreaudio", "unknown") and code in _COREAUDIO_BUSY:
        return "device_busy"
    if family == "windows" and code == _WIN_MMSYSERR_ALLOCATED:
        return "device_busy"
    if family in ("windows", "unknown"):
        if code in _WIN_BUSY:
            return "device_busy"
        if code in _WIN_DENIED:
            return "permission_denied"
    return None


def classify(failure: PortAudioFailure) -> Classification:
    """The contract cause for a failed open. Host codes beat words; words beat generic codes.

    `rate_unsupported` and `no_device` are not microphone causes: the caller maps them
    (the sample-rate check reports the first, the microphone check reports `open_failed`).
    """
    ev = failure.evidence()
    text = " ".join((failure.message, failure.host_text)).lower()
    by_code = _by_host_code(failure)
    if by_code == "device_busy":
        return Classification("device_busy", "the device is in use by another program", ev)
    if by_code == "permission_denied":
        return Classification("permission_denied", "access to the device was refused", ev)
    if any(w in text for w in _DENIED_WORDS):
        return Classification("permission_denied", "access to the device was refused", ev)
    if any(w in text for w in _BUSY_WORDS) or failure.code == PA_DEVICE_UNAVAILABLE:
        return Classification("device_busy", "the device is unavailable or in use", ev)
    if failure.code == PA_INVALID_SAMPLE_RATE or any(w in text for w in _RATE_WORDS):
        return Classification("rate_unsupported", "the device refuses this sample rate", ev)
    if failure.code == PA_INVALID_DEVICE or "error querying device" in text:
        return Classification("no_device", "PortAudio has no such device", ev)
    name = failure.code_name or "PortAudio error"
    detail = f"{name} ({failure.code})" if failure.code is not None else name
    if failure.host_text:
        detail += f", host error {failure.host_code}: {failure.host_text}"
    return Classification("open_failed", f"PortAudio could not open the device: {detail}", ev)
