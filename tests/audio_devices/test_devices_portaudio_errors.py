"""PortAudio failure classification: the pure core behind permission/busy/open_failed."""

from __future__ import annotations

import errno

import pytest

from doctor.devices.errors import (
    PA_ERROR_NAMES,
    PortAudioFailure,
    classify,
    from_args,
)

ALSA = ["ALSA", "OSS", "JACK Audio Connection Kit"]


def test_args_of_a_real_alsa_host_error_are_parsed() -> None:
    # The args sounddevice gave for the refusing `badmic` PCM (recipes §1.6).
    f = from_args(
        (
            "Error opening InputStream: Unanticipated host error",
            -9999,
            (0, -5, "Input/output error"),
        ),
        ALSA,
    )
    assert f == PortAudioFailure(
        "Error opening InputStream: Unanticipated host error",
        -9999,
        "ALSA",
        -5,
        "Input/output error",
    )
    assert f.code_name == "paUnanticipatedHostError"
    ev = f.evidence()
    assert ev["host_api_error_code"] == -5 and ev["host_api_error_source"] == "ALSA"


def test_args_without_host_info_or_code() -> None:
    f = from_args(("Error querying device -1",), ALSA)
    assert (f.code, f.host_api, f.host_code, f.host_text) == (None, None, None, "")
    assert "host_api_error_code" not in f.evidence()
    assert from_args(()).message == "unknown PortAudio error"


def test_host_api_index_out_of_range_keeps_the_code() -> None:
    f = from_args(("x", -9999, (7, -16, "Device or resource busy")), ALSA)
    assert f.host_api is None and f.host_code == -16


@pytest.mark.parametrize(
    ("host_code", "text", "cause"),
    [
        (-errno.EBUSY, "Device or resource busy", "device_busy"),
        (-errno.EAGAIN, "Resource temporarily unavailable", "device_busy"),
        (-errno.EACCES, "Permission denied", "permission_denied"),
        (-errno.EPERM, "Operation not permitted", "permission_denied"),
        (-errno.EIO, "Input/output error", "open_failed"),
        (-errno.ENOENT, "No such file or directory", "open_failed"),
    ],
)
def test_alsa_host_codes(host_code: int, text: str, cause: str) -> None:
    f = PortAudioFailure(
        "Error opening InputStream: Unanticipated host error", -9999, "ALSA", host_code, text
    )
    assert classify(f).cause == cause


def test_alsa_code_wins_over_misleading_words() -> None:
    # EBUSY even though the text mentions permission: the number is what ALSA meant.
    f = PortAudioFailure(
        "Unanticipated host error", -9999, "ALSA", -errno.EBUSY, "permission denied by policy"
    )
    assert classify(f).cause == "device_busy"


def test_coreaudio_hog_mode_is_busy() -> None:
    hog = int.from_bytes(b"!hog", "big")
    f = PortAudioFailure("Unanticipated host error", -9999, "Core Audio", hog, "")
    assert classify(f).cause == "device_busy"


@pytest.mark.parametrize(
    ("api", "code", "cause"),
    [
        ("Windows WASAPI", 0x8889000A - (1 << 32), "device_busy"),
        ("Windows WASAPI", 0x80070005 - (1 << 32), "permission_denied"),
        ("MME", 4, "device_busy"),
        ("ALSA", 4, "open_failed"),  # 4 is MMSYSERR_ALLOCATED only on Windows
    ],
)
def test_windows_host_codes(api: str, code: int, cause: str) -> None:
    f = PortAudioFailure("Unanticipated host error", -9999, api, code, "")
    assert classify(f).cause == cause


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("Error opening InputStream: Invalid sample rate", "rate_unsupported"),
        ("Error opening InputStream: Device unavailable", "device_busy"),
        ("Error querying device -1", "no_device"),
        ("Error opening InputStream: Illegal combination of I/O devices", "open_failed"),
        ("Access denied", "permission_denied"),
        ("The device is already in use", "device_busy"),
    ],
)
def test_messages_without_host_code(message: str, cause: str) -> None:
    code = {
        "rate_unsupported": -9997,
        "device_busy": None,
        "no_device": None,
        "open_failed": -9993,
        "permission_denied": None,
    }[cause]
    assert classify(PortAudioFailure(message, code)).cause == cause


def test_generic_codes_map_without_words() -> None:
    assert classify(PortAudioFailure("x", -9997)).cause == "rate_unsupported"
    assert classify(PortAudioFailure("x", -9996)).cause == "no_device"
    assert classify(PortAudioFailure("x", -9985)).cause == "device_busy"


def test_open_failed_names_portaudio_code_and_host_text() -> None:
    f = PortAudioFailure("Unanticipated host error", -9999, "ALSA", -5, "Input/output error")
    verdict = classify(f)
    assert verdict.cause == "open_failed"
    assert "paUnanticipatedHostError (-9999)" in verdict.reason
    assert "Input/output error" in verdict.reason
    assert verdict.evidence["portaudio_error_code"] == -9999


def test_every_known_code_classifies_to_a_contract_cause() -> None:
    allowed = {"permission_denied", "device_busy", "rate_unsupported", "no_device", "open_failed"}
    for code in PA_ERROR_NAMES:
        assert classify(PortAudioFailure("some error", code)).cause in allowed
    assert classify(PortAudioFailure("weird", None)).cause == "open_failed"
